"""`make demo`: the main job end to end on built-in data with the shipped models.

Synthesises a few Slakh-like songs, separates them with the shipped separator beside the IRM ceiling (msdm
protocol), and round-trips a song through the shipped codec, reporting quality and bitrate.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from . import SAMPLE_RATE, STEMS
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
    from .data.datasets import list_tracks, load_track
    from .metrics.protocols import format_table, get_protocol
    from .separation.registry import get_method, separate_long

    out = Path(args.out)
    data = out / "songs"
    log(f"[1/3] synthesising {args.tracks} Slakh-like songs of {args.seconds:g} s into {data}/ (seed {args.seed})")
    t0 = time.time()
    synth_dataset(data, tracks=args.tracks, seconds=args.seconds, seed=args.seed, splits=(0.0, 0.0, 1.0),
                  progress=False)
    tracks = list_tracks(data, "test")
    log(f"      rendered in {time.time() - t0:.1f} s")

    log("[2/3] separating with the shipped separator and the IRM oracle (msdm protocol, SI-SDRi dB)")
    protocol = get_protocol("msdm")
    methods = {"latentmix (shipped)": get_method("supervised"), "IRM oracle (ceiling)": get_method("oracle-irm")}
    records = {name: [] for name in methods}
    seconds_audio, seconds_sep = 0.0, 0.0
    for track in tracks:
        stems = load_track(track)                      # (4, T)
        mix = stems.sum(0, keepdim=True)[None]         # (1, 1, T)
        for name, method in methods.items():
            t0 = time.time()
            est = separate_long(method, mix, stems[None] if method.needs_references else None)[0]
            if name.startswith("latentmix"):
                seconds_sep += time.time() - t0
                seconds_audio += mix.shape[-1] / SAMPLE_RATE
                for i, stem in enumerate(STEMS):
                    write_audio(out / "separated" / track.name / f"{stem}.wav", est[i:i + 1])
            records[name] += protocol.evaluate_track(stems, est, mix[0, 0])
    table = {name: protocol.aggregate(r) for name, r in records.items()}
    print(format_table(table))
    print(f"\nseparated {seconds_audio:.0f} s of audio in {seconds_sep:.1f} s "
          f"({seconds_audio / max(seconds_sep, 1e-9):.1f}x real time); stems in {out / 'separated'}/")

    log("[3/3] round-tripping a song through the shipped codec")
    from .codec import Codec
    from .metrics.codec import mel_distance
    from .metrics.sisdr import si_sdr
    from .pretrained.registry import resolve_model

    codec = Codec.load(resolve_model(None, "codec"))
    stems = load_track(tracks[0])
    mix = stems.sum(0, keepdim=True)[None]
    rows = []
    with torch.inference_mode():
        codec.decode(codec.encode(mix))   # warm-up: the first full-length call allocates (5x slower)
        for k in sorted({max(1, codec.num_codebooks // 4), codec.num_codebooks // 2, codec.num_codebooks}):
            t0 = time.time()
            y = codec.decode(codec.encode(mix, num_codebooks=k))[..., : mix.shape[-1]]
            dt = time.time() - t0
            rows.append((k, codec.bitrate(k) / 1000, si_sdr(y, mix).item(), mel_distance(y, mix).item(),
                         mix.shape[-1] / SAMPLE_RATE / dt))
            write_audio(out / "codec" / f"{tracks[0].name}_{k}cb.wav", y[0])
    write_audio(out / "codec" / f"{tracks[0].name}_original.wav", mix[0])
    print("\n| codebooks | kbps | SI-SDR dB (zero-mean) | mel distance (DAC 7-scale) | x real time |\n|---|---|---|---|---|")
    for k, kbps, s, m, rt in rows:
        print(f"| {k} | {kbps:.2f} | {s:.2f} | {m:.3f} | {rt:.0f} |")
    print(f"\ncodec audio in {out / 'codec'}/")
    return 0


if __name__ == "__main__":
    from .errors import LatentmixError
    try:
        sys.exit(main())
    except LatentmixError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
