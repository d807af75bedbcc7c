"""`latentmix eval`: score separations with a named protocol (`eval separation`) or end to end (`eval msdm`).

Prints a per-stem markdown table on stdout and optionally writes the numbers, protocol and version as JSON.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from .. import __version__
from ..fileio import atomic_path
from ..errors import ConfigError, InputError
from ..validation import arg
from .separate import known_methods

PROTOCOL_NAMES = ("msdm", "lass")     # metrics.protocols.PROTOCOLS (named here: the parser imports no torch)


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate separations",
                              description="Evaluate source separation with the msdm or lass protocol.")
    sub = p.add_subparsers(dest="eval_command", metavar="WHAT")
    sub.required = True

    s = sub.add_parser("separation", help="score estimate folders against reference folders",
                       description="Score <estimates>/<track>/<stem>.wav against <reference>/<track>/<stem>.wav.")
    s.add_argument("--reference", required=True, help="folder of reference track folders (e.g. DATA/test)")
    s.add_argument("--estimates", required=True, help="folder of estimate track folders")
    s.add_argument("--protocol", default="msdm", help=f"one of: {', '.join(PROTOCOL_NAMES)} (default msdm)")
    s.add_argument("--name", default=None, help="row name in the table (default: the estimates folder)")
    s.add_argument("--json", default=None, metavar="OUT.json", help="also write the results as JSON")
    s.set_defaults(func=run_separation)

    m = sub.add_parser("msdm", help="separate a data split with a method and score it with the msdm protocol",
                       description="Separate every track of DATA/SPLIT in memory and score it (msdm protocol).")
    m.add_argument("--data", required=True, help="MSDM-layout root holding train/validation/test")
    m.add_argument("--split", default="test", help="split to evaluate (default test)")
    m.add_argument("--method", required=True, help=f"separation method: {', '.join(known_methods())}")
    m.add_argument("--model", default=None, help="model file for methods that load one")
    m.add_argument("--segment", type=arg("seconds"), default=None, help="segment length in seconds (default: method's)")
    m.add_argument("--overlap", type=arg("fraction"), default=0.25, help="segment overlap (default 0.25)")
    m.add_argument("--device", default="auto", help="auto, cpu or cuda")
    m.add_argument("--limit", type=arg("count"), default=None, help="only the first N tracks")
    m.add_argument("--json", default=None, metavar="OUT.json", help="also write the results as JSON")
    m.add_argument("--quiet", action="store_true", help="no progress output")
    m.set_defaults(func=run_msdm)


def write_json(path, payload: dict) -> None:
    """Write payload as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(payload, indent=2, allow_nan=True) + "\n")


def run_separation(args) -> int:
    from ..metrics.protocols import format_table, get_protocol, score_folders
    protocol = get_protocol(args.protocol)
    for flag, folder in (("--reference", args.reference), ("--estimates", args.estimates)):
        if not Path(folder).is_dir():
            raise InputError(f"{folder}: no such folder ({flag})")
    t0 = time.time()
    res = score_folders(args.reference, args.estimates, protocol)
    name = args.name or Path(args.estimates).name
    print(f"protocol {protocol.name} v{protocol.version}: {protocol.metric}; {res['tracks']} track(s), "
          f"{res['results']['windows']} window(s)")
    print(format_table({name: res["results"]}, protocol.stems))
    if args.json:
        write_json(args.json, {"command": "eval separation", "method": name, "reference": str(args.reference),
                               "estimates": str(args.estimates), "latentmix_version": __version__,
                               "seconds": round(time.time() - t0, 3), **res})
    return 0


def _list_split(root: Path, split: str, stems) -> list[Path]:
    split_dir = root / split
    if not root.is_dir():
        raise InputError(f"{root}: no such folder (--data)")
    if not split_dir.is_dir():
        raise InputError(f"{split_dir}: no such split folder")
    from ..metrics.protocols import reference_tracks
    try:
        from ..data.datasets import list_tracks  # the data room's lister, when present
        tracks = [Path(t) for t in list_tracks(root, split)]
    except ImportError:
        tracks = reference_tracks(split_dir, stems)
    if not tracks:
        raise InputError(f"{split_dir}: no tracks")
    return tracks


def run_msdm(args) -> int:
    from ..device import resolve_device
    from ..evaluation.separation import Candidate, evaluate_separation
    from ..metrics.protocols import format_table, get_protocol
    from ..separation.registry import get_method
    protocol = get_protocol("msdm")
    device = resolve_device(args.device)
    method = get_method(args.method, model=args.model, device=device)
    if tuple(method.stems) != tuple(protocol.stems):
        raise ConfigError(f"method '{args.method}' gives stems {', '.join(method.stems)}; the msdm protocol "
                          f"needs {', '.join(protocol.stems)}")
    tracks = _list_split(Path(args.data), args.split, protocol.stems)[: args.limit]
    t0 = time.time()
    ev = evaluate_separation([Candidate(method, args.method, segment_seconds=args.segment, overlap=args.overlap)],
                             args.data, args.split, protocol, tracks=tracks, device=device, progress=not args.quiet)
    res = ev.results[args.method]
    elapsed = time.time() - t0
    print(f"protocol msdm v{protocol.version}: {protocol.metric}; split {args.split}, {len(tracks)} track(s), "
          f"{res.summary['windows']} window(s), {ev.audio_seconds / max(elapsed, 1e-9):.1f}x real time")
    print(format_table({args.method: res.summary}, protocol.stems))
    if args.json:
        write_json(args.json, {"command": "eval msdm", "method": args.method, "model": args.model,
                               "data": str(args.data), "split": args.split, "protocol": protocol.name,
                               "version": protocol.version, "metric": protocol.metric, "tracks": len(tracks),
                               "device": device, "seconds": round(elapsed, 3), "latentmix_version": __version__,
                               "results": res.summary, "per_track": res.per_track,
                               "evaluation": ev.to_json()})
    return 0
