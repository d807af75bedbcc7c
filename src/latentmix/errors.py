"""The one error type of latentmix and its kinds.

Every user-facing failure raises a LatentmixError subclass whose message names the file and the problem;
the CLI prints it as one line `error: <message>` and exits 2.
"""


class LatentmixError(Exception):
    """Base of every error latentmix raises on purpose. Its text is always one line: control characters (a
    newline in a hostile file name or config key) are shown escaped."""

    def __str__(self) -> str:
        text = super().__str__()
        return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class InputError(LatentmixError):
    """A user-supplied file or folder is missing, empty, truncated or of the wrong format."""


class ConfigError(LatentmixError):
    """A configuration value or command-line option is invalid."""


class ModelFileError(LatentmixError):
    """A model or code file is of the wrong kind, version or shape, or is corrupt."""


class OutputError(LatentmixError):
    """An output would escape its folder, overwrite an input or an existing file (without --force), or cannot be
    written."""
