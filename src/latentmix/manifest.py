"""Batch jobs that survive a kill and scale out: inputs sharded over torchrun ranks, and a JSON-lines manifest
of finished items per rank (input, outputs, seconds, status) that a rerun reads to skip what is done.

Each rank appends to OUT/manifest.rank<R>.jsonl (flushed and fsynced per item, so a SIGKILL loses at most the item
in flight); `merge` writes OUT/manifest.jsonl atomically, the last record of each input winning.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from .fileio import atomic_path

NAME = "manifest.jsonl"


def rank_world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment (RANK, WORLD_SIZE); (0, 1) without it."""
    try:
        world = max(1, int(os.environ.get("WORLD_SIZE", "1")))
        rank = int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0, 1
    return (rank, world) if 0 <= rank < world else (0, 1)


def shard(items: list, rank: int, world: int) -> list:
    """This rank's share of a list that every rank sorted the same way: items rank, rank + world, ..."""
    return list(items)[rank::world]


def key(path) -> str:
    """How an input is named in the manifest: its absolute path."""
    return str(Path(path).resolve())


class Manifest:
    """The manifest of one output folder, written by rank `rank`."""

    def __init__(self, out, rank: int = 0):
        self.out, self.rank = Path(out), int(rank)
        self.path = self.out / f"manifest.rank{self.rank}.jsonl"
        self._lock = threading.Lock()

    def records(self) -> list[dict]:
        """Every record of every rank's file and of the merged file (unreadable lines are skipped: a line cut
        by a kill is simply not done)."""
        files = sorted(self.out.glob("manifest.rank*.jsonl")) + [self.out / NAME]
        out = []
        for f in files:
            if not f.is_file():
                continue
            for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and "input" in rec:
                    out.append(rec)
        return out

    def done(self) -> set[str]:
        """Inputs whose latest record says 'ok'."""
        last: dict[str, str] = {}
        for rec in self.records():
            last[str(rec["input"])] = str(rec.get("status"))
        return {k for k, v in last.items() if v == "ok"}

    def record(self, input_path, outputs, seconds: float, status: str = "ok", error: str | None = None) -> None:
        """Append one item's record (fsynced)."""
        self.out.mkdir(parents=True, exist_ok=True)
        rec = {"input": key(input_path), "outputs": [key(p) for p in outputs], "seconds": round(float(seconds), 3),
               "status": status, "rank": self.rank}
        if error:
            rec["error"] = error
        with self._lock, open(self.path, "a+b") as f:              # -j threads append one line at a time
            f.seek(0, os.SEEK_END)
            cut = False
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                cut = f.read(1) != b"\n"
            f.write((("\n" if cut else "") + json.dumps(rec) + "\n").encode("utf-8"))   # a cut line stays alone
            f.flush()
            os.fsync(f.fileno())

    def merge(self) -> Path:
        """OUT/manifest.jsonl: one record per input (the latest), sorted by input; written atomically."""
        last: dict[str, dict] = {}
        for rec in self.records():
            last[str(rec["input"])] = rec
        target = self.out / NAME
        with atomic_path(target) as tmp:
            tmp.write_text("".join(json.dumps(last[k]) + "\n" for k in sorted(last)), encoding="utf-8")
        return target
