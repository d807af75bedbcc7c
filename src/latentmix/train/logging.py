"""Run logging for the training loop: metrics.jsonl (one flushed JSON line per record), optional TensorBoard,
and short human-readable lines on stderr (through tqdm.write when a progress bar is showing).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

from ..fileio import atomic_path

METRICS_NAME = "metrics.jsonl"


def _clean(v):
    v = float(v)
    return v if math.isfinite(v) else str(v)  # JSON has no NaN/inf; keep them readable


def truncate_metrics(path, max_step: int) -> None:
    """Drop records after `max_step` (written by a run that died after its last checkpoint) before resuming."""
    path = Path(path)
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if int(json.loads(line).get("step", 0)) <= max_step:
                keep.append(line)
        except (ValueError, AttributeError):
            continue  # a torn last line from a killed run
    with atomic_path(path) as tmp:
        Path(tmp).write_text("".join(line + "\n" for line in keep))


class RunLogger:
    """Writes records to out_dir/metrics.jsonl and TensorBoard (if importable), and log lines to stderr.

    Only rank 0 should create one with enabled=True; the others get a silent logger.
    """

    def __init__(self, out_dir, enabled: bool = True, tensorboard: bool = True, quiet: bool = False):
        self.enabled = enabled
        self.quiet = quiet
        self.bar = None
        self.start = time.time()
        self._file = None
        self._tb = None
        if not enabled:
            return
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(out_dir / METRICS_NAME, "a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self._tb = SummaryWriter(str(out_dir / "tensorboard"))
            except Exception:  # tensorboard is optional
                self._tb = None

    def elapsed(self) -> float:
        return time.time() - self.start

    def record(self, step: int, values: dict, kind: str = "train") -> None:
        """Append {"step", "time", "kind", **values} to metrics.jsonl (flushed) and to TensorBoard."""
        if not self.enabled:
            return
        rec = {"step": int(step), "time": round(self.elapsed(), 3), "kind": kind}
        rec.update({k: _clean(v) for k, v in values.items()})
        self._file.write(json.dumps(rec) + "\n")
        self._file.flush()
        if self._tb is not None:
            prefix = "" if kind == "train" else f"{kind}/"
            for k, v in values.items():
                self._tb.add_scalar(f"{prefix}{k}", float(v), step)
            self._tb.flush()

    def info(self, msg: str) -> None:
        """A log line on stderr (printed even when quiet: these are the every-log_every-steps lines)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
        else:
            print(msg, file=sys.stderr, flush=True)

    def progress(self, total: int, initial: int):
        """A tqdm bar on stderr, or None when quiet, not on rank 0 or stderr is not a terminal."""
        if not self.enabled or self.quiet or not sys.stderr.isatty() or os.environ.get("TERM") == "dumb":
            return None
        from tqdm import tqdm
        self.bar = tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True,
                        file=sys.stderr)
        return self.bar

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def format_line(step: int, total: int, values: dict, lr: float, rate: float) -> str:
    """'step 100/1000  loss 0.1234  mel 0.5  lr 3.0e-04  12.3 step/s' with at most 8 values shown."""
    keys = ["loss"] + sorted(k for k in values if k != "loss")
    parts = [f"{k} {values[k]:.4g}" for k in keys[:8] if k in values]
    return f"step {step}/{total}  " + "  ".join(parts) + f"  lr {lr:.2e}  {rate:.2f} step/s"
