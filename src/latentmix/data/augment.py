"""Stem augmentations in pure torch: per-stem random gain and per-stem time shift (cross-song remixing is
StemWindows' remix_p, which draws each stem from its own song).

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
