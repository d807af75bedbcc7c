"""Where a separator's time goes: torch.profiler over `latentmix separate`'s path (separate_long, the model's own
segments, inference_mode) on a test mixture, the top operators by self CPU time, and real time with and without it.

The measured starting point for speed work on the shipped separator (issue #19 item 4: a bigger model within 20x).

    python benchmarks/separator_profile.py --data data/slakhlike --seconds 30 --threads 2 --write
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import provenance, publish, run_main  # noqa: E402

from latentmix.errors import ConfigError  # noqa: E402
from latentmix.evaluation.codec import concatenated_mixture  # noqa: E402
from latentmix.separation.apply import separate_long  # noqa: E402
from latentmix.separation.registry import get_method  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="separator file (default: the shipped one)")
    ap.add_argument("--data", default="data/slakhlike", help="MSDM-layout root whose test mixtures are used")
    ap.add_argument("--split", default="test")
    ap.add_argument("--seconds", type=float, default=30.0, help="audio seconds per call (default 30)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="timed calls without the profiler; the best counts")
    ap.add_argument("--top", type=int, default=15, help="operators listed (default 15)")
    ap.add_argument("--write", action="store_true", help="replace --section of benchmarks/RESULTS.md")
    ap.add_argument("--section", default="separator-profile")
    return ap.parse_args(argv)


def timed(method, mix, repeats: int = 3) -> tuple[float, float]:
    """(best wall time of `repeats` separate_long calls, the kernel's share of the process's CPU time in them)."""
    best = float("inf")
    c0 = os.times()
    for _ in range(repeats):
        t0 = time.perf_counter()
        separate_long(method, mix)
        best = min(best, time.perf_counter() - t0)
    c1 = os.times()
    user, system = c1.user - c0.user, c1.system - c0.system
    return best, system / max(user + system, 1e-9)


def op_table(prof, total_us: float, top: int) -> list[str]:
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    out = ["| operator | calls | self CPU ms | share |", "|---|---:|---:|---:|"]
    for e in rows:
        out.append(f"| `{e.key}` | {e.count} | {e.self_cpu_time_total / 1e3:.1f} | "
                   f"{100 * e.self_cpu_time_total / total_us:.1f} % |")
    return out


def run(argv=None) -> int:
    args = parse_args(argv)
    if args.repeats < 1:
        raise ConfigError(f"--repeats {args.repeats}: must be at least 1")
    torch.set_num_threads(args.threads)
    method = get_method("supervised", model=args.model)
    mix = concatenated_mixture(args.data, args.split, args.seconds)
    separate_long(method, mix[..., :22050])                                  # lazy initialisation, untimed
    plain, kernel = timed(method, mix, args.repeats)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        separate_long(method, mix)
        profiled = time.perf_counter() - t0
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    n = sum(p.numel() for p in method.model.parameters())
    md = "\n\n".join([
        provenance(__file__, argv, args.threads),
        f"Model `{method.path}` ({n / 1e6:.2f} M parameters), {args.seconds:g} s of `{args.data}` {args.split} "
        f"mixtures per call: {args.seconds / plain:.1f}x real time (best of {args.repeats}, no profiler; "
        f"{100 * kernel:.0f} % of the CPU time in the kernel); "
        f"{args.seconds / profiled:.1f}x under the profiler. The profiler's self CPU total: "
        f"{total / 1e3:.0f} ms.",
        "\n".join(op_table(prof, total, args.top))])
    publish(md, args.section, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(run))
