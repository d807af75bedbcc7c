"""Continuous VAE bottleneck: a 1x1 conv predicts mean and log-variance, reparameterised sample, KL loss.

It has no codes (codes=None); the codec's encode_latents/decode_latents use it. z: (B, dim, F).
"""
from __future__ import annotations

import torch

from ...errors import ConfigError
from ...nn.layers import Conv1d
from .base import Quantizer, QuantizerOutput


class VAEBottleneck(Quantizer):
    """forward(z (B, dim, F)) -> QuantizerOutput(z_q = sample (train) or mean (eval), codes=None, {"vae/kl"})."""

    continuous = True

    def __init__(self, dim: int):
        super().__init__()
        self.dim, self.num_codebooks, self.codebook_size = dim, 0, 0
        self.proj = Conv1d(dim, 2 * dim, 1)

    def moments(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.proj(z.float()).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def forward(self, z: torch.Tensor, num_codebooks: int | None = None) -> QuantizerOutput:
        with torch.autocast(device_type=z.device.type, enabled=False):
            mu, logvar = self.moments(z)
            std = (0.5 * logvar).exp()
            z_q = mu + std * torch.randn_like(mu) if self.training else mu
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean()
        return QuantizerOutput(z_q, None, {"vae/kl": kl}, {"vae/std": std.detach().mean()})

    def encode(self, z, num_codebooks=None):
        raise ConfigError("a VAE codec has no discrete codes; use encode_latents/decode_latents")

    def decode(self, codes):
        raise ConfigError("a VAE codec has no discrete codes; use encode_latents/decode_latents")

    def level_latents(self, z: torch.Tensor, num_codebooks: int | None = None) -> list[torch.Tensor]:
        return [self.moments(z)[0]]

    def requantize(self, level: int, v: torch.Tensor) -> torch.Tensor:
        return v
