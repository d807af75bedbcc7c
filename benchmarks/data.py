"""Benchmark of data rendering speed: procedural synthesis and SoundFont rendering, in x real time (4 stems).

Run `python benchmarks/data.py [--songs 10 --seconds 20] [--write]`; --write replaces the data section of RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from latentmix.data.build import synth_dataset
from latentmix.data.composer import compose
from latentmix.data.soundfont import render_midi
from latentmix.data.synth import render_song

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import provenance, write_section  # noqa: E402

SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--songs", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--soundfont", default=SF2)
    ap.add_argument("--write", action="store_true", help="write the table into benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    audio = args.songs * args.seconds
    songs = [compose(1000 + i, args.seconds) for i in range(args.songs)]
    render_song(compose(1, 2.0))  # warm-up (imports, filter design caches)
    rows = []

    t = time.perf_counter()
    for s in songs:
        render_song(s)
    dt = time.perf_counter() - t
    rows.append(("procedural, render_song (1 process, 4 stems)", audio, dt))

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        synth_dataset(Path(tmp) / "p", args.songs, args.seconds, seed=0, progress=False)
        dt = time.perf_counter() - t
    rows.append((f"procedural, synth_dataset (compose+render+write, {min(2, os.cpu_count() or 1)} workers)", audio, dt))

    if Path(args.soundfont).exists():
        t = time.perf_counter()
        render_midi(songs[0], args.soundfont)
        load = time.perf_counter() - t
        t = time.perf_counter()
        for s in songs:
            render_midi(s, args.soundfont, tail=0.0)
        dt = time.perf_counter() - t
        rows.append((f"soundfont {Path(args.soundfont).name} (1 process, 4 stems; first load {load:.1f} s excluded)",
                     audio, dt))
    else:
        print(f"note: {args.soundfont} missing, SoundFont row skipped", file=sys.stderr)

    lines = ["## Data rendering", "", provenance(__file__, argv), "",
             f"{args.songs} songs x {args.seconds:g} s, bass/drums/guitar/piano at 22050 Hz.", "",
             "| renderer | audio (s) | wall (s) | x real time |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {a:.0f} | {d:.2f} | {a / d:.1f} |" for name, a, d in rows]
    table = "\n".join(lines)
    print(table)
    if args.write:
        print(f"wrote {write_section('data', table)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
