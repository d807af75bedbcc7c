"""Self-organising-map codebooks: codes on an H x W grid whose EMA update spreads to grid neighbours.

Neighbouring codes then sound alike (seed 002, §5), which makes priors over codes more robust. A subclass of
VectorQuantizer that only changes the `spread` hook; use it alone or as the level class of the RVQ.
"""
from __future__ import annotations

import math

import torch

from .vq import VectorQuantizer


def neighbourhood(grid: tuple[int, int], radius: float, kernel: str = "gaussian") -> torch.Tensor:
    """(K, K) weights h[j, i] of code j receiving code i's update, K = H*W; h[i, i] = 1."""
    h, w = grid
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pos = torch.stack([yy.flatten(), xx.flatten()], 1).float()
    if kernel == "gaussian":
        d2 = torch.cdist(pos, pos).pow(2)
        return torch.exp(-d2 / (2 * max(radius, 1e-6) ** 2))
    if kernel == "box":  # Chebyshev distance <= radius: a (2r+1) x (2r+1) square, as in seed 002's 5 x 5
        return ((pos[:, None] - pos[None]).abs().amax(-1) <= radius).float()
    raise ValueError(f"unknown SOM kernel '{kernel}' (gaussian or box)")


class SOMQuantizer(VectorQuantizer):
    """VectorQuantizer whose codebook lies on `grid` (H, W) with H*W = codebook_size; z: (B, dim, F)."""

    def __init__(self, dim: int, codebook_size: int = 512, som_grid=None, som_radius: float = 1.0,
                 som_kernel: str = "gaussian", **kwargs):
        super().__init__(dim, codebook_size, **kwargs)
        if som_grid is None:
            hgt = int(math.sqrt(codebook_size))
            while codebook_size % hgt:
                hgt -= 1
            som_grid = (hgt, codebook_size // hgt)
        if som_grid[0] * som_grid[1] != codebook_size:
            raise ValueError(f"som_grid {som_grid} does not hold {codebook_size} codes")
        self.som_grid = tuple(som_grid)
        self.register_buffer("neigh", neighbourhood(self.som_grid, som_radius, som_kernel), persistent=False)

    def spread(self, counts: torch.Tensor, sums: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.neigh @ counts, self.neigh @ sums
