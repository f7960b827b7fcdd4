"""The project's own error types. All are `ValueError`s, so callers can catch either."""


class TfpVaeError(ValueError):
    """Base class: bad input to tfp_vae, with a message saying what is wrong and how to fix it."""


class ConfigError(TfpVaeError):
    """A `VAEConfig` field is invalid."""


class DataError(TfpVaeError):
    """Images, labels or data files are missing, corrupt, or unfit for the model."""


class RunDirError(TfpVaeError):
    """A run directory is missing files or holds files that do not match each other."""


class NonFiniteLossError(TfpVaeError):
    """Training produced a NaN or infinite loss; the message names the epoch and step and says
    which weights the run directory kept."""
