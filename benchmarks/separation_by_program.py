"""Per-instrument breakdown of a separation benchmark: each stem's non-silent SI-SNRi grouped by the General
MIDI program that rendered it (metadata.json `programs`), beside the IRM's, from a `separation.py --json` file.

Where a model loses to its ceiling is then a list of instruments (e.g. FluidR3's distortion guitars), not a mean.
No audio is run: the figures are the per-track ones the JSON already holds.

    python benchmarks/separation_by_program.py --json runs/sep_fluidr3.json --stems guitar,piano \
        --write --section separation-by-program-fluidr3
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, run_main, today, write_section  # noqa: E402

from latentmix.data.composer import PROGRAM_NAMES  # noqa: E402
from latentmix.data.datasets import list_tracks  # noqa: E402
from latentmix.errors import InputError  # noqa: E402

IRM = "IRM (oracle)"


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True, help="a benchmarks/separation.py --json file (with per-track figures)")
    ap.add_argument("--data", help="the dataset root the JSON scored (default: the JSON's own `data`)")
    ap.add_argument("--stems", help="comma-separated stems to break down (default: every scored stem but drums)")
    ap.add_argument("--row", action="append", help="a row of the JSON to show (repeatable; default: every row but "
                                                     "the IRM's, which is the ceiling column)")
    ap.add_argument("--write", action="store_true", help="replace --section of benchmarks/RESULTS.md")
    ap.add_argument("--section", default="separation-by-program")
    return ap.parse_args(argv)


def load(path: str) -> dict:
    p = Path(path)
    try:
        res = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{p}: not a readable JSON file ({e})") from None
    if not isinstance(res, dict) or not isinstance(res.get("rows"), dict) or not res["rows"]:
        raise InputError(f"{p}: no `rows`: not a benchmarks/separation.py --json file")
    if not all(isinstance(r, dict) and isinstance(r.get("per_track"), dict) for r in res["rows"].values()):
        raise InputError(f"{p}: a row has no per-track figures (written by an older separation.py)")
    return res


def programs_of(root: str, split: str | None) -> dict[str, dict]:
    """{track folder name: metadata programs} for every track of root/split."""
    out = {}
    for t in list_tracks(root, split):
        meta = Path(t) / "metadata.json"
        try:
            out[Path(t).name] = json.loads(meta.read_text()).get("programs") or {}
        except (OSError, ValueError) as e:
            raise InputError(f"{meta}: unreadable track metadata ({e})") from None
    return out


def label(programs) -> str:
    return " + ".join(f"{p} {PROGRAM_NAMES.get(int(p), 'GM program')}" for p in programs)


def mean(xs) -> float:
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return sum(xs) / len(xs) if xs else float("nan")


def breakdown(res: dict, progs: dict, stems, rows) -> dict:
    """{stem: {program label: {row: mean non-silent SI-SNRi over its tracks, 'tracks': n}}}."""
    out = {}
    for stem in stems:
        key = f"{stem} (non-silent)"
        groups = defaultdict(list)
        for track in res["rows"][rows[0]]["per_track"]:
            p = progs.get(Path(track).name, {}).get(stem)
            if p:
                groups[tuple(p)].append(Path(track).name)
        table = {}
        for p in sorted(groups):
            cell = {"tracks": len(groups[p])}
            for r in rows + ([IRM] if IRM in res["rows"] else []):
                per = res["rows"][r]["per_track"]
                cell[r] = mean(per.get(t, {}).get(key) for t in groups[p])
            table[label(p)] = cell
        out[stem] = table
    return out


def markdown(res: dict, tables: dict, rows, command: str) -> str:
    f = lambda v: "-" if not math.isfinite(v) else f"{v:.2f}"   # noqa: E731
    lines = [f"## Separation by instrument: `{res.get('data')}` {res.get('split')} split", "",
             f"Date {today()}; command `{command}`; from the per-track figures of the benchmark run "
             f"`{res.get('command', '?')}` ({res.get('date', '?')}).", "",
             "Each cell: the mean over the tracks whose stem that program rendered of the track's non-silent "
             "SI-SNRi (dB, msdm windows); the IRM column is the ceiling on the same tracks.", ""]
    cols = list(rows) + ([IRM] if IRM in res["rows"] else [])
    for stem, table in tables.items():
        lines += [f"### {stem}", "", "| program | tracks | " + " | ".join(cols) + " |",
                  "|---|---:|" + "---:|" * len(cols)]
        for name, cell in table.items():
            lines.append(f"| {name} | {cell['tracks']} | " + " | ".join(f(cell[c]) for c in cols) + " |")
        lines.append("")
    return "\n".join(lines)


def run(argv=None) -> tuple[dict, str]:
    args = parse_args(argv)
    res = load(args.json)
    rows = args.row or [r for r in res["rows"] if r != IRM]
    for r in rows:
        if r not in res["rows"]:
            raise InputError(f"{args.json}: no row named {r!r} (rows: {', '.join(res['rows'])})")
    stems = args.stems.split(",") if args.stems else [s for s in res.get("stems", []) if s != "drums"]
    data = args.data or res.get("data")
    if not data:
        raise InputError(f"{args.json}: names no dataset; pass --data")
    tables = breakdown(res, programs_of(data, res.get("split")), stems, rows)
    md = markdown(res, tables, rows, command_line(__file__, sys.argv[1:] if argv is None else argv))
    if args.write:
        print(f"wrote {write_section(args.section, md)}", file=sys.stderr)
    return tables, md


def main(argv=None) -> int:
    def _run(a):
        print(run(a)[1])
        return 0
    return run_main(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
