"""The lock on a run folder: one training writes to an `--out` folder at a time; a lock left by a killed run is
taken over.

`RUN/.lock` is held with an exclusive `fcntl.flock` for the whole run and holds the holder's pid, host and start
time (for the message a second writer gets); a run that ends removes it. The kernel drops a flock when its process
dies, however it dies, so a lock file left by a SIGKILLed or crashed run is stale by construction and the next run
takes it over (and says so). Where the file system has no flock (some network mounts) the recorded pid decides:
a live process on this host holds the folder, anything else is stale. filelock and similar packages were not
used: the message here must name the holder, and a takeover must be reported.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from ..errors import ConfigError

LOCK_NAME = ".lock"


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:        # exists, owned by someone else
        return True
    return True


def _read(path: Path) -> dict:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _holder(info: dict) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["started"])) if isinstance(
        info.get("started"), (int, float)) else "an unknown time"
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')}, since {when}"


class RunLock:
    """Exclusive lock on a run folder: `with RunLock(folder) as lock:`; `lock.took_over` describes a stale lock
    that was taken over (None otherwise). ConfigError when another live process holds the folder."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.fd: int | None = None
        self.took_over: str | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(10):                     # the file may be replaced between open and flock: retry
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                held = self._flock(fd)
            except BaseException:
                os.close(fd)
                raise
            if held and self._same_file(fd):
                self.fd = fd
                self._record()
                return
            os.close(fd)
        raise ConfigError(f"{self.folder}: could not lock the run folder (its lock file keeps changing)")

    def _flock(self, fd: int) -> bool:
        """True when this process now holds `fd`'s lock; ConfigError naming the holder when a live one does."""
        previous = _read(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{self.folder}: another training is writing to this run folder "
                              f"({_holder(previous)}); wait for it to end or choose another --out") from None
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
            if previous.get("host") == socket.gethostname() and previous.get("pid") != os.getpid() \
                    and _alive(previous.get("pid")):       # no flock here: the recorded pid decides
                raise ConfigError(f"{self.folder}: another training is writing to this run folder "
                                  f"({_holder(previous)}); wait for it to end or choose another --out") from None
        if previous.get("pid") not in (None, os.getpid()):
            self.took_over = f"took over the lock left by {_holder(previous)} (no longer running)"
        return True

    def _same_file(self, fd: int) -> bool:
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            return False

    def _record(self) -> None:
        data = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)
        os.fsync(self.fd)

    def release(self) -> None:
        """Remove the lock file while still holding it, then drop the lock. A process that opened the old file
        and locks it after this finds it no longer at the path (`_same_file`) and tries again."""
        if self.fd is None:
            return
        try:
            self.path.unlink()
        except OSError:
            pass
        os.close(self.fd)               # closing drops the flock
        self.fd = None
