"""The project's own error types (all `ValueError`s, so callers can catch either) and warnings."""

import warnings


class TfpVaeError(ValueError):
    """Base class: bad input to tfp_vae, with a message saying what is wrong and how to fix it."""


class ConfigError(TfpVaeError):
    """A `VAEConfig` field (or another setting) is invalid; `field` names it when known, so the
    command line can name the flag the user typed."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DataError(TfpVaeError):
    """Images, labels or data files are missing, corrupt, or unfit for the model."""


class RunDirError(TfpVaeError):
    """A run directory is missing files or holds files that do not match each other."""


class NonFiniteLossError(TfpVaeError):
    """Training produced a NaN or infinite loss; the message names the epoch and step and says
    which weights the run directory kept."""


class RunWriteError(TfpVaeError):
    """A file of a run directory could not be written (no space left, quota, permission, a
    read-only file system); the message names the path, the free space and what was being
    written. Everything committed before stays whole: every write goes to a temporary file first.
    `path`, `what` and `free_bytes` hold the same facts."""

    def __init__(self, message: str, path=None, what: str = "", free_bytes: int | None = None) -> None:
        super().__init__(message)
        self.path, self.what, self.free_bytes = path, what, free_bytes


class RunPaused(KeyboardInterrupt):
    """Training or evaluation stopped on SIGTERM or SIGINT after committing its work; rerunning
    the same command resumes. A `KeyboardInterrupt`, so a notebook's cell stops as on Ctrl-C;
    `reason` says why and where, `resume` gives the command that continues, `signal` names it."""

    def __init__(self, reason: str, resume: str = "", signal: str = "") -> None:
        super().__init__(f"{reason}; resume with: {resume}" if resume else reason)
        self.reason, self.resume, self.signal = reason, resume, signal


class TfpVaeWarning(UserWarning):
    """Base class of the toolkit's warnings, each shown once per process (`warn_once`)."""


class NonBinaryBernoulliWarning(TfpVaeWarning):
    """A Bernoulli likelihood is fitted to grey levels: its nats are not a normalised density."""


class SlowPrecisionWarning(TfpVaeWarning):
    """bfloat16 asked for on a CPU without bfloat16 instructions: emulated, many times slower."""


_shown: set[tuple[type, str]] = set()


def warn_once(message: str, category: type[TfpVaeWarning], stacklevel: int = 1) -> None:
    """`warnings.warn` the first time `message` is shown in this process: Keras runs the checks
    behind a warning every epoch, and the standard library's "once" forgets within
    `catch_warnings`. The filters still decide: an ignored warning is not counted as shown, and a
    category shown "always" (as `pytest.warns` sets) shows every time."""
    action = _action(category, message)
    if action == "ignore" or ((category, message) in _shown and action != "always"):
        return
    _shown.add((category, message))
    warnings.warn(message, category, stacklevel=stacklevel + 2)


def _action(category: type[Warning], message: str) -> str:
    """The action of the first filter that matches, as `warnings` decides it; filters for named
    modules are passed over (libraries set them for their own modules, e.g. TFP's "always")."""
    for action, text, shown, module, _ in warnings.filters:
        if module is None and issubclass(category, shown) and (text is None or text.match(message)):
            return action
    return "default"
