"""Benchmark of data rendering speed: procedural synthesis and SoundFont rendering, in x real time (4 stems).

Run `python benchmarks/data.py [--songs 10 --seconds 20] [--write]`; --write replaces the data section of RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from latentmix.data.build import synth_dataset
from latentmix.data.composer import compose
from latentmix.data.soundfont import render_midi
from latentmix.data.synth import render_song

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BEGIN, END = "<!-- data:begin -->", "<!-- data:end -->"
SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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

    cmd = "python benchmarks/data.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = ["## Data rendering", "",
             f"Machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}; "
             f"date {datetime.date.today().isoformat()}; command `{cmd.strip()}`.", "",
             f"{args.songs} songs x {args.seconds:g} s, bass/drums/guitar/piano at 22050 Hz.", "",
             "| renderer | audio (s) | wall (s) | x real time |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {a:.0f} | {d:.2f} | {a / d:.1f} |" for name, a, d in rows]
    table = "\n".join(lines)
    print(table)
    if args.write:
        block = f"{BEGIN}\n{table}\n{END}"
        text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
        if BEGIN in text and END in text:
            a, b = text.index(BEGIN), text.index(END) + len(END)
            text = text[:a] + block + text[b:]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        RESULTS.write_text(text)
        print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
