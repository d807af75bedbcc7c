"""Are the held-out test SoundFonts really unseen? For each test font and stem class, how many of the recorded
samples its General MIDI programs play are held bit for bit by each training font (and by all of them together).

A test set rendered with a font whose samples a training font shares is not an unseen-timbre test set.

    python benchmarks/soundfont_overlap.py --test FluidR3_GM=/usr/share/sounds/sf2/FluidR3_GM.sf2 \
        --train csound=/usr/share/sounds/sf2/sf_GMbank.sf2 --write --section soundfont-overlap
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import parse_named, provenance, publish, run_main  # noqa: E402

from latentmix.data.sf2_samples import overlap  # noqa: E402
from latentmix.data.soundfont import CLASSES  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--test", action="append", required=True, metavar="NAME=PATH", help="a test SoundFont")
    ap.add_argument("--train", action="append", required=True, metavar="NAME=PATH", help="a training SoundFont")
    ap.add_argument("--note", default="", help="a sentence printed under the table")
    ap.add_argument("--write", action="store_true", help="replace --section of benchmarks/RESULTS.md")
    ap.add_argument("--section", default="soundfont-overlap")
    return ap.parse_args(argv)


def cell(r: dict) -> str:
    """'shared/total (frames %)', or '-' for a class the font has no samples for."""
    if not r["samples"]:
        return "-"
    return f"{r['shared']}/{r['samples']} ({100 * r['frames_share']:.0f} %)"


def table(tests, trains) -> str:
    rows = ["| test font | training font(s) | " + " | ".join(CLASSES) + " |",
            "|---|---|" + "---|" * len(CLASSES)]
    groups = [(n, [p]) for n, p in trains] + ([("all of them", [p for _, p in trains])] if len(trains) > 1 else [])
    for tname, tpath in tests:
        for gname, paths in groups:
            r = overlap(tpath, paths)
            rows.append(f"| {tname} | {gname} | " + " | ".join(cell(r[c]) for c in CLASSES) + " |")
    return "\n".join(rows)


def run(argv=None) -> int:
    args = parse_args(argv)
    tests = parse_named(args.test, "--test")
    trains = parse_named(args.train, "--train")
    md = "\n\n".join(x for x in [
        provenance(__file__, argv),
        "Each cell: of the recorded samples the test font plays for that stem class (its General MIDI programs in "
        "bank 0; drums: the bank-128 standard kit), how many the training font(s) hold bit for bit, and in "
        "brackets their share of the class's sample frames. Bit-identical is a lower bound: a resampled or "
        "re-edited copy is not counted.",
        table(tests, trains), args.note] if x)
    publish(md, args.section, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(run))
