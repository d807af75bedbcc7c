"""Ground floor of the package: atomic writes and JSON files. Everything may import it; it imports nothing of
latentmix. An output is written to a temporary file beside it and renamed into place, so no reader ever sees a
half-written file and a failure leaves nothing behind. What a command may write where (the `-o` rule, names kept
under `-o`, collisions, `--force`, several files of one item written together) is latentmix.outputs.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_path(path):
    """Context helper: yields a temporary path next to `path`, renamed over it on success, removed on failure."""
    return _Atomic(Path(path))


class _Atomic:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                os.chmod(self.tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs are for other tools
                os.replace(self.tmp, self.path)
        finally:
            if self.tmp.exists():                      # failed, or the rename itself failed: leave nothing
                self.tmp.unlink()
        return False


def read_bytes(path, what: str = "file") -> bytes:
    """A file's bytes; InputError "PATH: no such WHAT" / "PATH: cannot read (...)" when it cannot be read."""
    from .errors import InputError
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what}") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None


def write_json(path, obj, indent: int = 2) -> None:
    """Write `obj` as JSON (sorted keys, trailing newline) atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=indent, sort_keys=True) + "\n")


def write_text(path, text: str) -> None:
    """Write `text` atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
