"""Codec-bottleneck separator (arch 'codec'): seed 000's RQ-VAE separator done right, with no encoder skips.

mixture (B, 1, T) -> SEANet conv encoder -> latent z (B, D, F) -> bottleneck (rvq | vq | vae, the codec room's
quantizers) -> z_q (B, D, F) -> decoder whose *only* input is z_q -> stems (B, 4, T). Everything the decoder
knows passes through the codes (seed_spec §1d: the seed's 11.49 dB came from five unquantised U-Net skips).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from ... import SAMPLE_RATE, STEMS
from ...codec.quantize import build_quantizer
from ...errors import ConfigError
from ...nn.layers import Conv1d, DecoderBlock, EncoderBlock, make_activation
from .base import SeparatorBase


class CodecEncoder(nn.Module):
    """(B, 1, T) -> (B, dim, T / prod(strides)): input conv, EncoderBlocks doubling channels, output conv."""

    def __init__(self, channels: int, strides, dim: int, activation: str, dilations):
        super().__init__()
        layers = [Conv1d(1, channels, 7)]
        c = channels
        for s in strides:
            layers.append(EncoderBlock(c, 2 * c, s, dilations=dilations, activation=activation))
            c *= 2
        layers += [make_activation(activation, c), Conv1d(c, dim, 3)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class CodecDecoder(nn.Module):
    """(B, dim, F) -> (B, stems, F * prod(strides)): mirror of the encoder, one output channel per stem."""

    def __init__(self, channels: int, strides, dim: int, activation: str, dilations, stems: int):
        super().__init__()
        c = channels * 2 ** len(strides)
        layers = [Conv1d(dim, c, 7)]
        for s in reversed(strides):
            layers.append(DecoderBlock(c, c // 2, s, dilations=dilations, activation=activation))
            c //= 2
        layers += [make_activation(activation, c), Conv1d(c, stems, 7)]
        self.net = nn.Sequential(*layers)

    def forward(self, z_q):
        return self.net(z_q)


class CodecSeparator(nn.Module, SeparatorBase):
    """Encoder -> bottleneck -> 4-channel decoder. forward(mix (B, 1, T)) -> (stems (B, S, T), aux).

    quantizer: the codec room's config dict ({type: rvq|vq|vae, num_codebooks, codebook_size, ...}); its losses
    (commitment, KL) are returned weighted by `bottleneck_weight` ({name: weight}, default 1 each, KL 1e-3).
    """

    def __init__(self, arch: str = "codec", channels: int = 12, strides=(2, 4, 5, 8), dim: int = 64,
                 dilations=(1, 3, 9), activation: str = "elu", quantizer: dict | None = None,
                 bottleneck_weight: dict | None = None, stems=STEMS, sample_rate: int = SAMPLE_RATE,
                 segment_seconds: float = 6.0, loss: dict | None = None):
        super().__init__()
        if arch != "codec":
            raise ConfigError(f"CodecSeparator got arch '{arch}'")
        quantizer = dict(quantizer or {"type": "rvq", "num_codebooks": 8, "codebook_size": 1024})
        self.config = dict(arch=arch, channels=channels, strides=list(strides), dim=dim,
                           dilations=list(dilations), activation=activation, quantizer=quantizer,
                           bottleneck_weight=bottleneck_weight or {"commitment": 0.25, "codebook": 1.0,
                                                                   "kl": 1e-3},
                           stems=list(stems), sample_rate=sample_rate, segment_seconds=segment_seconds,
                           loss=loss or {"wave_l1": 1.0, "mrstft": 1.0, "sisdr": 1.0})
        self.hop_multiple = int(math.prod(strides))
        self.encoder = CodecEncoder(channels, strides, dim, activation, dilations)
        self.quantizer = build_quantizer(dim, quantizer)
        self.decoder = CodecDecoder(channels, strides, dim, activation, dilations, len(stems))

    def forward(self, mix: torch.Tensor, targets: torch.Tensor | None = None):
        """mix (B, 1, T) -> stems (B, S, T), aux {"losses", "stats"}; T is padded to the hop, then cropped."""
        T = mix.shape[-1]
        pad = (-T) % self.hop_multiple
        x = nn.functional.pad(mix, (0, pad))
        q = self.quantizer(self.encoder(x))
        y = self.decoder(q.z_q)[..., :T]
        w = self.config["bottleneck_weight"]
        losses = {k: v * float(w.get(k.split("/")[-1], 1.0)) for k, v in q.losses.items()}
        stats = {k: float(v) for k, v in q.stats.items()}
        return y, {"losses": losses, "stats": stats}
