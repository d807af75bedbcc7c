"""Codec-bottleneck separator (arch 'codec'): seed 000's RQ-VAE separator done right, with no encoder skips.

mixture (B, 1, T) -> SEANet conv encoder -> latent z (B, D, F) -> bottleneck (rvq | vq | vae, the codec room's
quantizers) -> z_q (B, D, F) -> decoder whose *only* input is z_q -> stems (B, 4, T). Everything the decoder
knows passes through the codes (seed_spec §1d: the seed's 11.49 dB came from five unquantised U-Net skips).
The encoder and decoder are the codec's own (codec.model.conv_encoder / conv_decoder), with one output channel
per stem.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn as nn

from ... import SAMPLE_RATE, STEMS
from ...codec.model import conv_decoder, conv_encoder
from ...codec.quantize import build_quantizer
from ...errors import ConfigError
from .base import WAVE_TERMS, SeparatorBase, SeparatorOutput

QUANTIZER_TERMS = ("commitment", "codebook", "kl")


def _named_net(net: nn.Sequential) -> nn.Sequential:
    """`net` as the one child "net": separator files name these tensors "encoder.net.*" / "decoder.net.*"."""
    return nn.Sequential(OrderedDict(net=net))


class CodecSeparator(nn.Module, SeparatorBase):
    """Encoder -> bottleneck -> 4-channel decoder. forward(mix (B, 1, T)) -> SeparatorOutput.

    quantizer: the codec room's config dict ({type: rvq|vq|vae, num_codebooks, codebook_size, ...}). Loss terms:
    the waveform terms and the bottleneck's own, "sep/commitment", "sep/codebook" (rvq, vq) and "sep/kl" (vae).
    Widths: channels * 2**i before stride i (no cap).
    """

    TERMS = WAVE_TERMS + QUANTIZER_TERMS

    def __init__(self, arch: str = "codec", channels: int = 12, strides=(2, 4, 5, 8), dim: int = 64,
                 dilations=(1, 3, 9), activation: str = "elu", quantizer: dict | None = None, stems=STEMS,
                 sample_rate: int = SAMPLE_RATE, segment_seconds: float = 6.0):
        super().__init__()
        if arch != "codec":
            raise ConfigError(f"CodecSeparator got arch '{arch}'")
        quantizer = dict(quantizer or {"type": "rvq", "num_codebooks": 8, "codebook_size": 1024})
        self.config = dict(arch=arch, channels=channels, strides=list(strides), dim=dim,
                           dilations=list(dilations), activation=activation, quantizer=quantizer,
                           stems=list(stems), sample_rate=sample_rate, segment_seconds=segment_seconds)
        self.hop_multiple = int(math.prod(strides))
        widths = [channels * 2 ** i for i in range(len(strides) + 1)]
        self.encoder = _named_net(conv_encoder(1, widths, strides, dim, dilations, activation=activation))
        self.quantizer = build_quantizer(dim, quantizer)
        self.decoder = _named_net(conv_decoder(dim, widths, strides, len(stems), dilations, activation=activation))

    def forward(self, mix: torch.Tensor, targets: torch.Tensor | None = None, terms=None) -> SeparatorOutput:
        """mix (B, 1, T) -> stems (B, S, T) (T padded to the hop, then cropped), loss terms given targets."""
        T = mix.shape[-1]
        pad = (-T) % self.hop_multiple
        x = nn.functional.pad(mix, (0, pad))
        q = self.quantizer(self.encoder(x))
        y = self.decoder(q.z_q)[..., :T]
        losses = {}
        if targets is not None:
            wanted = self.wanted_terms(terms)
            for k, v in q.losses.items():           # "rvq/commitment", "vae/kl", ... -> "sep/commitment", ...
                name = k.split("/")[-1]
                if name in wanted:
                    losses[f"sep/{name}"] = v
        return self.output(y, targets, terms, losses, {k: float(v) for k, v in q.stats.items()})
