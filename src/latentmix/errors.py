"""The one error type of latentmix and its kinds.

Every user-facing failure raises a LatentmixError subclass whose message names the file and the problem;
the CLI prints it as one line `error: <message>` and exits 2.
"""


class LatentmixError(Exception):
    """Base of every error latentmix raises on purpose."""


class InputError(LatentmixError):
    """A user-supplied file or folder is missing, empty, truncated or of the wrong format."""


class ConfigError(LatentmixError):
    """A configuration value or command-line option is invalid."""


class ModelFileError(LatentmixError):
    """A model or code file is of the wrong kind, version or shape, or is corrupt."""


class OutputError(LatentmixError):
    """An output would escape its folder, overwrite an input or an existing file (without --force), or cannot be
    written."""
