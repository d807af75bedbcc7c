"""The `latentmix` command: one sub-command group per module in this package.

Errors raised as LatentmixError print as `error: <message>` on one line with exit status 2
(`--debug` shows the traceback). SIGTERM unwinds like an error (temporary outputs are removed, exit 143).
Nothing heavy is imported to build the parser (`--help` answers without torch); each command imports what it
needs when it runs.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import LatentmixError

GROUPS = ["data", "codec", "train", "separate", "generate", "eval", "report", "serve", "models"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
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
    from ..outputs import Terminated, remove_live_temps, terminate_on_sigterm
    from .codec import infer_action
    argv = infer_action(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    terminate_on_sigterm()
    try:
        rc = args.func(args)
        return int(rc or 0)
    except Terminated:
        remove_live_temps()
        print("error: terminated (SIGTERM); unfinished outputs removed", file=sys.stderr)
        return 143
    except LatentmixError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
