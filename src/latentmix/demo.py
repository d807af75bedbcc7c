"""`make demo`: the main job end to end on built-in data with the shipped models.

Synthesises a few Slakh-like songs, separates them with the shipped separator beside the IRM ceiling (msdm
protocol), round-trips a song through the shipped codec, reporting quality and bitrate, generates a clip from a
text prompt with the shipped text prior, separates bass + drums chunks with the Bayesian method (no supervised
separator) beside the supervised separator and the codec ceiling (lass protocol), and writes an HTML report of
all of it (demo_out/report/index.html).
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
    log(f"[1/6] synthesising {args.tracks} Slakh-like songs of {args.seconds:g} s into {data}/ (seed {args.seed})")
    t0 = time.time()
    synth_dataset(data, tracks=args.tracks, seconds=args.seconds, seed=args.seed, splits=(0.0, 0.0, 1.0),
                  progress=False)
    tracks = list_tracks(data, "test")
    log(f"      rendered in {time.time() - t0:.1f} s")

    log("[2/6] separating with the shipped separator and the IRM oracle (msdm protocol, SI-SDRi dB)")
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

    log("[3/6] round-tripping a song through the shipped codec")
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
    bayesian_step(data, out, args.tracks)

    log("[6/6] writing the HTML report of all of it")
    files = {"original": out / "codec" / f"{name}_original.wav"}
    files.update({f"{k} codebook{'s' if k != 1 else ''}": out / "codec" / f"{name}_{k}cb.wav" for k in levels})
    index = write_report(out / "report", ev, ours, data / "test", out / "separated", res, {name: files},
                         gen_record)
    print(f"\nreport: {index}  (open it in a browser; the folder is self-contained)")
    print("web demo: latentmix serve   (then open http://127.0.0.1:8000)")
    return 0


def generate_clip(out: Path, prompt: str, seed: int, seconds: float = 6.0) -> dict:
    """Text -> music with the shipped prior: OUT/generated/<prompt>.wav; returns its generation record."""
    from .generation import Generator, generation_record, slug
    log(f"[4/6] generating {seconds:g} s from the prompt '{prompt}' with the shipped text prior (CFG 3, top-k 250)")
    t0 = time.time()
    gen = Generator.from_pretrained()
    t1 = time.time()
    wav = gen.generate(prompt, seconds=seconds, cfg=3.0, top_k=250, seed=seed)
    path = out / "generated" / f"{slug(prompt)}.wav"
    write_audio(path, wav[0], gen.sample_rate)
    print(f"\ngenerated {seconds:g} s in {time.time() - t1:.1f} s (+{t1 - t0:.1f} s loading the models): {path}")
    return generation_record([prompt], {"seconds": seconds, "cfg": 3.0, "top_k": 250, "seed": seed}, [path],
                             ["generated"])


BAYES_METHOD = "lq-vae"        # the best Bayesian method measured so far (benchmarks/RESULTS.md, unseen timbres)


def bayesian_step(data: Path, out: Path, tracks: int) -> None:
    """[5/6] one 3 s bass + drums chunk per demo song separated by the Bayesian method, scored (lass protocol)
    beside the supervised separator, the IRM and the codec ceilings on the same chunks."""
    from .errors import LatentmixError
    from .evaluation.bayesian import evaluate_bayesian
    from .separation.bayesian import BayesianSeparator
    log(f"[5/6] Bayesian separation of bass + drums ('{BAYES_METHOD}', no supervised separator; lass protocol, "
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
