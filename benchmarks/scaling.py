"""Scale-out on one machine (issue 20 item 5): 1 process against 2 torchrun ranks, for training (codec v2 steps/s
and training items/s) and for batch separation (songs and audio seconds per second of wall clock).

Both sides get the same CPUs: one process with `--threads` torch threads against `--threads` ranks of one thread
each (OMP_NUM_THREADS=1, as torchrun sets it). Training runs `latentmix train codec --config cpu_v2` for `--steps`
steps at `--batch` items per rank (so 2 ranks train on twice the items per step); the loop's own "trained N steps
in S s" line is the time (model building and data loading before the first step excluded). Separation runs
`latentmix separate` over `--songs` test mixtures of `--seconds` s (written once from the data's test split) with
the shipped separator; the time is the wall clock of the whole command, process start and model load included
(what a user waits for).

    python benchmarks/scaling.py --data data/slakhlike [--steps 30] [--songs 16] [--write]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import provenance, run_main, write_section  # noqa: E402

from latentmix.errors import ConfigError, LatentmixError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _env(threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT / "src")}


def _launch(ranks: int, port: int) -> list[str]:
    if ranks == 1:
        return [sys.executable, "-m", "latentmix"]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks), "--master_port",
            str(port), "-m", "latentmix"]


def _run(cmd: list[str], env: dict, cwd: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise LatentmixError(f"{' '.join(cmd[:6])} ...: exit {r.returncode}: {r.stderr.strip()[-600:]}")
    return wall, r.stdout + r.stderr


def train_row(ranks: int, threads: int, args, work: Path) -> dict:
    out = work / f"train_{ranks}"
    shutil.rmtree(out, ignore_errors=True)
    env = _env(threads if ranks == 1 else 1)
    cmd = _launch(ranks, 29400 + ranks) + [
        "train", "codec", "--config", "cpu_v2", "--data", str(Path(args.data).resolve()), "--out", str(out),
        "--steps", str(args.steps), "--seed", "0", "--set", f"train.batch_size={args.batch}",
        "--set", "train.val_every=0", "--set", "train.ckpt_every=0", "--set", "train.log_every=1000"]
    wall, text = _run(cmd, env, work)
    m = re.search(r"trained (\d+) steps in ([\d.]+) s", text)
    if not m:
        raise LatentmixError(f"train with {ranks} rank(s): no 'trained N steps in S s' line in its output")
    steps, secs = int(m.group(1)), float(m.group(2))
    return {"ranks": ranks, "steps_s": steps / secs, "items_s": steps * args.batch * ranks / secs, "wall": wall}


def songs(args, folder: Path) -> float:
    """--songs test mixtures (the sum of each test track's stems, first --seconds s) -> seconds of audio."""
    tracks = sorted(p for p in (Path(args.data) / "test").iterdir() if p.is_dir())
    if not tracks:
        raise ConfigError(f"{args.data}/test: no test tracks")
    folder.mkdir(parents=True, exist_ok=True)
    total = 0.0
    for i in range(args.songs):
        stems = [sf.read(f, dtype="float32") for f in sorted(tracks[i % len(tracks)].glob("*.wav"))
                 if f.stem != "mix"]
        sr = stems[0][1]
        n = min(len(x) for x, _ in stems)
        mix = sum(x[:n] for x, _ in stems)[: int(args.seconds * sr)]
        sf.write(folder / f"song{i:03d}.wav", np.asarray(mix, dtype=np.float32), sr, subtype="PCM_16")
        total += len(mix) / sr
    return total


def separate_row(ranks: int, threads: int, args, work: Path, inputs: Path, audio_s: float) -> dict:
    out = work / f"sep_{ranks}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = _launch(ranks, 29500 + ranks) + ["separate", str(inputs), "-o", str(out), "--quiet"]
    wall, _ = _run(cmd, _env(threads if ranks == 1 else 1), work)
    return {"ranks": ranks, "wall": wall, "songs_s": args.songs / wall, "x_rt": audio_s / wall}


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/slakhlike", help="MSDM-layout data (train for training, test songs)")
    p.add_argument("--steps", type=int, default=30, help="training steps per row (default 30)")
    p.add_argument("--batch", type=int, default=4, help="training items per rank and step (default 4)")
    p.add_argument("--songs", type=int, default=16, help="songs separated per row (default 16)")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds per song (default 20)")
    p.add_argument("--threads", type=int, default=2, help="CPUs per row: threads of 1 process = ranks (default 2)")
    p.add_argument("--write", action="store_true", help="replace the scaling section of benchmarks/RESULTS.md")
    return p.parse_args(argv)


def run(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    if not (Path(args.data) / "train").is_dir():
        raise ConfigError(f"{args.data}: no train/ folder (make one with `latentmix data synth`)")
    ranks = args.threads
    with tempfile.TemporaryDirectory(prefix="lm_scaling_") as tmp:
        work = Path(tmp)
        audio_s = songs(args, work / "songs")
        sep = [separate_row(r, args.threads, args, work, work / "songs", audio_s) for r in (1, ranks)]
        train = [train_row(r, args.threads, args, work) for r in (1, ranks)]
    L = ["## Scaling: 1 process vs torchrun ranks on this machine (issue 20)", "",
         provenance(__file__, argv, args.threads), "",
         f"Same CPUs on both sides: 1 process with {args.threads} torch threads, or {ranks} torchrun ranks of 1 "
         "thread each.", "",
         f"Batch separation (shipped separator, {args.songs} songs x {args.seconds:g} s, whole command incl. "
         "process start and model load):", "",
         "| launch | wall (s) | songs/s | x real time | speed-up |", "|---|---:|---:|---:|---:|"]
    for r in sep:
        label = "1 process" if r["ranks"] == 1 else f"torchrun {r['ranks']} ranks"
        L.append(f"| {label} | {r['wall']:.1f} | {r['songs_s']:.2f} | {r['x_rt']:.1f} | "
                 f"{sep[0]['wall'] / r['wall']:.2f}x |")
    L += ["", f"Training (codec v2 preset, {args.steps} steps, {args.batch} items per rank and step; the loop's "
          "step time):", "",
          "| launch | steps/s | items/s | items/s speed-up |", "|---|---:|---:|---:|"]
    for r in train:
        L.append(f"| {'1 process' if r['ranks'] == 1 else f'torchrun {ranks} ranks (DDP)'} | {r['steps_s']:.2f} | "
                 f"{r['items_s']:.2f} | {r['items_s'] / train[0]['items_s']:.2f}x |")
    text = "\n".join(L) + "\n"
    print(text)
    if args.write:
        print(f"wrote {write_section('scaling', text)}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    return run_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
