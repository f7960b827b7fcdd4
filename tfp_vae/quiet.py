"""A calm toolkit: no TensorFlow C++ log lines, and each Python warning once per cause.

TensorFlow writes its C++ notices (oneDNN, CUDA not found, CPU features, cuInit failed) straight
to file descriptor 2, some while it is being imported and whatever TF_CPP_MIN_LOG_LEVEL says. So
every sub-package that uses TensorFlow first calls `import_tensorflow()`, which imports it with
those lines filtered out and TF_CPP_MIN_LOG_LEVEL at 3 (errors reach Python as exceptions), in a
notebook as on the command line. It does nothing when TensorFlow is already imported, when the
user set TF_CPP_MIN_LOG_LEVEL (set it to 0 to see every notice again), or under
`tfp-vae ... --verbose 2`. `calm(verbose)` does the Python side when a command starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings

import absl.logging

LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# absl/TensorFlow C++ log lines ("I0000 00:00:1795410586.423798    5923 port.cc:153] ..."), the
# banner absl prints before its first one, and the CPU-feature notice's second line.
CPP_LOG_LINE = re.compile(
    r"^([IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: .* rebuild TensorFlow)"
)
_quieted = False  # True once this module set the C++ log level (the user did not)


def command_line_verbosity(argv=None) -> int | None:
    """The `--verbose` level of a `tfp-vae` process (1 if not given), None if this process is not
    the command line (`tfp-vae ...` or `python -m tfp_vae.cli ...`)."""
    if argv is None:
        launched = [os.path.basename(sys.argv[0] if sys.argv else ""), *getattr(sys, "orig_argv", [])[1:3]]
        if "tfp-vae" not in launched and "tfp_vae.cli" not in launched:
            return None
        argv = sys.argv
    for i, word in enumerate(argv):
        value = (
            word.split("=", 1)[1]
            if word.startswith("--verbose=")
            else (argv[i + 1] if word == "--verbose" and i + 1 < len(argv) else None)
        )
        if value is not None:
            return int(value) if value.isdigit() else 1
    return 1


def import_tensorflow() -> None:
    """Imports TensorFlow with its C++ notices off (see the module's docstring for when not)."""
    global _quieted
    verbose = command_line_verbosity()
    if "tensorflow" in sys.modules or LEVEL_VARIABLE in os.environ or (verbose or 0) >= 2:
        return
    os.environ[LEVEL_VARIABLE] = "3"
    _quieted = True
    with _without_cpp_log_lines():
        import tensorflow  # noqa: F401  (the import whose notices are filtered: the point of this function)


@contextlib.contextmanager
def _without_cpp_log_lines():
    """File descriptor 2 goes to a temporary file within the block; afterwards every line of it
    that is not a C++ log line is written to stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines = caught.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not CPP_LOG_LINE.match(line)))


def calm(verbose: int) -> None:
    """For a command at `verbose` (0, 1 or 2): each warning shown once per message (Keras' fit
    would otherwise repeat one every epoch), and below 2, TensorFlow's and absl's Python loggers
    report errors only (unless the user chose a C++ log level themselves)."""
    warnings.filterwarnings("once", category=UserWarning)
    if verbose >= 2 or (LEVEL_VARIABLE in os.environ and not _quieted):
        return
    # Without importing TensorFlow (a command may stop at a config error first): its Python logger
    # is the standard library's "tensorflow", and autograph reads its verbosity from the environment.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    absl.logging.set_verbosity(absl.logging.ERROR)
    os.environ.setdefault("AUTOGRAPH_VERBOSITY", "0")
