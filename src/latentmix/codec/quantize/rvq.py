"""Residual vector quantization over N levels with quantizer dropout (bitrate chosen at inference).

Each level quantizes what the previous levels left; codes (B, n, F) use the first n levels, and decoding sums
the first K levels, so any prefix of the codes is a valid lower-bitrate encoding.
"""
from __future__ import annotations

import random

import torch
import torch.distributed as dist
from torch import nn

from .base import Quantizer, QuantizerOutput
from .vq import VectorQuantizer, _ddp


class ResidualVectorQuantizer(Quantizer):
    """N VectorQuantizer levels (or `level_cls`, e.g. SOMQuantizer). z: (B, dim, F).

    At train time, with probability `quantizer_dropout`, a batch uses n ~ U{1..N} levels (same n on all DDP
    ranks); `num_codebooks` fixes n explicitly (inference bitrate).

    shared_codebook: every level keeps its own projections but quantizes against level 0's codebook (one map
    for all levels, seed 002's SOM setting); the map then takes one EMA step per forward over all levels'
    vectors, so its decay and a SOM's radius schedule count training steps, not levels.
    """

    def __init__(self, dim: int, num_codebooks: int = 8, codebook_size: int = 1024, quantizer_dropout: float = 0.5,
                 level_cls=VectorQuantizer, name: str = "vq", shared_codebook: bool = False, **level_kwargs):
        super().__init__()
        self.dim, self.num_codebooks, self.codebook_size = dim, num_codebooks, codebook_size
        self.quantizer_dropout, self.name = quantizer_dropout, name
        self.levels = nn.ModuleList(level_cls(dim, codebook_size, name=name, level=i, **level_kwargs)
                                    for i in range(num_codebooks))
        self.shared_codebook = bool(shared_codebook)
        if self.shared_codebook:
            for level in self.levels:
                level.defer_update = True
                if level is not self.levels[0]:
                    level.share_codebook(self.levels[0])

    def _n(self, num_codebooks: int | None) -> int:
        if num_codebooks is not None:
            if not 1 <= num_codebooks <= self.num_codebooks:
                raise ValueError(f"num_codebooks must be in 1..{self.num_codebooks}, got {num_codebooks}")
            return int(num_codebooks)
        n = self.num_codebooks
        if self.training and self.quantizer_dropout > 0 and random.random() < self.quantizer_dropout:
            n = random.randint(1, self.num_codebooks)
        if self.training and _ddp():
            t = torch.tensor([n], device=self.levels[0].codebook.device)
            dist.broadcast(t, 0)
            n = int(t.item())
        return n

    def forward(self, z: torch.Tensor, num_codebooks: int | None = None) -> QuantizerOutput:
        """z (B, dim, F) -> z_q (B, dim, F), codes (B, n, F); losses summed over levels, stats per level."""
        n = self._n(num_codebooks)
        with torch.autocast(device_type=z.device.type, enabled=False):
            residual = z.float()
            z_q = torch.zeros_like(residual)
            codes, losses, stats = [], {}, {}
            for level in self.levels[:n]:
                zq_i, idx, l_i, s_i = level.quantize(residual)
                z_q = z_q + zq_i
                residual = residual - zq_i
                codes.append(idx)
                for k, v in l_i.items():
                    losses[k] = losses.get(k, 0) + v
                stats.update(s_i)
                if level.pending:   # k-means still gathering this level's residuals: deeper levels wait
                    codes += [torch.zeros_like(idx)] * (n - len(codes))
                    break
            if self.shared_codebook:
                self._shared_update(self.levels[:n])
            stats[f"{self.name}/num_codebooks"] = torch.tensor(float(n))
        return QuantizerOutput(z_q, torch.stack(codes, 1), losses, stats)

    def _shared_update(self, levels) -> None:
        """One EMA step of the shared map over the vectors every level used this forward."""
        pending = [lv.deferred for lv in levels if lv.deferred is not None]
        for lv in levels:
            lv.deferred = None
        if pending:
            self.levels[0].update_codebook(torch.cat([f for f, _ in pending]), torch.cat([i for _, i in pending]))

    @torch.no_grad()
    def encode(self, z: torch.Tensor, num_codebooks: int | None = None) -> torch.Tensor:
        """z (B, dim, F) -> codes (B, n, F) int64; no codebook update."""
        n = num_codebooks or self.num_codebooks
        self._n(n)
        residual = z.float()
        codes = []
        for level in self.levels[:n]:
            idx = level.encode(residual)
            residual = residual - level.decode(idx)
            codes.append(idx[:, 0])
        return torch.stack(codes, 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, K, F), K <= num_codebooks -> z_q (B, dim, F) (sum of the first K levels)."""
        if codes.shape[1] > self.num_codebooks:
            raise ValueError(f"codes have {codes.shape[1]} codebooks, quantizer has {self.num_codebooks}")
        out = 0
        for k in range(codes.shape[1]):
            out = out + self.levels[k].decode(codes[:, k])
        return out

    def level_latents(self, z: torch.Tensor, num_codebooks: int | None = None) -> list[torch.Tensor]:
        """Per-level straight-through quantized vectors in each level's code space: list of n (B, d, F)."""
        n = num_codebooks or self.num_codebooks
        with torch.autocast(device_type=z.device.type, enabled=False):
            residual, out = z.float(), []
            for level in self.levels[:n]:
                q_code = level.requantize(0, level.in_proj(residual))
                out.append(q_code)
                residual = residual - level.out_proj(q_code)
        return out

    def requantize(self, level: int, v: torch.Tensor) -> torch.Tensor:
        return self.levels[level].requantize(0, v)
