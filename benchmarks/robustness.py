"""Robustness summary (issue 20): the bad-input battery's outcomes counted, and the peak memory of the largest
accepted input (a 20-minute song through separate, codec encode and codec decode).

The battery (tests/test_bad_input.py) is run with LATENTMIX_ROBUSTNESS_LOG set, so each case appends its outcome
as a JSON line; this script counts them: refused cleanly (exit 2, one line, no traceback, nothing written or
changed), crashes (a traceback or an exit status other than the expected), escapes (a write outside -o) and data
lost (an input or existing file changed). Each long-input command runs in a fresh process under a probe that
reads its RUSAGE_CHILDREN peak RSS.

    python benchmarks/robustness.py [--minutes 20] [--write]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import provenance, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SR = 22050
_PROBE = ("import resource, subprocess, sys\n"
          "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
          "sys.stderr.write(p.stderr[-400:])\n"
          "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if p.returncode == 0 else -1)\n")


def run_battery(log: Path) -> tuple[dict, str]:
    """Run tests/test_bad_input.py with the outcome log; (counts, pytest's summary line)."""
    env = dict(os.environ, LATENTMIX_ROBUSTNESS_LOG=str(log), OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT / "src"))
    t0 = time.time()
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_bad_input.py"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    summary = (p.stdout.strip().splitlines() or ["(no output)"])[-1]
    rows = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    seconds = time.time() - t0
    return {"inputs": count([r for r in rows if not r["case"].startswith("outputs/")], seconds),
            "outputs": count([r for r in rows if r["case"].startswith("outputs/")], seconds)}, summary


def count(rows: list[dict], seconds: float) -> dict:
    refusals = [r for r in rows if r["expect"] == "refuse"]
    clean = [r for r in refusals if r.get("rc") == 2 and r.get("lines") == 1 and not r.get("traceback")
             and not r.get("written") and not r.get("changed")]
    crashes = [r for r in rows if r.get("crash") or r.get("traceback")
               or (r["expect"] in ("refuse", "accept") and r.get("rc") not in (0, 2))]
    return {"cases": len(rows), "refusals": len(refusals), "refused_cleanly": len(clean),
            "accepted": sum(r["expect"] == "accept" and r.get("rc") == 0 for r in rows),
            "crashes": len(crashes), "escapes": sum(int(r.get("escaped") or 0) > 0 for r in rows),
            "data_lost": sum(int(r.get("data_lost") or 0) > 0 for r in rows),
            "unclean": [r["case"] for r in refusals if r not in clean], "seconds": round(seconds, 1)}


def make_song(path: Path, minutes: float) -> None:
    """A long mixture: one built-in song looped to `minutes` (float32 WAV)."""
    from latentmix.data.composer import compose
    from latentmix.data.synth import render_song
    song = render_song(compose(0, 20.0), SR)
    mix = sum(song.values())
    sf.write(path, np.resize(mix, int(minutes * 60 * SR)).astype(np.float32), SR, subtype="FLOAT")


def peak(argv: list[str]) -> tuple[int, float]:
    """(peak RSS in MiB, wall seconds) of `python -m latentmix argv` in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    t0 = time.time()
    p = subprocess.run([sys.executable, "-c", _PROBE, sys.executable, "-m", "latentmix", *argv],
                       capture_output=True, text=True, env=env)
    kib = int(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else -1
    if kib < 0:
        raise SystemExit(f"latentmix {' '.join(argv)} failed: {p.stderr[-400:]}")
    return kib // 1024, time.time() - t0


def long_input(minutes: float) -> list[tuple[str, int, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        make_song(t / "song.wav", minutes)
        rows = [("separate", *peak(["separate", str(t / "song.wav"), "-o", str(t / "sep"), "--quiet"])),
                ("codec encode", *peak(["codec", "encode", str(t / "song.wav"), "-o", str(t / "song.lmxc"),
                                        "--quiet"])),
                ("codec decode", *peak(["codec", "decode", str(t / "song.lmxc"), "-o", str(t / "dec.wav"),
                                        "--quiet"]))]
    return rows


def render(c: dict, summary: str, rows, minutes: float, argv) -> str:
    lines = ["## Robustness: bad inputs refused, nothing lost", "", provenance(__file__, argv), "",
             f"The battery `tests/test_bad_input.py` ({summary}; {c['inputs']['seconds']} s): every case's outcome, "
             "counted "
             "from the log it writes. A clean refusal is exit 2 with one `error:` line naming the file or flag, no "
             "traceback, nothing written and nothing existing changed.", "",
             "| cases | tried | refusals | refused cleanly | accepted (unusual but valid) | crashes | escapes | "
             "data lost |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, k in (("bad inputs (validation, lock)", "inputs"), ("output paths (issue 21's safe outputs)", "outputs")):
        x = c[k]
        lines.append(f"| {name} | {x['cases']} | {x['refusals']} | {x['refused_cleanly']} | {x['accepted']} | "
                     f"{x['crashes']} | {x['escapes']} | {x['data_lost']} |")
    lines.append("")
    unclean = c["inputs"]["unclean"] + c["outputs"]["unclean"]
    if unclean:
        lines += [f"Not clean: {', '.join(unclean)}.", ""]
    if c["outputs"]["escapes"] or c["outputs"]["data_lost"]:
        lines += ["Output-path misses: see the `outputs/` cases of tests/test_bad_input.py.", ""]
    lines += [f"Largest accepted input: a {minutes:g}-minute song (float32 WAV, {minutes * 60 * SR * 4 / 2**20:.0f} "
              "MiB of samples), each command in a fresh process (peak RSS includes Python + torch):", "",
              "| command | peak RSS MiB | wall s |", "|---|---:|---:|"]
    lines += [f"| {name} | {mib} | {sec:.1f} |" for name, mib, sec in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=20.0, help="length of the long input (default 20)")
    p.add_argument("--skip-battery", action="store_true", help="only the long-input memory")
    p.add_argument("--write", action="store_true", help="write the section to benchmarks/RESULTS.md")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        counts, summary = ({k: count([], 0) for k in ("inputs", "outputs")}, "skipped") if args.skip_battery \
            else run_battery(Path(tmp) / "log.jsonl")
    print(json.dumps(counts), file=sys.stderr)
    rows = long_input(args.minutes)
    text = render(counts, summary, rows, args.minutes, argv if argv is not None else sys.argv[1:])
    print(text)
    if args.write:
        write_section("robustness", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
