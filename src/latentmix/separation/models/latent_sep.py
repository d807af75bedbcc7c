"""Latent-domain separator (arch 'latent'): a small network maps the frozen codec's mixture latents to each stem's
latents, which the codec quantizes and decodes (the 'separate in code space' idea of seeds 000/001, supervised).

mixture (B, 1, T) -> frozen codec encoder -> z_mix (B, D, F) -> dilated conv stack -> z_s (B, 4, D, F)
-> codec quantizer (straight-through, no codebook updates) -> codec decoder -> stems (B, 4, T).
The codec is loaded once from `codec` (a path; default: the shipped codec), its config is stored in this model's
config and its weights in this model's file, so a saved separator is self-contained. It stays in eval mode with
requires_grad False, whatever mode the separator is put in.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ... import SAMPLE_RATE, STEMS
from ...codec import Codec
from ...codec.quantize import no_codebook_update
from ...errors import ConfigError, ModelFileError
from .base import WAVE_TERMS, SeparatorBase, SeparatorOutput


def default_codec_path():
    try:
        from ...pretrained.registry import default_codec_path as f
    except ImportError:
        raise ModelFileError("no shipped codec in this build (latentmix.pretrained.registry is missing); "
                             "give model.codec: PATH") from None
    return f()


class DilatedBlock(nn.Module):
    """x + conv1x1(GELU(dilated conv_k(GroupNorm(x)))): (B, C, F) -> (B, C, F)."""

    def __init__(self, channels: int, dilation: int, kernel: int = 3):
        super().__init__()
        self.net = nn.Sequential(nn.GroupNorm(1, channels),
                                 nn.Conv1d(channels, 2 * channels, kernel, dilation=dilation,
                                           padding=dilation * (kernel - 1) // 2),
                                 nn.GELU(), nn.Conv1d(2 * channels, channels, 1))

    def forward(self, x):
        return x + self.net(x)


class LatentSeparator(nn.Module, SeparatorBase):
    """forward(mix (B, 1, T), targets (B, S, T) | None, terms) -> SeparatorOutput.

    Loss terms: "sep/latent" (predicted vs the codec's latents of each true stem, mean-square error normalised by
    the targets' variance) and the waveform terms on the decoded stems. The codec decoder runs only when the
    stems are needed: without targets, or when `terms` holds a waveform term; training on "latent" alone (the
    latent.yaml preset) leaves it out of the loop, which is much cheaper, and returns stems None.
    """

    TERMS = ("latent",) + WAVE_TERMS

    def __init__(self, arch: str = "latent", codec: str | None = None, codec_config: dict | None = None,
                 channels: int = 256, dilations=(1, 2, 4, 8, 1, 2, 4, 8), kernel: int = 3, stems=STEMS,
                 sample_rate: int = SAMPLE_RATE, segment_seconds: float = 6.0):
        super().__init__()
        if arch != "latent":
            raise ConfigError(f"LatentSeparator got arch '{arch}'")
        if codec_config is None:          # fresh model: load the trained codec's weights
            path = codec or str(default_codec_path())
            self.codec = Codec.load(path)
            codec_config = self.codec.config
            codec = str(path)
        else:                             # loading a saved separator: its file carries the codec weights
            self.codec = Codec.from_config(codec_config)
        self.codec.eval().requires_grad_(False)
        self.config = dict(arch=arch, codec=codec, codec_config=codec_config, channels=channels,
                           dilations=list(dilations), kernel=kernel, stems=list(stems), sample_rate=sample_rate,
                           segment_seconds=segment_seconds)
        if int(codec_config.get("channels", 1)) != 1:
            raise ConfigError("the latent separator needs a mono codec")
        D, S = int(codec_config["latent_dim"]), len(stems)
        self.dim, self.n_stems = D, S
        self.hop_multiple = self.codec.hop_length
        self.inp = nn.Conv1d(D, channels, 1)
        self.blocks = nn.Sequential(*[DilatedBlock(channels, d, kernel) for d in dilations])
        self.out = nn.Sequential(nn.GroupNorm(1, channels), nn.Conv1d(channels, S * D, 1))

    def train(self, mode: bool = True):
        super().train(mode)
        self.codec.eval()                 # frozen: never in train mode (seed §1f(6))
        return self

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """wav (B, C, T) -> the frozen codec's latents (B, C, D, F), one row per channel (mixture or stem)."""
        B, C, T = wav.shape
        z = self.codec.encode_latents(wav.reshape(B * C, 1, T))
        return z.reshape(B, C, *z.shape[-2:])

    def forward(self, mix: torch.Tensor, targets: torch.Tensor | None = None, terms=None) -> SeparatorOutput:
        B, _, T = mix.shape
        z_mix = self.encode(mix)[:, 0]                                          # (B, D, F)
        scale = z_mix.pow(2).mean((1, 2), keepdim=True).sqrt().clamp_min(1e-3)  # level-invariant input
        h = self.blocks(self.inp(z_mix / scale))
        z = (self.out(h) * scale).reshape(B, self.n_stems, self.dim, -1)      # (B, S, D, F)
        losses = {}
        wanted = self.wanted_terms(terms)
        if targets is not None and "latent" in wanted:
            z_t = self.encode(targets)                                          # (B, S, D, F)
            var = z_t.pow(2).mean().clamp_min(1e-6)
            losses["sep/latent"] = F.mse_loss(z, z_t) / var
        if targets is not None and not wanted & set(WAVE_TERMS):
            return SeparatorOutput(None, losses, {})                            # no decoder in the loop
        flat = z.reshape(B * self.n_stems, self.dim, -1)
        if not self.codec.is_continuous:
            with no_codebook_update(self.codec):
                q = self.codec.quantizer(flat)
            flat = q.z_q
        y = self.codec.decode_latents(flat)[..., :T]
        return self.output(y.reshape(B, self.n_stems, T), targets, terms, losses)
