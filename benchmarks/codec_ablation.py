"""Seed 002's codec ideas, each alone on codec v2 at the same training budget (issue #23): SOM codebooks (as the
seed had them and ordered), the energy-transformer bottleneck, multiresolution convolutions, one discriminator
per step, the downsampled-signal objective; scored on unseen timbres, with a verdict per idea.

Every row is `latentmix train codec --config <preset>` for `--budget` seconds of wall clock (train.max_seconds) on
one core (OMP_NUM_THREADS=1, `--jobs` rows at a time), the same data (`--data`) and seed. Each model is then
scored on the `--test` set's test mixtures (whole songs; default data/test_fluidr3, the built-in test songs'
MIDI through FluidR3_GM, a timbre no row trains on) through latentmix.evaluation.codec: the bandwidth-neutral
log-mel distance, DAC's mel distance and SI-SDR at two numbers of codebooks (`--levels`), encode + decode speed
on one thread (x real time), and code usage at all levels. A continuous bottleneck (energy) has no codes and no
bitrate: it is scored once, through its latents, and marked so. For the code rows in `--prior-rows` (default
v2 and both SOMs), a small prior (configs/prior/cpu_delay.yaml, a delay-pattern transformer on the first 6
levels) is trained on that codec's codes of `--data` for `--prior-budget` seconds on one core, and its held-out
NLL (bits per token, the validation split, all 6 levels and level 0 alone) answers "does a topology help a
prior?". The prior's own validation picks the number: the loop's last validation of model.safetensors.

Verdict rule (`verdict`; every row against its reference: v2, or the all-discriminators row for the
alternating one): with d = the relative change of the log-mel distance at each evaluated bitrate (negative is
better), "adopt" when d <= -2 % at every bitrate, SI-SDR falls by at most 0.5 dB and speed stays >= 80 % of
the reference's (for SOM rows, also when the prior's NLL falls by >= 0.05 bits/token with d <= +1 %); "drop"
when d >= +2 % at every bitrate, or speed < 50 % of the reference's without a d <= -2 %; else "keep as option".
A continuous row compares its one score with the reference's highest bitrate and can never be "adopt": it has no
codes to ship.

Full run (about 8 rows x 30 min on one core each, two at a time: ~2 h, then ~30 min of priors and scoring):
    OMP_NUM_THREADS=1 python benchmarks/codec_ablation.py --data data/slakhlike --test data/test_fluidr3 \\
        --out runs/ablation --budget 1800 --jobs 2 --write
`--smoke` proves the pipeline end to end in minutes (a tiny synthetic training set, a 20 s budget, 2 test
items) and writes its table to OUT/RESULTS_smoke.md, never to benchmarks/RESULTS.md. Existing runs are reused
(a row whose OUT/NAME/model.safetensors exists is not retrained); `--rows` picks rows.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, machine, run_main, today, write_section  # noqa: E402

from latentmix.codec.model import Codec  # noqa: E402
from latentmix.errors import ConfigError, LatentmixError  # noqa: E402
from latentmix.evaluation.codec import codec_speed, concatenated_mixture, evaluate_codec, load_items  # noqa: E402

# name, preset (configs/codec), reference row, what it changes (the preset = cpu_v2 + these overrides)
ROWS = [
    ("v2", "cpu_v2", None, "codec v2 as shipped (12 x 1024 RVQ)", []),
    ("som_seed", "cpu_v2_som_seed", "v2", "SOM as seed 002 had it: 32 x 32, 5 x 5 box, one shared map, radius "
     "2 -> 0, k-means start",
     ["model.quantizer.type=som", "model.quantizer.som_grid=[32,32]", "model.quantizer.som_kernel=box",
      "model.quantizer.som_radius=2", "model.quantizer.som_radius_end=0", "model.quantizer.som_radius_steps=1200",
      "model.quantizer.shared_codebook=true", "model.quantizer.som_init=kmeans"]),
    ("som", "cpu_v2_som", "v2", "SOM as it should be: the seed's map, started in grid order",
     ["model.quantizer.type=som", "model.quantizer.som_grid=[32,32]", "model.quantizer.som_kernel=box",
      "model.quantizer.som_radius=2", "model.quantizer.som_radius_end=0", "model.quantizer.som_radius_steps=1200",
      "model.quantizer.shared_codebook=true", "model.quantizer.som_init=ordered"]),
    ("energy", "cpu_v2_energy", "v2", "energy-transformer bottleneck (continuous: no codes, not shippable)", None),
    ("multires", "cpu_v2_multires", "v2", "multiresolution convolutions in encoder and decoder",
     ["model.spectral.multires=4"]),
    ("adv", "cpu_v2_adv", "v2", "adversary on, all discriminators every step",
     ["train.adversarial=true", "train.disc_schedule=all"]),
    ("adv_alternate", "cpu_v2_adv_alternate", "adv", "adversary on, one discriminator per step (MS-STFT / MPD)",
     ["train.adversarial=true", "train.disc_schedule=alternate"]),
    ("down", "cpu_v2_down", "v2", "downsampled-signal objective (rec/down at 2x, 4x)",
     ["train.weights.down=10.0", "train.down_factors=[2,4]"]),
]
SOM_ROWS = ("som_seed", "som")
ENERGY_QUANTIZER = {"type": "energy", "energy_steps": 10, "energy_step_size": 0.1, "energy_heads": 4,
                    "energy_head_dim": 16, "energy_memories": 256, "energy_window": 8}
METRICS = ("log_mel_distance", "mel_distance", "si_sdr")


def preset_overrides(name: str) -> list[str] | None:
    """The row's --set overrides over cpu_v2 (None for energy, whose quantizer block is ENERGY_QUANTIZER)."""
    return next(r[4] for r in ROWS if r[0] == name)


# ------------------------------------------------------------------ verdicts
UNDERTRAINED = 0.25     # a row that fit fewer than this share of the base row's steps into the budget: no verdict


def verdict(row: dict, ref: dict, base_steps: int | None = None) -> tuple[str, str]:
    """(adopt | keep as option | drop | no verdict, the numbers that decided it) for a scored row against its
    reference.

    row/ref: {"levels": {n: {"log_mel_distance", "si_sdr"}}, "xrt", "continuous", "nll" (or None), "steps"}; a
    continuous row has the one level None, compared with the reference's highest level. When the row or its
    reference trained fewer than UNDERTRAINED x `base_steps` (the plain v2 row's) steps in the same budget, its
    scores say how far it got, not what the idea is worth: "no verdict"."""
    if base_steps:
        few = [(n, x["steps"]) for n, x in (("row", row), ("reference", ref))
               if x.get("steps") is not None and x["steps"] < UNDERTRAINED * base_steps]
        if few:
            return "no verdict", (f"undertrained: {', '.join(f'{n} {k} steps' for n, k in few)} in the budget "
                                  f"against v2's {base_steps} (a longer budget is needed)")
    ref_levels = sorted(ref["levels"])
    pairs = [(ref["levels"][ref_levels[-1]], row["levels"][None])] if row["continuous"] else \
        [(ref["levels"][n], row["levels"][n]) for n in ref_levels]
    d = [s["log_mel_distance"] / r["log_mel_distance"] - 1.0 for r, s in pairs]
    dsdr = min(s["si_sdr"] - r["si_sdr"] for r, s in pairs)
    speed = row["xrt"] / ref["xrt"]
    nll = None if row.get("nll") is None or ref.get("nll") is None else row["nll"] - ref["nll"]
    why = f"log-mel {', '.join(f'{100 * v:+.1f} %' for v in d)}, SI-SDR {dsdr:+.2f} dB, speed x{speed:.2f}"
    if nll is not None:
        why += f", prior NLL {nll:+.3f} bits"
    better = all(v <= -0.02 for v in d) and dsdr >= -0.5 and speed >= 0.8
    better_prior = nll is not None and nll <= -0.05 and all(v <= 0.01 for v in d)
    if (better or better_prior) and not row["continuous"]:
        return "adopt", why
    if all(v >= 0.02 for v in d) or (speed < 0.5 and not all(v <= -0.02 for v in d)):
        return "drop", why
    return "keep as option", why


# ------------------------------------------------------------------ training
def _run(cmd: list[str], log: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if rc != 0:
        tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise LatentmixError(f"{' '.join(cmd[:5])} failed (exit {rc}): {tail[0]} (log: {log})")


def train_codec(name: str, preset: str, args) -> Path:
    """OUT/NAME/model.safetensors, trained for --budget seconds unless it exists."""
    run = Path(args.out) / name
    model = run / "model.safetensors"
    if model.exists():
        return model
    resume = ["--resume"] if (run / "checkpoint.safetensors").exists() else []
    cmd = [sys.executable, "-m", "latentmix", "train", "codec", "--config", preset, "--data", str(args.data),
           "--out", str(run), "--seed", str(args.seed), "--quiet", *resume,
           "--set", f"train.max_seconds={args.budget}", *sum((["--set", s] for s in args.extra_set), [])]
    _run(cmd, run / "train.log")
    return model


def train_prior(name: str, codec_path: Path, args) -> dict:
    """{"nll", "nll_l0"} in bits per token: held-out NLL of the small prior trained on the codec's codes."""
    run = Path(args.out) / name / "prior"
    if not (run / "model.safetensors").exists():
        resume = ["--resume"] if (run / "checkpoint.safetensors").exists() else []
        cmd = [sys.executable, "-m", "latentmix", "train", "prior", "--config", "cpu_delay", "--data",
               str(args.data), "--out", str(run), "--seed", str(args.seed), "--quiet", *resume,
               "--set", f"train.codec={codec_path}", "--set", f"train.shards={Path(args.out) / 'shards'}",
               "--set", f"train.max_seconds={args.prior_budget}",
               *sum((["--set", s] for s in args.prior_set), [])]
        _run(cmd, run / "train.log")
    vals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    vals = [v for v in vals if v.get("kind") == "val"]
    if not vals:
        raise LatentmixError(f"{run}: the prior run logged no validation")
    return {"nll": vals[-1]["val/nll_bits"], "nll_l0": vals[-1].get("val/nll_l0_bits")}


# ------------------------------------------------------------------ scoring
def score_row(path: Path, items, levels, speed_x, threads: int) -> dict:
    """A trained model scored on the items: per level (or None: continuous) metrics, speed, code usage."""
    model = Codec.load(path).eval()
    cont = model.is_continuous
    ev = evaluate_codec(model, items, None if cont else levels, metrics=METRICS, code_usage_stats=not cont)
    usage = None if cont else {"used": sum(u.used for u in ev.usage) / len(ev.usage),
                               "perplexity_l0": ev.usage[0].perplexity,
                               "bits": sum(u.bits for u in ev.usage) / len(ev.usage)}
    prov = (getattr(model, "header", {}) or {}).get("provenance") or {}
    return {"continuous": cont, "xrt": codec_speed(model, speed_x, threads).best, "usage": usage,
            "levels": {s.level: dict(s.metrics, kbps=s.kbps) for s in ev.codec_summaries().values()},
            "steps": prov.get("steps"), "wall": prov.get("wall_time_s"), "nll": None, "nll_l0": None}


def fmt(v, d=3) -> str:
    return "-" if v is None else f"{v:.{d}f}"


def table(results: dict, levels) -> list[str]:
    """The markdown table: one line per row, a verdict against its reference."""
    head = " | ".join(f"log-mel @{n} | mel @{n} | SI-SDR @{n}" for n in levels)
    lines = [f"| row | what | steps | {head} | x RT (1 thread) | codes used | perplexity l0 | prior NLL "
             "(l0) | verdict (vs reference) |",
             "|---|---|---:|" + "---:|" * (3 * len(levels)) + "---:|---:|---:|---:|---|"]
    for name, _, ref, what, _ in ROWS:
        r = results.get(name)
        if r is None:
            continue
        cells = []
        for n in levels:
            m = r["levels"][None] if r["continuous"] else r["levels"][n]
            cells += [fmt(m["log_mel_distance"]), fmt(m["mel_distance"]), fmt(m["si_sdr"], 2)]
        u = r["usage"] or {}
        nll = "-" if r["nll"] is None else f"{r['nll']:.3f} ({fmt(r['nll_l0'])})"
        base = (results.get("v2") or {}).get("steps")
        v = "reference" if ref is None else ("no reference row" if ref not in results else
                                             "{}: {}".format(*verdict(r, results[ref], base)) + f" (vs {ref})")
        label = what + (" [continuous: no bitrate, same score in each column]" if r["continuous"] else "")
        lines.append(f"| {name} | {label} | {r['steps'] or '-'} | {' | '.join(cells)} | {r['xrt']:.1f} | "
                     f"{fmt(u.get('used'), 2)} | {fmt(u.get('perplexity_l0'), 1)} | {nll} | {v} |")
    return lines


# ------------------------------------------------------------------ main
def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/slakhlike", help="training data (MSDM layout), every row the same")
    ap.add_argument("--test", default="data/test_fluidr3", help="unseen-timbre test set (split test)")
    ap.add_argument("--out", default="runs/ablation", help="run folders (reused when they hold a model)")
    ap.add_argument("--budget", type=float, default=1800.0, help="seconds of training per row (one core)")
    ap.add_argument("--prior-budget", type=float, default=600.0, help="seconds of prior training per row")
    ap.add_argument("--prior-rows", default="v2,som_seed,som", help="rows whose codes get a prior ('' for none)")
    ap.add_argument("--jobs", type=int, default=2, help="rows trained at a time (one core each)")
    ap.add_argument("--rows", default=",".join(r[0] for r in ROWS), help="rows to run (comma-separated)")
    ap.add_argument("--levels", default="6,12", help="the two numbers of codebooks scored")
    ap.add_argument("--items", type=int, default=None, help="test songs used (default all)")
    ap.add_argument("--speed-seconds", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the scoring and speed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], dest="extra_set", metavar="KEY=VALUE",
                    help="an override for every codec row's training (e.g. train.steps=...)")
    ap.add_argument("--prior-set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--smoke", action="store_true", help="tiny synthetic data, 20 s budgets, 2 items: a check")
    ap.add_argument("--write", action="store_true", help="replace the codec_ablation section of RESULTS.md")
    ap.add_argument("--results", default=None, help="write the section to this file instead")
    return ap.parse_args(argv)


def smoke_setup(args) -> None:
    """--smoke: a 6-song synthetic training set under OUT, 20 s budgets, 2 test songs, 4 s of speed audio."""
    from latentmix.data.build import synth_dataset
    root = Path(args.out) / "smoke_data"
    if not (root / "train").is_dir():
        synth_dataset(root, tracks=6, seconds=4.0, seed=0, progress=False)
    args.data, args.budget, args.prior_budget = str(root), 20.0, 20.0
    args.items, args.speed_seconds = 2, 4.0
    args.extra_set = ["train.val_items=2", "train.val_seconds=2.0", *args.extra_set]
    args.prior_set = ["train.val_items=2", "model.dim=32", "model.depth=1", "model.heads=2", *args.prior_set]
    args.results = args.results or str(Path(args.out) / "RESULTS_smoke.md")
    args.write = True


def run(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    names = [n.strip() for n in args.rows.split(",") if n.strip()]
    unknown = [n for n in names if n not in {r[0] for r in ROWS}]
    if unknown:
        raise ConfigError(f"--rows: unknown row '{unknown[0]}' (known: {', '.join(r[0] for r in ROWS)})")
    levels = [int(v) for v in args.levels.split(",")]
    if args.smoke:
        smoke_setup(args)
    for p in (args.data, args.test):
        if not Path(p).is_dir():
            raise ConfigError(f"{p}: no such data folder")
    torch.set_num_threads(args.threads)
    machine_line = machine(args.threads)
    rows = [r for r in ROWS if r[0] in names]
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        paths = dict(zip([r[0] for r in rows], pool.map(lambda r: train_codec(r[0], r[1], args), rows)))
        prior_rows = [n for n in args.prior_rows.split(",") if n in paths and n != "energy"]
        priors = dict(zip(prior_rows, pool.map(lambda n: train_prior(n, paths[n], args), prior_rows)))
    items = load_items(args.test, "test", seconds=None, max_tracks=args.items)
    speed_x = concatenated_mixture(args.test, "test", args.speed_seconds)
    results = {}
    for name, path in paths.items():
        results[name] = score_row(path, items, levels, speed_x, args.threads)
        results[name].update(priors.get(name, {}))
    secs = sum(x.shape[-1] for _, x in items) / 22050
    kbps = next(({n: r["levels"][n]["kbps"] for n in levels} for r in results.values() if not r["continuous"]), {})
    L = ["## Codec ablation: seed 002's ideas on codec v2 (issue #23)", "",
         f"Machine: {machine_line}; date {today()}; command `{command_line(__file__, argv)}`.", "",
         f"Every row trained {args.budget:g} s of wall clock on one core (OMP_NUM_THREADS=1, {args.jobs} at a time), "
         f"data `{args.data}`, seed {args.seed}; scored on `{args.test}` ({len(items)} test songs, {secs:.0f} s, "
         f"timbres no row trained on) at {' and '.join(str(n) for n in levels)} codebooks "
         f"({' and '.join(fmt(kbps.get(n), 2) for n in levels)} kbps). Lower is better for the "
         "distances; x RT = encode + decode on one thread; codes used = mean over levels of the codebook fraction "
         "used; prior NLL = held-out (validation split) bits per token of configs/prior/cpu_delay.yaml trained "
         f"{args.prior_budget:g} s on that codec's codes (all 6 levels, level 0 in brackets).", ""]
    L += table(results, levels)
    L += ["", "Verdict rule (benchmarks/codec_ablation.py `verdict`): adopt when the log-mel distance is >= 2 % "
          "lower at every bitrate, SI-SDR at most 0.5 dB lower and speed >= 80 % of the reference (SOM: or the "
          "prior's NLL >= 0.05 bits lower at <= +1 % log-mel); drop when >= 2 % higher at every bitrate, or "
          "speed < 50 % without a gain; else keep as option. A continuous bottleneck is never adopted: no codes. "
          "No verdict when the row or its reference fit fewer than a quarter of v2's steps into the budget.",
          ""]
    text = "\n".join(L)
    print(text)
    if args.write or args.results:
        path = write_section("codec_ablation", text, *([args.results] if args.results else []))
        print(f"wrote {path}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    return run_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
