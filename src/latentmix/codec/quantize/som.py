"""Self-organising-map codebooks: codes on an H x W grid whose EMA update spreads to grid neighbours.

Neighbouring codes then sound alike (seed 002, §5), which should make priors over codes more robust. A subclass
of VectorQuantizer that changes the `spread` hook (the neighbourhood), the starting codebook (`som_init`) and
the radius over training (`som_radius_end`, `som_radius_steps`); use it alone or as the level class of the RVQ,
whose `shared_codebook` gives every level the one map (the seed's setting). Defaults reproduce the first SOM
(Gaussian radius 1, fixed, k-means start), so its model files load unchanged.

Ordered start (`som_init: ordered`): the gathered vectors' two principal axes span the grid (Kohonen's linear
initialisation), then `kmeans_iters` batch-SOM passes (Lloyd's step with the neighbourhood, the radius shrinking
from a quarter of the grid to `som_radius`) settle it, so grid neighbours start as data neighbours. k-means
(`som_init: kmeans`, the default) places centroids in no order: a map only forms as far as the training-time
neighbourhood pulls it into one.
"""
from __future__ import annotations

import math

import torch

from ...errors import ConfigError
from .vq import VectorQuantizer, sq_distances

KERNELS = ("gaussian", "box")
INITS = ("kmeans", "ordered")


def grid_positions(grid: tuple[int, int]) -> torch.Tensor:
    """(H*W, 2) float (row, column) of every code, row-major (code i = row i // W, column i % W)."""
    h, w = grid
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([yy.flatten(), xx.flatten()], 1).float()


def neighbourhood(grid: tuple[int, int], radius: float, kernel: str = "gaussian") -> torch.Tensor:
    """(K, K) weights h[j, i] of code j receiving code i's update, K = H*W; h[i, i] = 1."""
    pos = grid_positions(grid)
    if kernel == "gaussian":
        d2 = torch.cdist(pos, pos).pow(2)
        return torch.exp(-d2 / (2 * max(radius, 1e-6) ** 2))
    if kernel == "box":  # Chebyshev distance <= radius: a (2r+1) x (2r+1) square, as in seed 002's 5 x 5
        return ((pos[:, None] - pos[None]).abs().amax(-1) <= radius).float()
    raise ValueError(f"unknown SOM kernel '{kernel}' (gaussian or box)")


def default_grid(codebook_size: int) -> tuple[int, int]:
    """The most nearly square (H, W) with H * W = codebook_size, H <= W."""
    hgt = int(math.sqrt(codebook_size))
    while codebook_size % hgt:
        hgt -= 1
    return hgt, codebook_size // hgt


def _assign(flat: torch.Tensor, cent: torch.Tensor, cosine: bool) -> torch.Tensor:
    if cosine:
        return (flat @ torch.nn.functional.normalize(cent, dim=1).t()).argmax(1)
    return sq_distances(flat, cent).argmin(1)


@torch.no_grad()
def ordered_codebook(flat: torch.Tensor, grid: tuple[int, int], iters: int = 10, radius_end: float = 1.0,
                     cosine: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A codebook (H*W, d) ordered on `grid` from vectors flat (N, d), and the (neighbourhood-spread) vectors
    per code (H*W,): the principal-axes grid, then `iters` batch-SOM passes with a Gaussian radius shrinking
    geometrically from max(H, W) / 4 to `radius_end`. `cosine`: codes are compared by cosine (L2-normalised
    codebooks)."""
    h, w = grid
    mean = flat.mean(0)
    x = flat - mean
    evals, evecs = torch.linalg.eigh(x.t() @ x / max(x.shape[0] - 1, 1))     # ascending
    axes = evecs[:, -2:].flip(1) * evals[-2:].flip(0).clamp(min=0).sqrt()     # (d, 2): 1st, 2nd axis x std
    if axes.shape[1] < 2:                                                       # one-dimensional codes
        axes = torch.cat([axes, torch.zeros_like(axes)], 1)
    long_rows = h >= w                          # the longer grid side follows the first principal axis
    pos = grid_positions(grid)
    u = torch.stack([pos[:, 0] / max(h - 1, 1), pos[:, 1] / max(w - 1, 1)], 1) * 4.0 - 2.0   # [-2, 2]
    u = u if long_rows else u.flip(1)
    cent = mean + u.to(flat) @ axes.t()
    r0 = max(h, w) / 4.0
    r1 = min(float(radius_end), r0)
    counts = torch.ones(h * w, device=flat.device)
    for it in range(iters):
        radius = r0 * (max(r1, 1e-3) / r0) ** (it / max(iters - 1, 1))
        neigh = neighbourhood(grid, radius).to(flat)
        idx = _assign(flat, cent, cosine)
        counts = neigh @ torch.bincount(idx, minlength=h * w).to(flat)
        sums = neigh @ torch.zeros_like(cent).index_add_(0, idx, flat)
        cent = torch.where(counts[:, None] > 1e-8, sums / counts.clamp(min=1e-8)[:, None], cent)
    return cent, counts


class SOMQuantizer(VectorQuantizer):
    """VectorQuantizer whose codebook lies on `som_grid` (H, W) with H*W = codebook_size; z: (B, dim, F).

    som_radius: the neighbourhood radius (Gaussian sigma, or the box's Chebyshev reach: 2 = a 5 x 5 square);
    som_kernel: gaussian | box; som_radius_end: None keeps som_radius for ever, else the radius goes linearly
    from som_radius to som_radius_end over som_radius_steps codebook updates (one per training step) and stays
    there; som_init: kmeans | ordered (see the module docstring).
    """

    def __init__(self, dim: int, codebook_size: int = 512, som_grid=None, som_radius: float = 1.0,
                 som_kernel: str = "gaussian", som_radius_end: float | None = None, som_radius_steps: int = 0,
                 som_init: str = "kmeans", **kwargs):
        super().__init__(dim, codebook_size, **kwargs)
        som_grid = tuple(int(v) for v in (som_grid or default_grid(codebook_size)))
        if len(som_grid) != 2 or som_grid[0] * som_grid[1] != codebook_size:
            raise ConfigError(f"quantizer.som_grid {list(som_grid)} does not hold {codebook_size} codes")
        if som_kernel not in KERNELS:
            raise ConfigError(f"quantizer.som_kernel '{som_kernel}' is not one of {', '.join(KERNELS)}")
        if som_init not in INITS:
            raise ConfigError(f"quantizer.som_init '{som_init}' is not one of {', '.join(INITS)}")
        if som_radius_end is not None and int(som_radius_steps) < 1:
            raise ConfigError("quantizer.som_radius_end needs som_radius_steps >= 1")
        self.som_grid, self.som_kernel, self.som_init = som_grid, som_kernel, som_init
        self.som_radius = float(som_radius)
        self.som_radius_end = None if som_radius_end is None else float(som_radius_end)
        self.som_radius_steps = int(som_radius_steps)
        self.register_buffer("neigh", neighbourhood(self.som_grid, self.som_radius, som_kernel), persistent=False)
        if self.som_radius_end is not None:   # the schedule's clock: saved, so a resumed run continues it
            self.register_buffer("som_updates", torch.zeros(()))

    def radius(self) -> float:
        """The neighbourhood radius of the next update."""
        if self.som_radius_end is None:
            return self.som_radius
        t = min(float(self.som_updates) / self.som_radius_steps, 1.0)
        return self.som_radius + t * (self.som_radius_end - self.som_radius)

    def neighbours(self) -> torch.Tensor:
        """(K, K) neighbourhood weights at the current radius."""
        if self.som_radius_end is None:
            return self.neigh
        return neighbourhood(self.som_grid, self.radius(), self.som_kernel).to(self.neigh)

    def spread(self, counts: torch.Tensor, sums: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        neigh = self.neighbours()
        return neigh @ counts, neigh @ sums

    def update_codebook(self, flat: torch.Tensor, idx: torch.Tensor) -> None:
        super().update_codebook(flat, idx)
        if self.som_radius_end is not None:
            self.som_updates.add_(1.0)

    def initial_codebook(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.som_init == "ordered":
            return ordered_codebook(flat, self.som_grid, self.kmeans_iters, self.som_radius, self.l2_normalize)
        return super().initial_codebook(flat)
