"""The CPU-fast codec front and back ends (codec v2): an STFT + ConvNeXt encoder and a ConvNeXt + inverse-STFT
decoder (Vocos-style), all at frame rate, so nearly every FLOP is a matrix multiply. `multires` J > 0 gives
every ConvNeXt block a multiresolution (wavelet-tree, dilations 1 .. 2^(J-1)) depthwise convolution instead of
the kernel-7 one (nn/multires.py).

Frames are "same"-aligned: frame f covers samples [f·hop - pad, f·hop - pad + n_fft) with pad = (n_fft - hop) / 2,
so T samples (a multiple of hop) give exactly T / hop frames, and F frames decode to exactly F · hop samples.
Spectra are magnitude-compressed (|X|^0.3 with the phase kept) in and out, which keeps the dynamic range of
music within reach of a linear layer and keeps the output linear enough in phase for waveform losses.
The STFT/iSTFT is latentmix.audio's with center="same" (that frame grid, both directions agreeing sample for
sample). `spectral.encoder_input: magnitude` gives the encoder |X|^0.3 alone: its codes then carry no phase, so a
shift of a few samples leaves them unchanged (codes a prior can model); the decoder still predicts phase.
"""
from __future__ import annotations

import torch
from torch import nn

from ..audio import istft, stft
from ..nn.layers import ConvNeXtBlock

COMPRESS = 0.3


def _gain(pairs: torch.Tensor, power: float) -> torch.Tensor:
    """The factor |X|^(power - 1) that maps X to |X|^power e^(i arg X); pairs (..., 2) hold (real, imag)."""
    re, im = pairs[..., :1], pairs[..., 1:]
    return (re * re + im * im + 1e-12).pow((power - 1.0) / 2)   # not .square().sum(-1): a slow tiny reduction


class STFTEncoder(nn.Module):
    """wav (B, C, T), T % hop == 0 -> latents (B, latent_dim, T / hop)."""

    def __init__(self, channels: int, hop: int, n_fft: int, dim: int, depth: int, latent_dim: int, mult: int = 3,
                 multires: int = 0, magnitude: bool = False):
        super().__init__()
        if n_fft < hop or (n_fft - hop) % 2:
            raise ValueError(f"n_fft ({n_fft}) must be >= hop ({hop}) with an even difference")
        self.hop, self.n_fft, self.magnitude = hop, n_fft, magnitude
        bins = n_fft // 2 + 1
        self.embed = nn.Linear((1 if magnitude else 2) * bins * channels, dim)
        self.norm = nn.LayerNorm(dim)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(dim, mult, layer_scale=1.0 / max(depth, 1),
                                                    multires=multires)
                                      for _ in range(depth)])
        self.out_norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, latent_dim)
        self.depth = depth

    def spectrum(self, wav: torch.Tensor) -> torch.Tensor:
        """wav (B, C, T) -> compressed spectrum as real pairs (B, C, F, bins, 2)."""
        spec = torch.view_as_real(stft(wav, self.n_fft, self.hop, center="same").transpose(-1, -2))
        if self.magnitude:                                   # |X|^0.3 alone, (B, C, F, bins, 1)
            return _gain(spec, 2 * COMPRESS + 1).sqrt()
        return spec * _gain(spec, COMPRESS)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        spec = self.spectrum(wav)
        b, c, f = spec.shape[:3]
        feats = spec.transpose(1, 2).reshape(b, f, -1)
        x = self.norm(self.embed(feats)).transpose(1, 2)
        x = self.blocks(x).transpose(1, 2)
        return self.proj(self.out_norm(x)).transpose(1, 2)

    def receptive_field(self) -> int:
        """In samples."""
        return self.n_fft + sum(b.span for b in self.blocks) * self.hop


class ISTFTDecoder(nn.Module):
    """latents (B, latent_dim, F) -> wav (B, C, F · hop)."""

    def __init__(self, channels: int, hop: int, n_fft: int, dim: int, depth: int, latent_dim: int, mult: int = 3,
                 multires: int = 0):
        super().__init__()
        self.channels, self.hop, self.n_fft = channels, hop, n_fft
        self.bins = n_fft // 2 + 1
        self.embed = nn.Conv1d(latent_dim, dim, 7, padding=3)
        self.norm = nn.LayerNorm(dim)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(dim, mult, layer_scale=1.0 / max(depth, 1),
                                                    multires=multires)
                                      for _ in range(depth)])
        self.out_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 2 * self.bins * channels)
        self.depth = depth

    def spectrum(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, D, F) -> complex spectrum (B, C, F, bins) (decompressed)."""
        x = self.norm(self.embed(z).transpose(1, 2)).transpose(1, 2)
        x = self.out_norm(self.blocks(x).transpose(1, 2))
        b, f, _ = x.shape
        y = self.head(x).view(b, f, self.channels, self.bins, 2)
        y = y * _gain(y, 1.0 / COMPRESS)
        return torch.view_as_complex(y).transpose(1, 2)

    def istft(self, spec: torch.Tensor) -> torch.Tensor:
        """(B, C, F, bins) -> (B, C, F · hop): the inverse of the encoder's "same"-aligned STFT."""
        return istft(spec.transpose(-1, -2), spec.shape[-2] * self.hop, self.n_fft, self.hop, center="same")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.istft(self.spectrum(z))

    def receptive_field_frames(self) -> int:
        return 7 + sum(b.span for b in self.blocks) + -(-self.n_fft // self.hop)
