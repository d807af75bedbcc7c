"""Peak memory of `latentmix separate` and `latentmix codec encode` on long files: 1 vs 10 minutes.

Bounded memory means the peak RSS grows with the file's own size (input and output samples), not with the
model's activations per second; each run is a fresh subprocess, measured with getrusage(RUSAGE_CHILDREN).
"""
from __future__ import annotations

import argparse
import resource
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


def run(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS MiB of the child, wall seconds) for one subprocess."""
    t0 = time.time()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} failed: {proc.stderr.strip().splitlines()[-1:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the max over all children so far: run the small file first
    return max(peak, before) / 1024, time.time() - t0


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
          "input and output samples: 1 min of float32 audio is 5 MiB, 4 stems of it 20 MiB). RUSAGE_CHILDREN "
          "keeps the maximum over children, so files run from short to long.", "",
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
