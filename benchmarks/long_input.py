"""Peak memory of `latentmix separate` and `latentmix codec encode` on long files: 1 vs 10 minutes.

Bounded memory means the peak RSS grows with the file's own size (input and output samples), not with the
model's activations per second; each run is a fresh subprocess, measured with getrusage(RUSAGE_CHILDREN) in a
probe process per command.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import provenance, write_section  # noqa: E402

SR = 22050


def make_song(path: Path, minutes: float, seed: int = 0) -> None:
    """A long mixture: a few built-in songs looped to `minutes`."""
    from latentmix.data.composer import compose
    from latentmix.data.synth import render_song
    song = render_song(compose(seed, 20.0), SR)
    mix = sum(song.values())
    n = int(minutes * 60 * SR)
    sf.write(path, np.resize(mix, n).astype(np.float32), SR, subtype="FLOAT")


_PROBE = ("import resource, subprocess, sys\n"
          "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
          "sys.stderr.write(p.stderr[-400:])\n"
          "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if p.returncode == 0 else -1)\n")


def run(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS MiB, wall seconds) of one command, measured by a fresh probe process that only runs it."""
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", _PROBE, *cmd], capture_output=True, text=True)
    kib = int(proc.stdout.strip() or -1)
    if kib < 0:
        raise SystemExit(f"error: {' '.join(cmd)} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return kib / 1024, time.time() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0])
    p.add_argument("--write", action="store_true", help="replace the long_input section of RESULTS.md")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for minutes in sorted(args.minutes):
            f = tmp / f"long_{minutes:g}min.wav"
            make_song(f, minutes)
            for name, cmd in (("separate", ["separate", str(f), "-o", str(tmp / "sep"), "--quiet"]),
                              ("codec encode", ["codec", "encode", str(f), "-o", str(tmp / "codes"), "--quiet"])):
                rss, wall = run([sys.executable, "-m", "latentmix", *cmd])
                rows.append((name, minutes, rss, wall, minutes * 60 / wall))
                print(f"{name:13s} {minutes:5.1f} min  peak RSS {rss:7.0f} MiB  {wall:6.1f} s", file=sys.stderr)
    audio_mib = {m: m * 60 * SR * 4 / 2**20 for m in args.minutes}
    md = [provenance(__file__, argv), "",
          "Peak RSS of a fresh `latentmix` process (includes Python + torch, about 300 MiB, and the file's "
          "input and output samples: 1 min of float32 audio is 5 MiB, 4 stems of it 20 MiB); each command runs "
          "alone under a probe process that reads its RUSAGE_CHILDREN peak.", "",
          "| command | minutes | peak RSS MiB | audio buffers MiB (in + 4 stems) | wall s | x real time |",
          "|---|---|---|---|---|---|"]
    for name, minutes, rss, wall, rt in rows:
        md.append(f"| {name} | {minutes:g} | {rss:.0f} | {audio_mib[minutes] * 5:.0f} | {wall:.1f} | {rt:.1f} |")
    text = "\n".join(md)
    print(text)
    if args.write:
        write_section("long_input", "## Long inputs: bounded memory\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
