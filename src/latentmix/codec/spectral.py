"""The CPU-fast codec front and back ends (codec v2): an STFT + ConvNeXt encoder and a ConvNeXt + inverse-STFT
decoder (Vocos-style), all at frame rate, so nearly every FLOP is a matrix multiply.

Frames are "same"-aligned: frame f covers samples [f·hop - pad, f·hop - pad + n_fft) with pad = (n_fft - hop) / 2,
so T samples (a multiple of hop) give exactly T / hop frames, and F frames decode to exactly F · hop samples.
Spectra are magnitude-compressed (|X|^0.3 with the phase kept) in and out, which keeps the dynamic range of
music within reach of a linear layer and keeps the output linear enough in phase for waveform losses.
The STFT/iSTFT is written here (framing + rfft, irfft + fold) rather than with torch.stft/istft because the
decoder needs this exact frame alignment and both directions must agree sample for sample.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.layers import ConvNeXtBlock

COMPRESS = 0.3


def _gain(pairs: torch.Tensor, power: float) -> torch.Tensor:
    """The factor |X|^(power - 1) that maps X to |X|^power e^(i arg X); pairs (..., 2) hold (real, imag)."""
    return (pairs.square().sum(-1, keepdim=True) + 1e-12).pow((power - 1.0) / 2)


def overlap_add(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """frames (N, F, n_fft) -> (N, (F - 1) · hop + n_fft), frame f added at f · hop. With n_fft a multiple of hop
    this is n_fft / hop slice additions (several times faster than F.fold on CPUs)."""
    n, f, n_fft = frames.shape
    total = (f - 1) * hop + n_fft
    if n_fft % hop:
        fold = dict(output_size=(1, total), kernel_size=(1, n_fft), stride=(1, hop))
        return F.fold(frames.transpose(1, 2), **fold).view(n, total)
    r = n_fft // hop
    out = frames.new_zeros(n, f + r - 1, hop)
    parts = frames.view(n, f, r, hop)
    for j in range(r):
        out[:, j:j + f] += parts[:, :, j]
    return out.view(n, total)


def _window(n_fft: int) -> torch.Tensor:
    return torch.hann_window(n_fft, periodic=True)


class STFTEncoder(nn.Module):
    """wav (B, C, T), T % hop == 0 -> latents (B, latent_dim, T / hop)."""

    def __init__(self, channels: int, hop: int, n_fft: int, dim: int, depth: int, latent_dim: int, mult: int = 3):
        super().__init__()
        if n_fft < hop or (n_fft - hop) % 2:
            raise ValueError(f"n_fft ({n_fft}) must be >= hop ({hop}) with an even difference")
        self.hop, self.n_fft, self.pad = hop, n_fft, (n_fft - hop) // 2
        bins = n_fft // 2 + 1
        self.register_buffer("window", _window(n_fft), persistent=False)
        self.embed = nn.Linear(2 * bins * channels, dim)
        self.norm = nn.LayerNorm(dim)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(dim, mult, layer_scale=1.0 / max(depth, 1))
                                      for _ in range(depth)])
        self.out_norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, latent_dim)
        self.depth = depth

    def spectrum(self, wav: torch.Tensor) -> torch.Tensor:
        """wav (B, C, T) -> compressed spectrum as real pairs (B, C, F, bins, 2)."""
        x = F.pad(wav, (self.pad, self.pad))
        spec = torch.view_as_real(torch.fft.rfft(x.unfold(-1, self.n_fft, self.hop) * self.window, dim=-1))
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
        return self.n_fft + self.depth * 6 * self.hop


class ISTFTDecoder(nn.Module):
    """latents (B, latent_dim, F) -> wav (B, C, F · hop)."""

    def __init__(self, channels: int, hop: int, n_fft: int, dim: int, depth: int, latent_dim: int, mult: int = 3):
        super().__init__()
        self.channels, self.hop, self.n_fft, self.pad = channels, hop, n_fft, (n_fft - hop) // 2
        self.bins = n_fft // 2 + 1
        self.register_buffer("window", _window(n_fft), persistent=False)
        self.embed = nn.Conv1d(latent_dim, dim, 7, padding=3)
        self.norm = nn.LayerNorm(dim)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(dim, mult, layer_scale=1.0 / max(depth, 1))
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
        """(B, C, F, bins) -> (B, C, F · hop): windowed overlap-add divided by the window-power envelope."""
        b, c, f, _ = spec.shape
        frames = torch.fft.irfft(spec, n=self.n_fft, dim=-1) * self.window          # (B, C, F, n_fft)
        y = overlap_add(frames.reshape(b * c, f, self.n_fft), self.hop)
        env = overlap_add((self.window ** 2).expand(1, f, self.n_fft), self.hop)
        y = y / env.clamp(min=1e-8)
        return y[..., self.pad:self.pad + f * self.hop].reshape(b, c, f * self.hop)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.istft(self.spectrum(z))

    def receptive_field_frames(self) -> int:
        return 7 + self.depth * 6 + -(-self.n_fft // self.hop)
