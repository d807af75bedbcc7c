"""Deterministic evaluation chunk lists: fixed (track, start, length) windows over a split, saved as JSON.

Starts and lengths are in samples at the list's sample rate; `load_chunk` returns the (stems, length) audio.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .. import SAMPLE_RATE, STEMS
from ..fileio import atomic_path
from ..errors import InputError
from .datasets import list_tracks, load_track, track_frames


def eval_chunks(root, split: str | None = "test", seconds: float = 4.0, hop: float | None = None,
                sr: int = SAMPLE_RATE) -> list[dict]:
    """Chunks [{track, start, length}] covering every track of the split; `track` is relative to `root`.

    Windows of `seconds` every `hop` seconds (default: no overlap); a final window is aligned to the track end
    so the tail is covered; a track shorter than one window is one chunk of its own length.
    """
    root = Path(root)
    win = max(1, int(round(seconds * sr)))
    step = max(1, int(round((hop if hop else seconds) * sr)))
    out = []
    for t in list_tracks(root, split):
        n = track_frames(t, sr)
        rel = t.relative_to(root).as_posix() if t != root else "."
        if n <= win:
            out.append({"track": rel, "start": 0, "length": n})
            continue
        starts = list(range(0, n - win + 1, step))
        if starts[-1] + win < n:
            starts.append(n - win)
        out.extend({"track": rel, "start": s, "length": win} for s in starts)
    return out


def save_chunks(path, chunks: list[dict], sr: int = SAMPLE_RATE, **meta) -> None:
    """Write a chunk list as JSON (atomic) with its sample rate and any extra metadata."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps({"sample_rate": sr, **meta, "chunks": chunks}, indent=1) + "\n")


def load_chunks(path) -> tuple[list[dict], int]:
    """(chunks, sample_rate) from a JSON chunk list; InputError naming the file if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such chunk list")
    try:
        data = json.loads(path.read_text())
        chunks = [{"track": str(c["track"]), "start": int(c["start"]), "length": int(c["length"])}
                  for c in data["chunks"]]
        return chunks, int(data.get("sample_rate", SAMPLE_RATE))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path}: not a chunk list ({type(e).__name__}: {e})") from None


def load_chunk(root, chunk: dict, sr: int = SAMPLE_RATE, stems=STEMS, cache: dict | None = None) -> torch.Tensor:
    """Audio of one chunk as float32 (stems, length); pass a dict as `cache` to reuse loaded tracks."""
    track = Path(root) / chunk["track"]
    key = (str(track), sr, tuple(stems))
    x = cache.get(key) if cache is not None else None
    if x is None:
        x = load_track(track, sr, stems=stems)
        if cache is not None:
            cache[key] = x
    seg = x[:, chunk["start"]:chunk["start"] + chunk["length"]]
    return torch.nn.functional.pad(seg, (0, chunk["length"] - seg.shape[1]))
