"""Safe outputs: the one way a command turns its inputs into output paths and writes them.

Every writer of the CLI (separate, codec encode/decode/roundtrip) goes through here:

- `target(out, n_inputs)`: what `-o` means. A path ending in a known audio or code extension is a file (only for
  one input); anything else is a folder. A folder that exists as a file, or a file-named path that is a folder,
  is refused.
- `sanitize(name)`: a track or file name made safe as one path component (no separators, no control characters,
  no `.`/`..`, no leading dot).
- `OutputRoot`: the `-o` folder. `path(*parts)` joins sanitised parts under it and refuses anything that
  resolves outside it or onto one of the inputs.
- `unique(names)`: distinct names for colliding ones (`mix`, `mix` -> `mix`, `mix_2`), in input order.
- `Transaction`: the files of one item are written to temporary files beside their targets and renamed into
  place together at `commit()`; any failure (or SIGTERM) removes the temporaries and whatever the item already
  renamed, so an item leaves all its outputs or none. An existing target is refused unless `force`.
- `terminate_on_sigterm()`: SIGTERM raises `Terminated` in the main thread, so every `finally` (and every
  `fileio.atomic_path`) cleans up; temporaries of worker threads are removed by `remove_live_temps()`; forked
  child processes take SIGTERM's default action.
"""
from __future__ import annotations

import atexit
import glob
import os
import signal
import tempfile
import threading
from pathlib import Path

from .errors import OutputError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")
CODE_EXTENSIONS = (".lmxc",)
FILE_EXTENSIONS = AUDIO_EXTENSIONS + CODE_EXTENSIONS
_MAX_NAME = 200

_LIVE: set[Path] = set()          # temporaries not yet renamed or removed (any thread)
_LOCK = threading.Lock()
_CLOSING = threading.Event()      # set on SIGTERM: no transaction commits any more


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM after `terminate_on_sigterm()` (a BaseException, like
    KeyboardInterrupt, so `except Exception` does not swallow it)."""


def sanitize(name: str) -> str:
    """`name` as one safe path component: separators and control characters become `_`, a name of only dots or
    with a leading dot gets `_` in their place, surrounding spaces go, empty becomes `_`, long names are cut."""
    name = "".join("_" if (c in "/\\" or not c.isprintable()) else c for c in str(name)).strip()
    stripped = name.lstrip(".")
    name = "_" * (len(name) - len(stripped)) + stripped
    name = name or "_"
    while len(name.encode("utf-8", "surrogateescape")) > _MAX_NAME:
        name = name[:-1]
    return name


def unique(names) -> list[str]:
    """Distinct names in order: a repeat of an earlier name gets `_2`, `_3`, ... (itself never taken)."""
    seen: set[str] = set()
    out = []
    for n in names:
        cand, k = n, 2
        while cand.lower() in seen:
            cand, k = f"{n}_{k}", k + 1
        seen.add(cand.lower())
        out.append(cand)
    return out


def is_file_target(out) -> bool:
    """The -o rule: a path ending in a known audio or code extension names a file; anything else a folder."""
    return Path(str(out)).suffix.lower() in FILE_EXTENSIONS


def target(out, n_inputs: int) -> tuple[str, Path]:
    """("file", path) or ("dir", path) for `-o out` (see `is_file_target`); OutputError for a file target with
    several inputs, a file target that is a folder, or a folder target that is a file."""
    p = Path(str(out))
    if is_file_target(p):
        if p.is_dir():
            raise OutputError(f"-o {p}: is a folder, but its name ends in {p.suffix} (a file); rename it or give "
                              f"another path")
        if n_inputs != 1:
            raise OutputError(f"-o {p}: names one file, but there are {n_inputs} inputs; give a folder")
        return "file", p
    if p.exists() and not p.is_dir():
        raise OutputError(f"-o {p}: exists and is not a folder (an output file needs an audio or .lmxc extension)")
    return "dir", p


class OutputRoot:
    """The output folder (or, for a file target, the folder holding it) and the checks every output passes.

    inputs: the files read by the command; an output that is one of them is refused. force: existing outputs may
    be replaced. skip_existing: an item whose outputs all exist is skipped (see `exists`).
    """

    def __init__(self, root, inputs=(), force: bool = False, skip_existing: bool = False):
        self.root = Path(root)
        self.resolved = self.root.resolve()
        self.inputs = {Path(p).resolve() for p in inputs}
        self.force, self.skip_existing = bool(force), bool(skip_existing)

    def path(self, *parts: str, sanitized: bool = False) -> Path:
        """root/part/part/...: each part sanitised (unless `sanitized`), the result checked to stay under the root
        and to be no input."""
        parts = [p if sanitized else sanitize(p) for p in parts]
        p = self.root.joinpath(*parts)
        self.check(p)
        return p

    def check(self, p: Path) -> Path:
        """OutputError if `p` resolves outside the root, onto the root itself, or onto an input file."""
        r = Path(p).resolve()
        if r == self.resolved or self.resolved not in r.parents:
            raise OutputError(f"{p}: output would be written outside the output folder {self.root}")
        if r in self.inputs:
            raise OutputError(f"{p}: output is one of the inputs; refusing to overwrite it (choose another -o)")
        return p

    def template(self, template: str, **fields) -> Path:
        """The path `template` names under the root, fields sanitised first (`{track}/{stem}.{ext}`); the
        template's own `/` separate folders, and a `.`, `..` or empty component in it is refused."""
        safe = {k: sanitize(v) for k, v in fields.items()}
        try:
            text = template.format(**safe)
        except (KeyError, IndexError, ValueError) as e:
            raise OutputError(f"--filename {template!r}: unknown field {e} "
                              f"(known: {', '.join('{' + k + '}' for k in fields)})") from None
        parts = text.replace("\\", "/").split("/")
        if any(c in ("", ".", "..") for c in parts) or text.startswith("/"):
            raise OutputError(f"--filename {template!r}: gives {text!r}; folders must be plain names under -o")
        return self.path(*[sanitize(c) for c in parts], sanitized=True)

    def exists(self, paths) -> bool:
        """True when every path exists (an item to skip with --skip-existing)."""
        return all(Path(p).exists() for p in paths)

    def refuse_existing(self, paths) -> None:
        """OutputError naming the first existing path, unless force."""
        if self.force:
            return
        for p in paths:
            if Path(p).exists():
                raise OutputError(f"{p}: already exists (use --force to overwrite, --skip-existing to skip)")


class Transaction:
    """All outputs of one item, or none (see the module docstring). Use as a context manager:

        with Transaction(force) as tx:
            write(tx.temp(final_path), ...)      # as many files as the item has
        # on leaving without an exception: all renamed into place; with one: nothing left behind
    """

    def __init__(self, force: bool = False):
        self.force = force
        self.pending: list[tuple[Path, Path]] = []     # (temporary, final)
        self.made_dirs: list[Path] = []

    def temp(self, final) -> Path:
        """A new temporary file in `final`'s folder (created, and removed again on failure if it was new)."""
        if _CLOSING.is_set():
            raise Terminated()
        final = Path(final)
        if not self.force and final.exists():
            raise OutputError(f"{final}: already exists (use --force to overwrite, --skip-existing to skip)")
        self._mkdirs(final.parent)
        try:
            fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
        except OSError as e:
            raise OutputError(f"{final.parent}: cannot write there ({e.strerror or e})") from None
        os.close(fd)
        tmp = Path(tmp)
        with _LOCK:
            _LIVE.add(tmp)
        self.pending.append((tmp, final))
        return tmp

    def _mkdirs(self, d: Path) -> None:
        missing = []
        while not d.exists():
            missing.append(d)
            d = d.parent
        for m in reversed(missing):
            try:
                m.mkdir()
            except FileExistsError:
                continue
            except OSError as e:
                raise OutputError(f"{m}: cannot create the folder ({e.strerror or e})") from None
            self.made_dirs.append(m)

    def commit(self) -> list[Path]:
        """Rename every temporary into place (refusing existing targets unless force); on failure undo."""
        done: list[Path] = []
        try:
            if _CLOSING.is_set():
                raise Terminated()
            mode = 0o666 & ~_umask()          # mkstemp makes 0600 files; outputs are for other tools
            for tmp, final in self.pending:
                if not self.force and final.exists():
                    raise OutputError(f"{final}: already exists (use --force to overwrite, --skip-existing to skip)")
                os.chmod(tmp, mode)
                os.replace(tmp, final)
                done.append(final)
                with _LOCK:
                    _LIVE.discard(tmp)
        except BaseException:
            for f in done:                    # all or nothing: what this item already placed goes again
                _unlink(f)
            self.abort()
            raise
        self.pending = []
        return done

    def abort(self) -> None:
        """Remove every temporary and every folder this item created that is now empty."""
        for tmp, _ in self.pending:
            _unlink(tmp)
            with _LOCK:
                _LIVE.discard(tmp)
        self.pending = []
        for d in reversed(self.made_dirs):
            try:
                d.rmdir()
            except OSError:
                pass
        self.made_dirs = []

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.abort()
        return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _unlink(p: Path) -> None:
    try:
        Path(p).unlink()
    except FileNotFoundError:
        pass


def remove_stale_temps(paths) -> int:
    """Remove the temporaries a killed process (SIGKILL: no cleanup ran) left beside these final paths; only for
    outputs no live process is writing (a resumed batch item). -> the number removed."""
    n = 0
    for final in map(Path, paths):
        if final.parent.is_dir():
            for tmp in final.parent.glob(f".{glob.escape(final.name)}.*.tmp"):
                _unlink(tmp)
                n += 1
    return n


def remove_live_temps() -> None:
    """Remove the temporaries of every transaction still open (called on SIGTERM and at exit)."""
    with _LOCK:
        live = list(_LIVE)
        _LIVE.clear()
    for p in live:
        _unlink(p)


def _on_sigterm(signum, frame):
    _CLOSING.set()
    raise Terminated()


def _default_sigterm_in_child() -> None:
    """A forked child (a data-synth pool worker, a DataLoader worker) takes SIGTERM's default action: the handler
    is for the process that installed it, and a pool's shutdown SIGTERMs its workers (one traceback each)."""
    if signal.getsignal(signal.SIGTERM) is _on_sigterm:
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        except ValueError:      # not the child's main thread: nothing to undo there
            pass


def terminate_on_sigterm() -> None:
    """Make SIGTERM raise `Terminated` in the main thread (nothing when not called from the main thread); forked
    children get the default action back."""
    global _AT_FORK
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
        if not _AT_FORK and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_default_sigterm_in_child)
            _AT_FORK = True


_AT_FORK = False


atexit.register(remove_live_temps)
