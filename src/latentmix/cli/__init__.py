"""The `latentmix` command: one sub-command group per module in this package.

Errors raised as LatentmixError, and bad command lines, print as `error: <message>` on one line with exit status
2 (`--debug`, before or after the sub-command, shows the traceback). SIGTERM unwinds like an error (temporary
outputs are removed, exit 143). Nothing heavy is imported to build the parser (`--help` answers without torch);
each command imports what it needs when it runs.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import LatentmixError

GROUPS = ["data", "codec", "train", "separate", "generate", "eval", "report", "serve", "models"]


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `error: <prog>: <problem> (see <prog> --help)`, exit status 2. Sub-command
    parsers are of this class too (argparse makes them with the parent's class)."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


class UsageError(Exception):
    """A command line argparse refused (raised by Parser.error, printed by main)."""


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="latentmix",
        description="Music in the code space of a neural audio codec: synthesise Slakh-like data, encode/decode "
                    "with the codec, separate mixtures into bass/drums/guitar/piano, train and evaluate models.",
    )
    p.add_argument("--version", action="version", version=f"latentmix {__version__}")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on error")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in GROUPS:
        mod = importlib.import_module(f".{name}", __name__)
        mod.register(sub)
    return p


def main(argv=None) -> int:
    from ..limits import keep_freed_memory
    from ..outputs import Terminated, remove_live_temps, terminate_on_sigterm
    from .codec import infer_action
    keep_freed_memory()                       # separation 13-19 % faster (limits.py)
    argv = list(sys.argv[1:] if argv is None else argv)
    end = argv.index("--") if "--" in argv else len(argv)
    debug = "--debug" in argv[:end]          # accepted anywhere, also after the sub-command
    argv = infer_action([a for i, a in enumerate(argv) if a != "--debug" or i >= end])
    terminate_on_sigterm()
    try:
        args = build_parser().parse_args(argv)
        rc = args.func(args)
        return int(rc or 0)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Terminated:
        remove_live_temps()
        print("error: terminated (SIGTERM); unfinished outputs removed", file=sys.stderr)
        return 143
    except LatentmixError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (OSError, MemoryError) as e:       # the machine refused: a read-only folder, a full disk, no memory
        if debug:
            raise
        print(f"error: {_system_error(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def _system_error(e: BaseException) -> str:
    if isinstance(e, MemoryError):
        return "out of memory (use shorter --segment / --chunk-seconds, or fewer files at once)"
    name = f"{e.filename}: " if getattr(e, "filename", None) else ""
    return f"{name}{e.strerror or e}"


if __name__ == "__main__":
    sys.exit(main())
