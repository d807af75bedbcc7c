"""`make demo`: the main job end to end on built-in data with the shipped models.

Synthesises a few Slakh-like songs, separates them with the shipped separator beside the IRM ceiling (msdm
protocol), round-trips a song through the shipped codec, reporting quality and bitrate, and separates bass + drums
chunks with the Bayesian method (no supervised separator) beside the supervised separator and the codec ceiling
(lass protocol).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from . import STEMS
from .audio import write_audio


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m latentmix.demo", description=__doc__)
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out/)")
    p.add_argument("--tracks", type=int, default=3, help="songs to synthesise (default 3)")
    p.add_argument("--seconds", type=float, default=16.0, help="length of each song (default 16)")
    p.add_argument("--seed", type=int, default=2026, help="seed of the demo songs (not in the training set)")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))

    from .data.build import synth_dataset
    from .data.datasets import list_tracks
    from .evaluation.codec import evaluate_codec, load_items
    from .evaluation.separation import Candidate, evaluate_separation
    from .metrics.protocols import format_table
    from .separation.registry import get_method

    out = Path(args.out)
    data = out / "songs"
    log(f"[1/4] synthesising {args.tracks} Slakh-like songs of {args.seconds:g} s into {data}/ (seed {args.seed})")
    t0 = time.time()
    synth_dataset(data, tracks=args.tracks, seconds=args.seconds, seed=args.seed, splits=(0.0, 0.0, 1.0),
                  progress=False)
    tracks = list_tracks(data, "test")
    log(f"      rendered in {time.time() - t0:.1f} s")

    log("[2/4] separating with the shipped separator and the IRM oracle (msdm protocol, SI-SDRi dB)")
    ours, ceiling = "latentmix (shipped)", "IRM oracle (ceiling)"

    def write_stems(name, track, est):
        if name == ours:
            for i, stem in enumerate(STEMS):
                write_audio(out / "separated" / track.name / f"{stem}.wav", est[i:i + 1])

    ev = evaluate_separation([Candidate(get_method("supervised"), ours), Candidate(get_method("oracle-irm"), ceiling)],
                             data, "test", "msdm", tracks=tracks, on_estimate=write_stems)
    sep = ev.results[ours]
    print(format_table(ev.table()))
    print(f"\nseparated {sep.audio_seconds:.0f} s of audio in {sep.compute_s:.1f} s "
          f"({sep.xrt:.1f}x real time); stems in {out / 'separated'}/")

    log("[3/4] round-tripping a song through the shipped codec")
    from .codec import Codec
    from .pretrained.registry import resolve_model

    codec = Codec.load(resolve_model(None, "codec"))
    name, mix = load_items(data, "test", seconds=None, max_tracks=1)[0]
    levels = sorted({max(1, codec.num_codebooks // 4), codec.num_codebooks // 2, codec.num_codebooks})
    # warm-up: the first full-length call allocates (5x slower)
    res = evaluate_codec(codec, [(name, mix)], levels, metrics=("si_sdr", "mel_distance"), warmup=True,
                         on_decoded=lambda item, k, y: write_audio(out / "codec" / f"{item}_{k}cb.wav", y))
    write_audio(out / "codec" / f"{name}_original.wav", mix[None])
    print("\n| codebooks | kbps | SI-SDR dB (zero-mean) | mel distance (DAC 7-scale) | x real time |"
          "\n|---|---|---|---|---|")
    for r in res.records:
        print(f"| {r.level} | {r.kbps:.2f} | {r.metrics['si_sdr']:.2f} | {r.metrics['mel_distance']:.3f} | "
              f"{r.samples / codec.sample_rate / r.seconds:.0f} |")
    print(f"\ncodec audio in {out / 'codec'}/")
    bayesian_step(data, out, args.tracks)
    return 0


BAYES_METHOD = "lq-vae"        # the best Bayesian method measured so far (benchmarks/RESULTS.md, unseen timbres)


def bayesian_step(data: Path, out: Path, tracks: int) -> None:
    """[4/4] one 3 s bass + drums chunk per demo song separated by the Bayesian method, scored (lass protocol)
    beside the supervised separator, the IRM and the codec ceilings on the same chunks."""
    from .errors import LatentmixError
    from .evaluation.bayesian import evaluate_bayesian
    from .separation.bayesian import BayesianSeparator
    log(f"[4/4] Bayesian separation of bass + drums ('{BAYES_METHOD}', no supervised separator; lass protocol, "
        "SDR dB on 0.5 (bass + drums) chunks)")
    try:
        sep = BayesianSeparator.from_pretrained(method=BAYES_METHOD)
    except LatentmixError as e:
        log(f"      skipped: {e}")
        return
    ev = evaluate_bayesian([(f"{BAYES_METHOD} (Bayesian)", sep, False)], data, "test", chunks_per_track=1,
                           max_tracks=tracks, seed=0, all_selections=False)
    print("\n| method | bass SDR | drums SDR | All | s per 3 s chunk |\n|---|---|---|---|---|")
    for name, r in ev.rows.items():
        s = r.summary
        speed = f"{r.wall_s / max(len(ev.chunks), 1):.1f}" if r.wall_s else "-"
        print(f"| {name} | {s['bass']:.2f} | {s['drums']:.2f} | {s['All']:.2f} | {speed} |")
    print(f"\n{len(ev.chunks)} chunk(s); {sep.describe()}")


if __name__ == "__main__":
    from .errors import LatentmixError
    try:
        sys.exit(main())
    except LatentmixError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
