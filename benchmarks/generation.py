"""Generation acceptance (issue #17): held-out NLL of each prior beside unigram/bigram baselines, prompt adherence
and a Frechet distance through a clip classifier, tempo kept by continuations, and speed on 2 threads.

Run `python benchmarks/generation.py --prior PATH [--stem-prior bass=PATH ...] [--data ROOT] [--extra ROOT ...]
[--write]`; --write replaces the `generation` section of benchmarks/RESULTS.md, --json saves the records.
Everything is measured by latentmix.evaluation.generation (and .clips); this script picks the data and the sizes
and renders the tables. Held-out data: the `--split` (test) songs of --data and every --extra root; baselines
and the classifier are fitted on their train splits. Clips start at the beginning of each song.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, fmt_params, machine, parse_named, run_main, today, write_section  # noqa: E402

from latentmix.evaluation import clips as C  # noqa: E402
from latentmix.evaluation import generation as G  # noqa: E402
from latentmix.generation import Generator  # noqa: E402
from latentmix.priors.shards import CodeWindows, encode_dataset  # noqa: E402

TARGETS = {"style_x_chance": 2.0, "rt_seconds": 10.0, "tempo_tol": 0.05}


def shards(codec, roots, split, out, stem=None) -> CodeWindows:
    return CodeWindows([encode_dataset(codec, r, split, out, stem) for r in roots], 1)


def nll_table(name, res) -> list[str]:
    cap = res.levels[0].prior_uncond is not None
    head = "| prior | level | prior (bits) |" + (" prior without caption |" if cap else "") + " unigram | bigram |"
    L = [f"**{name}**: {res.windows} held-out windows of {res.window_frames} frames ({res.tokens_per_level} tokens "
         f"per level); n-grams counted on {res.train_tokens_per_level} training frames.", "", head,
         "|---|---:|---:|" + ("---:|" if cap else "") + "---:|---:|"]
    for lv in res.levels + [None]:
        get = (lambda k: res.mean(k)) if lv is None else (lambda k, lv=lv: getattr(lv, k))
        cells = [get("prior")] + ([get("prior_uncond")] if cap else []) + [get("unigram"), get("bigram")]
        L.append(f"| {name} | {'mean' if lv is None else lv.level} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
    return L + [""]


def adherence_table(name, res) -> list[str]:
    tasks = list(res.uniform)
    L = [f"**{name}**: {res.prompts} prompts (captions of held-out songs, first {res.clip_seconds:g} s clip of each); "
         f"FD reference: {res.reference_clips} real clips of the other held-out songs. Chance = the training set's "
         "majority class on the prompts' labels (uniform: " + ", ".join(f"{k} {v:.2f}" for k, v in res.uniform.items())
         + "). Classifier on all " + f"{res.held_out_clips} real held-out clips: "
         + ", ".join(f"{k} {v:.2f}" for k, v in res.real_accuracy.items()) + ".", "",
         "| clips | n | " + " | ".join(f"{t} acc." for t in tasks) + " | FD | seconds |",
         "|---|---:|" + "---:|" * (len(tasks) + 2),
         "| chance | - | " + " | ".join(f"{res.chance[t]:.2f}" for t in tasks) + " | - | - |"]
    for r in res.rows:
        sec = "-" if r.seconds is None else f"{r.seconds:.0f}"
        L.append(f"| {r.condition} | {r.clips} | " + " | ".join(f"{r.accuracy[t]:.2f}" for t in tasks)
                 + f" | {r.frechet:.2f} | {sec} |")
    return L + [""]


def continuation_lines(res) -> list[str]:
    g, r = res.fractions("generated"), res.fractions("real")
    fmt = lambda d: ", ".join(f"{k} {100 * v:.0f} %" for k, v in d.items())  # noqa: E731
    L = [f"{len(res.items)} held-out songs: the first {res.prompt_seconds:g} s (through the codec) continued by "
         f"{res.continue_seconds:g} s with the song's caption, CFG {res.cfg:g}; librosa.beat.beat_track on each part; "
         f"'same' = within {100 * TARGETS['tempo_tol']:.0f} % of the prompt's reading, half/double within 5 % of "
         "half/twice it.", "",
         f"- generated continuation vs its prompt: {fmt(g)}",
         f"- the real song's next {res.continue_seconds:g} s vs its real prompt (the tracker's own agreement): "
         f"{fmt(r)}", "",
         "| track | metadata bpm | prompt | continued | real prompt | real next |", "|---|---:|---:|---:|---:|---:|"]
    for it in res.items:
        L.append(f"| {it.track} | {it.tempo:.0f} | {it.prompt_bpm:.1f} | {it.continued_bpm:.1f} ({it.generated}) | "
                 f"{it.real_prompt_bpm:.1f} | {it.real_next_bpm:.1f} ({it.real}) |")
    return L + [""]


def speed_lines(res) -> list[str]:
    ok = res.total_seconds <= TARGETS["rt_seconds"]
    L = [f"- {res.audio_seconds:g} s of audio at batch 1, CFG {res.cfg:g} (two rows per step): codes "
         f"{res.codes_seconds:.2f} s + decode {res.decode_seconds:.2f} s = {res.total_seconds:.2f} s wall "
         f"({res.realtime_factor:.2f}x real time; {res.cpu_seconds:.1f} CPU-s) -> target <= "
         f"{TARGETS['rt_seconds']:g} s: {'PASS' if ok else 'MISS'}; moonshot 3x real time: "
         f"{'PASS' if res.realtime_factor >= 3 else 'MISS'}", "",
         "| model | params | batch | KV cache | frames | wall s | CPU s | tokens/s |",
         "|---|---:|---:|---|---:|---:|---:|---:|"]
    for r in res.rows:
        L.append(f"| {r.model} | {fmt_params(r.params)} | {r.batch} | {'yes' if r.cache else 'no'} | {r.frames} | "
                 f"{r.seconds:.2f} | {r.cpu_seconds:.2f} | {r.tokens_per_s:,.0f} |")
    c = res.rq_config
    L += ["", f"RQ-Transformer: random init, dim {c.get('dim')}, spatial depth {c.get('depth')}, depth layers "
          f"{c.get('depth_layers')} (the nearest parameter count to the prior's); its speed only, no NLL.", "",
          f"torch.profiler, {res.threads} threads, generating 1 s of codes with CFG (top ops by self CPU time):", "",
          "| op | self ms | share | calls |", "|---|---:|---:|---:|"]
    L += [f"| `{p['op']}` | {p['self_ms']:.0f} | {100 * p['share']:.1f} % | {p['calls']} |" for p in res.profile]
    return L + [""]


def run(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prior", default=None, help="the text-to-music prior (model file or shipped name); "
                    "without it only the --stem-prior rows run")
    ap.add_argument("--name", default="text prior", help="the text prior's row label (to merge runs of two priors)")
    ap.add_argument("--stem-prior", action="append", default=[], metavar="STEM=PATH", help="per-stem priors")
    ap.add_argument("--codec", default=None, help="codec model file (default: the shipped codec)")
    ap.add_argument("--data", default="data/slakhlike")
    ap.add_argument("--extra", action="append", default=[], help="more data roots with the same layout")
    ap.add_argument("--split", default="test")
    ap.add_argument("--shards", default=str(Path.home() / ".cache" / "latentmix" / "codes"))
    ap.add_argument("--window-seconds", type=float, default=4.0, help="NLL windows (the priors' training length)")
    ap.add_argument("--nll-windows", type=int, default=2, help="NLL windows per held-out song")
    ap.add_argument("--clip-seconds", type=float, default=4.0)
    ap.add_argument("--train-clips", type=int, default=2, help="classifier clips per training song")
    ap.add_argument("--train-songs", type=int, default=None, help="classifier training songs per root (all)")
    ap.add_argument("--held-clips", type=int, default=2, help="real clips per held-out song")
    ap.add_argument("--prompts", type=int, default=24)
    ap.add_argument("--cfg", default="1,2,3,4,5")
    ap.add_argument("--continue-songs", type=int, default=12)
    ap.add_argument("--prompt-seconds", type=float, default=4.0)
    ap.add_argument("--continue-seconds", type=float, default=4.0)
    ap.add_argument("--speed-seconds", type=float, default=10.0)
    ap.add_argument("--speed-frames", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parts", default="nll,levels,adherence,continuation,speed")
    ap.add_argument("--levels", default="1,2,4,6,8,12", help="levels decoded in the levels part")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    ap.add_argument("--merge", action="append", default=[], help="records of an earlier run's --json to include")
    ap.add_argument("--json", default=None, help="write every record to this JSON file")
    ap.add_argument("--write", action="store_true", help="replace the generation section of benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    parts = set(args.parts.split(","))
    machine_line, t0 = machine(args.threads), time.perf_counter()
    roots = [args.data] + args.extra
    gen = Generator.from_pretrained(args.prior, args.codec) if args.prior else None
    stems = {s: Generator.from_pretrained(p, args.codec) for s, p in parse_named(args.stem_prior, "--stem-prior")}
    records: dict = {}
    L = ["## Generation (issue #17)", "",
         f"Machine: {machine_line}; date {today()}; command `{command_line(__file__, argv)}`.", "",
         "Priors: " + ", ".join(f"{n} `{p}` ({fmt_params(G.n_params(g.prior))}, {g.levels} of "
                                f"{g.codec.num_codebooks} levels)" for n, p, g in described(args, gen, stems))
         + f". Held-out: split `{args.split}` of " + ", ".join(f"`{r}`" for r in roots) + "; training statistics "
         "from their `train` splits.", ""]
    for f in args.merge:
        records.update(load_records(f))

    def save():                          # after every part, so a long run that is stopped keeps what it measured
        if args.json:
            Path(args.json).write_text(json.dumps({k: v.to_json() for k, v in records.items()}, indent=1))
    if "nll" in parts:
        nll_part(args, roots, gen, stems, records)
        save()
    if "levels" in parts:
        levels_part(args, roots, gen, stems, records)
        save()
    if "adherence" in parts:
        adherence_part(args, roots, gen, stems, records)
        save()
    if gen is None:
        parts -= {"continuation", "speed"}
    if "continuation" in parts:
        log(args, "continuation")
        held = C.real_clips(roots, args.split, args.prompt_seconds + args.continue_seconds, 1, gen.sample_rate,
                            max_tracks=max(1, args.continue_songs // len(roots) + 1))
        held = held.subset(range(min(args.continue_songs, len(held))))
        records[f"continuation/{args.name}"] = G.evaluate_continuation(gen, held, args.prompt_seconds, cfg=3.0,
                                                                       seed=args.seed)
        save()
    if "speed" in parts:
        log(args, "speed")
        records[f"speed/{args.name}"] = G.evaluate_speed(gen, args.speed_seconds, 3.0,
                                                         "funky bass and drums at 120 bpm",
                                                         frames=args.speed_frames, threads=args.threads)
    L += render(records)
    L += [f"Whole run: {(time.perf_counter() - t0) / 60:.1f} min; load average at the end "
          f"{'/'.join(f'{v:.1f}' for v in os.getloadavg())} (other trainings were running).", ""]
    text = "\n".join(L)
    print(text)
    save()
    if args.write:
        print(f"wrote {write_section('generation', text)}", file=sys.stderr)
    return 0


def log(args, what: str) -> None:
    if not args.quiet:
        print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def nll_part(args, roots, gen, stems, records) -> None:
    for name, g, stem in rows(gen, stems, args.name):
        log(args, f"NLL: {name}")
        frames = int(round(args.window_seconds * g.codec.frame_rate))
        held = shards(g.codec, roots, args.split, args.shards, stem)
        train = shards(g.codec, roots, "train", args.shards, stem)
        records[f"nll/{name}"] = G.evaluate_nll(g.prior, held.codes, train.codes, frames, captions=held.captions,
                                                max_per_track=args.nll_windows)


def levels_part(args, roots, gen, stems, records) -> None:
    for name, g, stem in rows(gen, stems, args.name):
        log(args, f"levels: {name}")
        held = C.real_clips(roots, args.split, args.clip_seconds, 1, g.sample_rate, stem)
        want = [int(v) for v in args.levels.split(",")] + [g.levels]
        records[f"levels/{name}"] = G.evaluate_levels(g.codec, held.wav, want, g.levels, g.sample_rate)


def levels_lines(name, res) -> list[str]:
    L = [f"**{name}** ({res.modelled} of {res.total} levels modelled): {res.clips} held-out clips of "
         f"{res.clip_seconds:g} s, through the codec at K levels.", "",
         "| levels | mel distance | log-mel distance | SI-SDR (dB) |", "|---:|---:|---:|---:|"]
    for r in res.rows:
        mark = " (modelled)" if r.levels == res.modelled else ""
        L.append(f"| {r.levels}{mark} | {r.mel:.3f} | {r.log_mel:.3f} | {r.si_sdr:.2f} |")
    return L + [""]


def adherence_part(args, roots, gen, stems, records) -> None:
    cfgs = [float(v) for v in args.cfg.split(",")]
    for name, g, stem in rows(gen, stems, args.name):
        log(args, f"adherence: {name}: classifier")
        train = C.real_clips(roots, "train", args.clip_seconds, args.train_clips, g.sample_rate, stem,
                             max_tracks=args.train_songs)
        clf, labels = G.fit_classifier(train, seed=args.seed)
        held = C.real_clips(roots, args.split, args.clip_seconds, args.held_clips, g.sample_rate, stem)
        log(args, f"adherence: {name}: generating and scoring")
        records[f"adherence/{name}"] = G.evaluate_adherence(g, clf, labels, held, args.prompts, cfgs,
                                                            seed=args.seed)


def rows(gen, stems, name: str = "text prior") -> list:
    """(row name, generator, stem or None) for the text prior (if given) and each per-stem prior."""
    return ([(name, gen, None)] if gen is not None else []) + [(f"{s} prior", g, s) for s, g in stems.items()]


def described(args, gen, stems) -> list:
    named = dict(parse_named(args.stem_prior, "--stem-prior"))
    return ([(args.name, args.prior, gen)] if gen is not None else []) + \
        [(f"{s} prior", named[s], g) for s, g in stems.items()]


KINDS = {"nll": G.NLLResult, "levels": G.LevelsResult, "adherence": G.AdherenceResult,
         "continuation": G.ContinuationResult, "speed": G.SpeedResult}


def load_records(path) -> dict:
    """Records saved by an earlier run's --json, rebuilt (so parts can run in separate processes)."""
    d = json.loads(Path(path).read_text())
    return {k: KINDS[k.split("/")[0]].from_json(v) for k, v in d.items()}


def render(records) -> list[str]:
    L = []
    nll = [(k.split("/", 1)[1], v) for k, v in records.items() if k.startswith("nll/")]
    if nll:
        L += ["### Held-out NLL (bits per token) beside n-gram baselines", "",
              "Non-overlapping windows from the start of each held-out song, each scored from scratch by all three "
              "models; unigram add-one, bigram (previous frame, same level) interpolated absolute discounting 0.75.",
              ""]
        for name, res in nll:
            L += nll_table(name, res)
    lev = [(k.split("/", 1)[1], v) for k, v in records.items() if k.startswith("levels/")]
    if lev:
        L += ["### Levels modelled: what the dropped levels would add", "",
              "A prior models the codec's first K levels and the rest are dropped at decoding (no cheaper head "
              "predicts them): the cost of that choice is the gap between the modelled row and the last.", ""]
        for name, res in lev:
            L += levels_lines(name, res)
    adh = [(k.split("/", 1)[1], v) for k, v in records.items() if k.startswith("adherence/")]
    if adh:
        L += ["### Prompt adherence and Frechet distance", "",
              "Classifier (latentmix.evaluation.clips): log-mel statistics + tempogram -> MLP; labels style (6) and "
              f"tempo bucket (< {C.TEMPO_EDGES[0]:g}, < {C.TEMPO_EDGES[1]:g}, >= {C.TEMPO_EDGES[1]:g} bpm) from "
              "metadata.json. Every built-in song has all four instruments and every caption names all four, so "
              "which instruments play cannot be scored with this data. FD on the classifier's 64-d embedding; "
              "per-stem priors are unconditional and scored by a classifier trained on that stem.", ""]
        for name, res in adh:
            L += adherence_table(name, res) + adherence_verdict(res, name)
    for part, title, lines in (("continuation", "Continuation: tempo kept", continuation_lines),
                               ("speed", "Speed", speed_lines)):
        found = [(k.partition("/")[2] or "text prior", v) for k, v in records.items() if k.split("/")[0] == part]
        for name, res in found:
            L += [f"### {title}" + (f" ({name})" if len(found) > 1 else ""), ""] + lines(res)
    return L


def adherence_verdict(res, name: str = "text prior") -> list[str]:
    rows = [r for r in (res.rows if res else []) if r.condition.startswith("cfg")]
    if not rows:
        return []
    best = max(rows, key=lambda r: r.accuracy["style"])
    unc = next(r for r in res.rows if r.condition == "unconditional")
    ok = best.accuracy["style"] >= TARGETS["style_x_chance"] * res.chance["style"]
    return [f"- {name}: style accuracy, best CFG ({best.condition}): {best.accuracy['style']:.2f} vs unconditional "
            f"{unc.accuracy['style']:.2f}, chance {res.chance['style']:.2f} -> target >= 2x chance: "
            f"{'PASS' if ok else 'MISS'}",
            "- style accuracy by CFG: " + ", ".join(f"{r.condition} {r.accuracy['style']:.2f}" for r in rows), ""]


def main(argv=None) -> int:
    return run_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
