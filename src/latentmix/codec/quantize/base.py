"""The one quantizer interface: forward / encode / decode, a QuantizerOutput record, and the no-update switch.

Every bottleneck (VQ, RVQ, SOM, VAE) returns z_q (B, D, F) with a straight-through gradient, codes (B, K, F)
int64 (None for the VAE), namespaced losses ("vq/commitment") and statistics ("vq/usage_l0").
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class QuantizerOutput:
    """z_q: (B, D, F) quantized latent (straight-through); codes: (B, K, F) int64 or None;
    losses: name -> scalar tensor; stats: name -> float-valued scalar tensor (detached)."""
    z_q: torch.Tensor
    codes: torch.Tensor | None
    losses: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)


class Quantizer(nn.Module):
    """Base of all bottlenecks. Subclasses implement forward, encode, decode and the linearity hooks."""

    num_codebooks: int = 0
    codebook_size: int = 0
    continuous: bool = False     # True: no codes, the decoder takes continuous latents (VAE, energy)

    def forward(self, z: torch.Tensor, num_codebooks: int | None = None) -> QuantizerOutput:
        raise NotImplementedError

    def encode(self, z: torch.Tensor, num_codebooks: int | None = None) -> torch.Tensor:
        """z: (B, D, F) -> codes (B, K, F) int64, never updating codebooks."""
        raise NotImplementedError

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: (B, K, F) -> z_q (B, D, F); K may be fewer than num_codebooks (lower bitrate)."""
        raise NotImplementedError

    def from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decode(codes)

    def context_frames(self) -> int:
        """Frames each side that one output frame of the bottleneck depends on (0: frame by frame)."""
        return 0

    # --- hooks for the linearity loss (codec/linearity.py)
    def level_latents(self, z: torch.Tensor, num_codebooks: int | None = None) -> list[torch.Tensor]:
        """Per-level quantized vectors in each level's own code space, straight-through: list of (B, d, F)."""
        raise NotImplementedError

    def requantize(self, level: int, v: torch.Tensor) -> torch.Tensor:
        """Quantize v (B, d, F), given in level `level`'s code space, straight-through."""
        raise NotImplementedError


@contextlib.contextmanager
def no_codebook_update(module: nn.Module):
    """Inside this context no quantizer under `module` updates EMA statistics, initialises or resets codes."""
    touched = [m for m in module.modules() if hasattr(m, "update_enabled")]
    saved = [m.update_enabled for m in touched]
    for m in touched:
        m.update_enabled = False
    try:
        yield
    finally:
        for m, s in zip(touched, saved):
            m.update_enabled = s
