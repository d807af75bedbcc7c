"""Bayesian separation benchmark (issue #18): lq-vae, lass and hybrid as the seeds ran them (their sigma, lambda,
beams and chains, one searched level, ORACLE best-of-N selection) and as latentmix runs them (every non-oracle
selection, with and without the mixture mask, and the oracle beside it as an upper bound), next to the shipped
supervised separator, the IRM and the through-codec ceilings on the same lass-protocol chunks.

Run `python benchmarks/bayesian.py --data data/pairs [--split test] --label builtin [--data2 DIR --label2 NAME]
[--chunks-per-track 1] [--max-tracks 8] [--seed 0] [--threads 2] [--variants ...] [--json OUT] [--write]`.
--write replaces the `bayesian` section of benchmarks/RESULTS.md. The measuring is latentmix.evaluation.bayesian's.

Speed: wall and CPU seconds per 3 s chunk (search + decode + selection), chunks batched `--batch` at a time, with
torch.set_num_threads(--threads). The load average is printed with the machine: on a shared machine the wall time
overstates the cost and the CPU time is the fairer figure.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, machine, today, write_section  # noqa: E402

from latentmix.errors import LatentmixError  # noqa: E402
from latentmix.evaluation.bayesian import evaluate_bayesian  # noqa: E402

# name -> (method, seed preset?, overrides, oracle rows?)
VARIANTS = {
    "lq-vae (seed 001 as it was)": ("lq-vae", True, {}, True),
    "lass (seed 003 as it was)": ("lass", True, {}, True),
    "hybrid (seed 003 as it was)": ("hybrid", True, {}, True),
    "lq-vae (latentmix)": ("lq-vae", False, {}, True),
    "lass (latentmix)": ("lass", False, {}, True),
    "hybrid (latentmix)": ("hybrid", False, {}, True),
    # the quality / speed curve over how many residual levels the likelihood covers (finer ones: the priors)
    "hybrid (latentmix) at likelihood on 1 level": ("hybrid", False, {"levels": 1}, False),
    "hybrid (latentmix) at likelihood on 2 levels": ("hybrid", False, {"levels": 2}, False),
    "lq-vae (latentmix) at likelihood on 1 level": ("lq-vae", False, {"levels": 1}, False),
    "lq-vae (latentmix) at likelihood on 2 levels": ("lq-vae", False, {"levels": 2}, False),
}
DEFAULT_VARIANTS = [n for n in VARIANTS if "likelihood on" not in n]


def _value(v: str):
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def parse_variant(text: str):
    """`NAME=METHOD[;seed][;oracle][;key=value ...]` -> (name, (method, seed preset?, overrides, oracle rows?)).
    Keys are the method's settings (sigma, lam, topk, chains, beams, levels, ...) and codec / priors (BASS,DRUMS)
    / counts files, so a row can run on another codec with its own priors (e.g. LASS on a codec without the
    linearity loss)."""
    name, sep, spec = text.partition("=")
    parts = [x.strip() for x in spec.split(";") if x.strip()]
    if not sep or not name.strip() or not parts:
        raise ValueError(f"--variant {text!r}: expected NAME=METHOD[;seed][;oracle][;key=value ...]")
    flags = {p for p in parts[1:] if "=" not in p}
    if flags - {"seed", "oracle"}:
        raise ValueError(f"--variant {text!r}: unknown flag(s) {sorted(flags - {'seed', 'oracle'})}")
    over = {k.strip(): _value(v.strip()) for k, _, v in (p.partition("=") for p in parts[1:] if "=" in p)}
    return name.strip(), (parts[0], "seed" in flags, over, "oracle" in flags)


def build(names, args):
    from latentmix.separation.bayesian import BayesianSeparator
    out = []
    for name in names:
        method, seed_preset, over, oracle = VARIANTS[name]
        kw = dict(over)
        if args.priors and "priors" not in kw:
            kw["priors"] = args.priors
        if args.counts and "counts" not in kw:
            kw["counts"] = args.counts
        out.append((name, BayesianSeparator(method, seed_preset=seed_preset, **kw), oracle))
    return out


def table(ev, keep=None) -> str:
    """Rows of ev (those `keep(row)` accepts) as a markdown table."""
    n = len(ev.chunks)
    lines = ["| method | kind | bass SDR | drums SDR | All | chunks | wall s / chunk | CPU s / chunk |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in ev.rows.items():
        if keep is not None and not keep(r):
            continue
        s = r.summary
        w, c = r.per_chunk(n)
        speed = (f"{w:.2f} | {c:.2f}") if r.wall_s else "- | -"
        lines.append(f"| {name} | {r.kind} | {s['bass']:.2f} | {s['drums']:.2f} | {s['All']:.2f} | {s['windows']} | "
                     f"{speed} |")
    return "\n".join(lines)


def details(ev) -> str:
    seen, out = set(), []
    for name, r in ev.rows.items():
        base = name.split(" | ")[0]
        if r.kind in ("bayesian", "oracle-selection") and base not in seen:
            seen.add(base)
            out.append(f"- {base}: {r.detail}")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, action="append", help="pair set / MSDM root (repeatable)")
    p.add_argument("--label", action="append", default=[], help="a label per --data")
    p.add_argument("--split", default="test")
    p.add_argument("--chunks-per-track", type=int, default=1)
    p.add_argument("--max-tracks", type=int, default=8)
    p.add_argument("--seed", type=int, default=0, help="seed of the random chunk choice")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=4, help="chunks per search call")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help="comma-separated names of VARIANTS")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=METHOD[;seed][;oracle][;k=v ...]",
                   help="an extra row: a method with its preset (the seed's with `seed`), oracle rows with `oracle`, "
                        "and settings or files (codec=, priors=BASS,DRUMS, counts=, sigma=, lam=, topk=, ...)")
    p.add_argument("--priors", default=None, help="BASS,DRUMS prior files (default: the shipped ones)")
    p.add_argument("--counts", default=None, help="counts file (default: the shipped one)")
    p.add_argument("--selection-study", default="hybrid (latentmix)",
                   help="the variant whose every selection gets a table of its own")
    p.add_argument("--no-baselines", action="store_true", help="only the Bayesian rows (e.g. a second run on the "
                   "same chunks)")
    p.add_argument("--json", default=None)
    p.add_argument("--section", default="bayesian", help="RESULTS.md section to replace (default bayesian)")
    p.add_argument("--title", default="Bayesian separation (issue #18)", help="the section's heading")
    p.add_argument("--write", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    try:
        custom = dict(parse_variant(v) for v in args.variant)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    VARIANTS.update(custom)
    names += [n for n in custom if n not in names]
    bad = [v for v in names if v not in VARIANTS]
    if bad:
        print(f"error: unknown variant(s) {bad}; known: {list(VARIANTS)}", file=sys.stderr)
        return 2
    labels = args.label + [Path(d).name for d in args.data[len(args.label):]]
    try:
        variants = build(names, args)
        evs = {lab: evaluate_bayesian(variants, d, args.split, chunks_per_track=args.chunks_per_track,
                                      max_tracks=args.max_tracks, seed=args.seed, batch=args.batch,
                                      baselines=not args.no_baselines,
                                      progress=not args.quiet)
               for lab, d in zip(labels, args.data)}
    except LatentmixError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    md = [f"Machine: {machine(args.threads)}; date {today()}; command `{command_line(__file__, argv)}`.", "",
          "lass protocol v1: museval v4 SDR dB on 0.5 (bass + drums) chunks of 65,536 samples; museval frames "
          "such a chunk into ONE 44,100-sample frame, so each chunk's score is its first 2 s. Rows named "
          "`ORACLE` pick each stem's best of N rows against the ground truth (how the seeds reported): upper "
          "bounds, not results. `+ mask` re-synthesises the chosen estimates from the mixture with their ratio "
          "masks. The supervised separator is fed b + d (the sum it was trained on).", ""]
    study = args.selection_study
    for lab, ev in evs.items():
        md += [f"### {lab} (`{ev.data}`, split {ev.split}, {len(ev.chunks)} chunks, "
               f"{args.chunks_per_track} per track, seed {args.seed})", "",
               table(ev, lambda r: r.kind not in ("bayesian", "oracle-selection") or r.own
                     or (r.kind == "oracle-selection" and ("as it was" in r.variant) != r.name.endswith("mask"))),
               ""]
        if study and any(r.variant == study for r in ev.rows.values()):
            md += [f"Every selection of `{study}` (one run; the oracle rows read the truth):", "",
                   table(ev, lambda r: r.variant == study), ""]
    md += ["Settings:", details(next(iter(evs.values()))), ""]
    text = "\n".join(md)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({k: v.to_json() for k, v in evs.items()}, indent=1))
    if args.write:
        write_section(args.section, f"## {args.title}\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
