"""Vector quantizer with EMA codebooks, k-means init, dead-code reset and optional factorised L2-normalised codes.

Written by hand because the codebook maths is this project's own (EMA/k-means/reset synchronised across DDP
ranks, fp32 always). Codebook tensors are named `codebook` (a buffer with EMA, a Parameter with gradient updates).
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ...nn.layers import Conv1d
from .base import Quantizer, QuantizerOutput


def _ddp() -> bool:
    return dist.is_available() and dist.is_initialized()


def sq_distances(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Squared L2 distances between rows: x (N, d), c (K, d) -> (N, K)."""
    return x.pow(2).sum(1, keepdim=True) - 2 * x @ c.t() + c.pow(2).sum(1)[None]


def kmeans(x: torch.Tensor, k: int, iters: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on x (N, d), vectorised: returns centroids (k, d) and cluster sizes (k,).

    Centroids start at random rows of x (with replacement when N < k); empty clusters keep their centroid.
    """
    n = x.shape[0]
    idx = torch.randperm(n, device=x.device)[:k] if n >= k else torch.randint(0, n, (k,), device=x.device)
    cent = x[idx].clone()
    counts = torch.zeros(k, device=x.device)
    for _ in range(iters):
        assign = sq_distances(x, cent).argmin(1)
        counts = torch.bincount(assign, minlength=k).float()
        sums = torch.zeros_like(cent).index_add_(0, assign, x)
        cent = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], cent)
    return cent, counts


_SHARED_STATE = frozenset({"codebook", "ema_count", "ema_sum", "initialized", "som_updates"})


class VectorQuantizer(Quantizer):
    """One codebook of `codebook_size` vectors of `codebook_dim` (factorised if it differs from `dim`).

    forward(z (B, dim, F)) -> QuantizerOutput(z_q (B, dim, F), codes (B, 1, F), losses, stats). Training updates
    (EMA, k-means init, dead-code reset) happen only in train mode with `update_enabled`.

    Dead codes: a code is dead when its EMA count is below `dead_fraction` x the expected count per code per step
    (vectors this step on all ranks / codebook_size), so the rule depends on neither batch size nor world size;
    `dead_threshold` (an absolute EMA count) is the older rule, kept for model files that name it. A reset code
    restarts at the expected count, which leaves it ~ln(1 / dead_fraction) / (1 - decay) steps to be chosen
    before it can be reset again: no churn. k-means starts from at least `kmeans_min_vectors` vectors gathered
    over steps; until then the level is `pending` and outputs zeros (ResidualVectorQuantizer stops there).

    Shared codebooks (`share_codebook(owner)`): the level keeps its own projections but reads and updates the
    owner's codebook state (one map for every RVQ level, seed 002's SOM); the state lives in the owner's
    tensors only, so a model file holds it once. With `defer_update` the level leaves its (vectors, codes) in
    `deferred` instead of updating, so that the owner can take one EMA step over all levels' vectors.
    """

    def __init__(self, dim: int, codebook_size: int = 1024, codebook_dim: int | None = None,
                 l2_normalize: bool = False, ema: bool = True, decay: float = 0.99, kmeans_init: bool = True,
                 kmeans_iters: int = 10, dead_threshold: float | None = None, dead_fraction: float = 0.1,
                 kmeans_min_vectors: int = 0, eps: float = 1e-5, name: str = "vq", level: int = 0):
        super().__init__()
        d = codebook_dim or dim
        self.dim, self.code_dim, self.codebook_size, self.num_codebooks = dim, d, codebook_size, 1
        self.l2_normalize, self.ema, self.decay, self.eps = l2_normalize, ema, decay, eps
        self.kmeans_init, self.kmeans_iters, self.dead_threshold = kmeans_init, kmeans_iters, dead_threshold
        self.dead_fraction, self.kmeans_min_vectors = float(dead_fraction), int(kmeans_min_vectors)
        self._kmeans_buffer: list[torch.Tensor] = []
        self.name, self.level = name, level
        self.update_enabled = True
        self.last_dead_fraction = torch.tensor(0.0)
        self.last_threshold = float(dead_threshold) if dead_threshold is not None else 0.0
        self._kmeans_steps = 0
        self.defer_update, self.deferred = False, None
        factorised = d != dim
        self.in_proj = Conv1d(dim, d, 1) if factorised else nn.Identity()
        self.out_proj = Conv1d(d, dim, 1) if factorised else nn.Identity()
        init = torch.randn(codebook_size, d)
        if ema:
            self.register_buffer("codebook", init)
        else:
            self.codebook = nn.Parameter(init)
        self.register_buffer("ema_count", torch.ones(codebook_size))
        self.register_buffer("ema_sum", init.clone())
        self.register_buffer("initialized", torch.tensor(0.0 if kmeans_init else 1.0))

    # ------------------------------------------------------------------ shared codebooks
    def share_codebook(self, owner: "VectorQuantizer") -> None:
        """Use `owner`'s codebook state (codebook, EMA statistics, init flag) instead of this level's own."""
        for name in _SHARED_STATE:
            self._buffers.pop(name, None)
            self._parameters.pop(name, None)
        self.__dict__["_codebook_owner"] = owner   # not a submodule: the state is saved once, by the owner

    def __getattr__(self, name: str):
        owner = self.__dict__.get("_codebook_owner")
        if owner is not None and name in _SHARED_STATE:
            return getattr(owner, name)
        return super().__getattr__(name)

    # ------------------------------------------------------------------ lookup
    def nearest(self, flat: torch.Tensor, codebook: torch.Tensor | None = None) -> torch.Tensor:
        """Indices (N,) of the nearest codes (of `codebook`, default this level's) to flat (N, d); cosine
        similarity if l2_normalize."""
        cb = (self.codebook if codebook is None else codebook).detach().float()
        if self.l2_normalize:   # argmax of the cosine: |flat| is the same for every code, so it is left out
            return (flat @ F.normalize(cb, dim=1).t()).argmax(1)
        return sq_distances(flat, cb).argmin(1)

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (B, F) -> code vectors (B, d, F)."""
        return F.embedding(idx, self.codebook.float()).transpose(1, 2)

    def _flat(self, z_e: torch.Tensor) -> torch.Tensor:
        return z_e.transpose(1, 2).reshape(-1, z_e.shape[1])

    # ------------------------------------------------------------------ training updates
    def initial_codebook(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(codebook (K, d), vectors per code (K,)) that start training from the gathered vectors flat (N, d):
        k-means here; the SOM orders them on its grid."""
        return kmeans(flat, self.codebook_size, self.kmeans_iters)

    @torch.no_grad()
    def _init(self, flat: torch.Tensor) -> None:
        cent, counts = self.initial_codebook(flat)
        if _ddp():
            dist.broadcast(cent, 0)
            dist.broadcast(counts, 0)
        counts = counts / max(self._kmeans_steps, 1)   # the EMA count is per step
        self.codebook.data.copy_(cent)
        self.ema_count.copy_(counts)
        self.ema_sum.copy_(cent * counts[:, None])
        self.initialized.fill_(1.0)
        self._kmeans_buffer = []

    @torch.no_grad()
    def _accumulate(self, flat: torch.Tensor) -> bool:
        """Gather vectors for the k-means init; initialise once there are enough. True when initialised."""
        self._kmeans_buffer.append(flat)
        self._kmeans_steps = len(self._kmeans_buffer)
        if sum(b.shape[0] for b in self._kmeans_buffer) >= self.kmeans_min_vectors:
            self._init(torch.cat(self._kmeans_buffer))
            return True
        return False

    def spread(self, counts: torch.Tensor, sums: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hook for neighbourhood updates (SOM): identity here. counts (K,), sums (K, d)."""
        return counts, sums

    def _threshold(self, n_vectors: float) -> float:
        """The dead-code threshold for a step that saw `n_vectors` vectors on all ranks."""
        if self.dead_threshold is not None:
            return float(self.dead_threshold)
        return self.dead_fraction * n_vectors / self.codebook_size

    @torch.no_grad()
    def update_codebook(self, flat: torch.Tensor, idx: torch.Tensor) -> None:
        """One EMA step (with the `spread` hook), then the dead-code reset, from vectors flat (N, d) and their
        codes idx (N,)."""
        counts = torch.bincount(idx, minlength=self.codebook_size).float()
        sums = torch.zeros_like(self.ema_sum).index_add_(0, idx, flat)
        counts, sums = self.spread(counts, sums)
        if _ddp():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        if self.ema:
            n = self.ema_count.sum()
            smoothed = (self.ema_count + self.eps) / (n + self.codebook_size * self.eps) * n
            self.codebook.copy_(self.ema_sum / smoothed[:, None])
        n_vectors = float(flat.shape[0]) * (dist.get_world_size() if _ddp() else 1)
        threshold = self._threshold(n_vectors)
        self.last_threshold = threshold
        self.last_dead_fraction = (self.ema_count < threshold).float().mean()  # before the reset
        self._reset_dead(flat, threshold, n_vectors / self.codebook_size)

    @torch.no_grad()
    def _reset_dead(self, flat: torch.Tensor, threshold: float, expected: float) -> None:
        dead = self.ema_count < threshold  # identical on all ranks (all-reduced statistics)
        n_dead = int(dead.sum())
        if n_dead == 0 or threshold <= 0:
            return
        new = flat[torch.randint(0, flat.shape[0], (n_dead,), device=flat.device)].clone()
        if _ddp():
            dist.broadcast(new, 0)
        start = max(expected, 2.0 * threshold)
        self.codebook.data[dead] = new
        self.ema_sum[dead] = new * start
        self.ema_count[dead] = start
        self.resets = getattr(self, "resets", 0) + n_dead

    # ------------------------------------------------------------------ forward / codes
    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict, dict]:
        """z (B, dim, F) -> (z_q (B, dim, F) straight-through, idx (B, F), losses, stats); always fp32."""
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.float()
            z_e = self.in_proj(z)
            flat = self._flat(z_e).detach()
            train = self.training and self.update_enabled
            if train and self.initialized.item() == 0 and not self._accumulate(flat):
                return self._pending(z)
            idx_flat = self.nearest(flat)
            idx = idx_flat.view(z_e.shape[0], z_e.shape[2])
            q = self.lookup(idx)
            if train and self.defer_update:
                self.deferred = (flat, idx_flat)
            elif train:
                self.update_codebook(flat, idx_flat)
            p = f"{self.name}/"
            losses = {p + "commitment": F.mse_loss(z_e, q.detach())}
            losses[p + "codebook"] = (F.mse_loss(q, z_e.detach()) if not self.ema
                                      else torch.zeros((), device=z.device))
            z_q = self.out_proj(z_e + (q - z_e).detach())
            with torch.no_grad():
                counts = torch.bincount(idx_flat, minlength=self.codebook_size).float()
                prob = counts / counts.sum().clamp(min=1)
                ent = -(prob * prob.clamp(min=1e-10).log()).sum()
                sfx = f"_l{self.level}"
                stats = {p + "usage" + sfx: (counts > 0).float().mean(), p + "perplexity" + sfx: ent.exp(),
                         p + "dead_fraction" + sfx: (self.last_dead_fraction if train else
                                                     (self.ema_count < self.last_threshold).float().mean())}
        return z_q, idx, losses, stats

    @property
    def pending(self) -> bool:
        """True while a training k-means init is still gathering vectors (the level outputs zeros)."""
        return self.initialized.item() == 0 and bool(self._kmeans_buffer)

    def _pending(self, z: torch.Tensor):
        zero = torch.zeros((), device=z.device)
        idx = torch.zeros(z.shape[0], z.shape[2], dtype=torch.long, device=z.device)
        p = f"{self.name}/"
        return torch.zeros_like(z), idx, {p + "commitment": zero, p + "codebook": zero}, {}

    def forward(self, z: torch.Tensor, num_codebooks: int | None = None) -> QuantizerOutput:
        z_q, idx, losses, stats = self.quantize(z)
        return QuantizerOutput(z_q, idx[:, None], losses, stats)

    def encode(self, z: torch.Tensor, num_codebooks: int | None = None) -> torch.Tensor:
        with torch.autocast(device_type=z.device.type, enabled=False):
            z_e = self.in_proj(z.float())
            idx = self.nearest(self._flat(z_e)).view(z_e.shape[0], z_e.shape[2])
        return idx[:, None]

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, 1, F) or (B, F) -> (B, dim, F)."""
        idx = codes[:, 0] if codes.dim() == 3 else codes
        with torch.autocast(device_type=codes.device.type, enabled=False):
            return self.out_proj(self.lookup(idx.long()))

    def level_latents(self, z: torch.Tensor, num_codebooks: int | None = None) -> list[torch.Tensor]:
        with torch.autocast(device_type=z.device.type, enabled=False):
            z_e = self.in_proj(z.float())
            return [self.requantize(0, z_e)]

    def requantize(self, level: int, v: torch.Tensor) -> torch.Tensor:
        v = v.float()
        idx = self.nearest(self._flat(v.detach())).view(v.shape[0], v.shape[2])
        q = self.lookup(idx)
        return v + (q - v).detach()
