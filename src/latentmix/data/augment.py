"""Stem augmentations in pure torch: per-stem random gain, per-stem time shift and remixing across songs.

Every function takes an optional torch.Generator so a dataset item is reproducible. Stems are (..., stems, time).
"""
from __future__ import annotations

import torch


def random_gain(stems: torch.Tensor, db_range=(-6.0, 3.0), generator: torch.Generator | None = None) -> torch.Tensor:
    """Scale each stem of (..., stems, time) by an independent gain drawn uniformly in `db_range` dB."""
    lo, hi = float(db_range[0]), float(db_range[1])
    if lo == hi == 0.0:
        return stems
    db = lo + (hi - lo) * torch.rand(stems.shape[:-1], generator=generator)
    return stems * (10.0 ** (db / 20.0)).unsqueeze(-1).to(stems.dtype)


def shift(stems: torch.Tensor, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Crop (..., stems, time) to (..., stems, length) at an independent random offset per stem."""
    extra = stems.shape[-1] - length
    if extra < 0:
        raise ValueError(f"cannot crop {stems.shape[-1]} samples to {length}")
    if extra == 0:
        return stems
    offs = torch.randint(extra + 1, stems.shape[:-1], generator=generator)
    idx = offs.unsqueeze(-1) + torch.arange(length)
    return torch.gather(stems, -1, idx)


def remix(batch: torch.Tensor, p: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shuffle each stem across the batch of (batch, stems, time) with probability `p` per stem.

    Produces new mixtures whose stems come from different songs (stem k of item b from item perm_k[b]).
    """
    b, s, _ = batch.shape
    out = batch.clone()
    for k in range(s):
        if torch.rand((), generator=generator).item() < p:
            out[:, k] = batch[torch.randperm(b, generator=generator), k]
    return out
