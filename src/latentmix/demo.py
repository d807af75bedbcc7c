"""`make demo`: the main job end to end on built-in data with the shipped models.

Synthesises a few Slakh-like songs, separates them with the shipped separator beside the IRM ceiling (msdm
protocol), round-trips a song through the shipped codec, reporting quality and bitrate, generates a clip from a
text prompt with the shipped text prior, and writes an HTML report of all of it (demo_out/report/index.html).
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
    p.add_argument("--prompt", default="an upbeat funk groove at 110 bpm with slap bass, muted guitar and a tight "
                   "drum kit", help="text prompt of the generated clip")
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
    log(f"[1/5] synthesising {args.tracks} Slakh-like songs of {args.seconds:g} s into {data}/ (seed {args.seed})")
    t0 = time.time()
    synth_dataset(data, tracks=args.tracks, seconds=args.seconds, seed=args.seed, splits=(0.0, 0.0, 1.0),
                  progress=False)
    tracks = list_tracks(data, "test")
    log(f"      rendered in {time.time() - t0:.1f} s")

    log("[2/5] separating with the shipped separator and the IRM oracle (msdm protocol, SI-SDRi dB)")
    ours, ceiling = "latentmix (shipped)", "IRM oracle (ceiling)"

    def write_stems(name, track, est):
        if name == ours:
            for i, stem in enumerate(STEMS):
                write_audio(out / "separated" / track.name / f"{stem}.wav", est[i:i + 1])

    ev = evaluate_separation([Candidate(get_method("supervised"), ours),
                              Candidate(get_method("oracle-irm"), ceiling, kind="oracle")],
                             data, "test", "msdm", tracks=tracks, on_estimate=write_stems)
    sep = ev.results[ours]
    print(format_table(ev.table()))
    print(f"\nseparated {sep.audio_seconds:.0f} s of audio in {sep.compute_s:.1f} s "
          f"({sep.xrt:.1f}x real time); stems in {out / 'separated'}/")

    log("[3/5] round-tripping a song through the shipped codec")
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

    gen_record = generate_clip(out, args.prompt, args.seed)

    log("[5/5] writing the HTML report of all of it")
    files = {"original": out / "codec" / f"{name}_original.wav"}
    files.update({f"{k} codebook{'s' if k != 1 else ''}": out / "codec" / f"{name}_{k}cb.wav" for k in levels})
    index = write_report(out / "report", ev, ours, data / "test", out / "separated", res, {name: files},
                         gen_record)
    print(f"\nreport: {index}  (open it in a browser; the folder is self-contained)")
    print("web demo: latentmix serve   (then open http://127.0.0.1:8000)")
    return 0


def generate_clip(out: Path, prompt: str, seed: int, seconds: float = 6.0) -> dict:
    """Text -> music with the shipped prior: OUT/generated/<prompt>.wav; returns its generation record."""
    from .generation import Generator, slug
    log(f"[4/5] generating {seconds:g} s from the prompt '{prompt}' with the shipped text prior (CFG 3, top-k 250)")
    t0 = time.time()
    gen = Generator.from_pretrained()
    t1 = time.time()
    wav = gen.generate(prompt, seconds=seconds, cfg=3.0, top_k=250, seed=seed)
    path = out / "generated" / f"{slug(prompt)}.wav"
    write_audio(path, wav[0], gen.sample_rate)
    print(f"\ngenerated {seconds:g} s in {time.time() - t1:.1f} s (+{t1 - t0:.1f} s loading the models): {path}")
    return {"prompt": prompt, "settings": {"seconds": seconds, "cfg": 3.0, "top_k": 250, "seed": seed},
            "outputs": [{"audio": str(path.resolve()), "label": "generated"}]}


def write_report(folder, ev, ours, reference, separated, codec_ev, codec_audio, gen_record=None):
    """One page with everything the demo did: the scores, the separated songs beside their true stems, and the
    codec round trip."""
    from .report import Page
    from .report.codec import codec_report
    from .report.separation import attach_references, evaluation_report, find_songs, folder_report
    page = Page(folder, "latentmix demo", f"{len(ev.tracks)} synthetic song(s), {ev.audio_seconds:.0f} s of audio; "
                f"separation scored with the {ev.protocol} protocol ({ev.metric}).")
    evaluation_report(page, ev.to_json())
    songs = find_songs(separated)
    attach_references(songs, reference)
    for s in songs:
        s.scores = dict(ev.results[ours].per_track.get(s.name, {}))
    folder_report(page, songs, ev.metric)
    codec_report(page, codec_ev, codec_audio)
    if gen_record is not None:
        from .report.generation import generation_report
        generation_report(page, gen_record)
    return page.write()


if __name__ == "__main__":
    from .errors import LatentmixError
    try:
        sys.exit(main())
    except LatentmixError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
