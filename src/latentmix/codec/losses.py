"""Reconstruction losses of the codec: multi-scale log-mel L1 (DAC), multi-resolution STFT, waveform L1 and the
waveform L1 of the downsampled signals (seed 002's dropped "downsampled-signal objective").

The spectral terms are the metrics of latentmix.metrics.spectral (one definition for training and evaluation):
  rec/mel   = mel_distance / number of scales, i.e. the MEAN over DAC's 7 scales of the log10-mel L1
              (mel_distance, the metric in benchmarks/RESULTS.md, is their SUM);
  rec/stft  = multi_resolution_stft_distance (spectral convergence + log magnitude, mean over 512/1024/2048).
On a clip too short for a scale's centred STFT (window / 2 >= samples) that scale is left out of both the sum and
the count.
  rec/down  = mean over the factors f (default 2 and 4) of L1(down_f(x), down_f(y)), down_f an anti-aliased
              decimation (Kaiser-windowed sinc low-pass at 0.9 x the new Nyquist, 16 taps per factor each
              side, then every f-th sample): the waveform match of the lower bands, weighted apart from the
              full-band L1. Off unless train.weights.down is non-zero.
Audio: (B, C, T) float32.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import SAMPLE_RATE
from ..metrics.spectral import DAC_MEL_SCALES, MRSTFT_FFTS, fits, mel_distance, multi_resolution_stft_distance


def multiscale_mel_loss(x: torch.Tensor, y: torch.Tensor, scales=DAC_MEL_SCALES, sr: int = SAMPLE_RATE,
                        clamp: float = 1e-5) -> torch.Tensor:
    """Mean over the scales that fit the clip of L1(log10 mel(x), log10 mel(y)) = mel_distance / len(scales)."""
    used = [s for s in scales if fits(s[0], x.shape[-1])]
    if not used:
        return x.new_zeros(())
    return mel_distance(x, y, used, sr, clamp) / len(used)


def mrstft_loss(x: torch.Tensor, y: torch.Tensor, fft_sizes=MRSTFT_FFTS) -> torch.Tensor:
    """Multi-resolution STFT distance (spectral convergence + L1 log magnitude) over the FFT sizes that fit; SC is
    divided by max(||target||, ||estimate||), so a silent target (an isolated silent stem) cannot make it explode."""
    used = [n for n in fft_sizes if fits(n, x.shape[-1])]
    if not used:
        return x.new_zeros(())
    return multi_resolution_stft_distance(x, y, used, sc_bounded=True)


DOWN_FACTORS = (2, 4)


def lowpass_kernel(factor: int, half_taps: int = 16, beta: float = 8.0) -> torch.Tensor:
    """(2 * half_taps * factor + 1,) Kaiser-windowed sinc low-pass, cutoff 0.9 / factor of Nyquist, unit DC gain."""
    n = half_taps * int(factor)
    t = torch.arange(-n, n + 1, dtype=torch.float64)
    cutoff = 0.9 / factor
    h = cutoff * torch.sinc(cutoff * t) * torch.kaiser_window(2 * n + 1, periodic=False, beta=beta,
                                                              dtype=torch.float64)
    return (h / h.sum()).float()


def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(B, C, T) -> (B, C, ceil(T / factor)): anti-aliased (lowpass_kernel, zero padding) decimation."""
    b, c, t = x.shape
    h = lowpass_kernel(factor).to(x)
    y = F.conv1d(x.reshape(b * c, 1, t), h.view(1, 1, -1), padding=h.numel() // 2)
    return y[..., ::int(factor)].reshape(b, c, -1)


def downsampled_l1(x: torch.Tensor, y: torch.Tensor, factors=DOWN_FACTORS) -> torch.Tensor:
    """Mean over `factors` of the waveform L1 between the downsampled x and y (B, C, T)."""
    return sum(F.l1_loss(downsample(x, f), downsample(y, f)) for f in factors) / len(factors)


def reconstruction_losses(x: torch.Tensor, y: torch.Tensor, weights: dict | None = None,
                          sr: int = SAMPLE_RATE, down_factors=DOWN_FACTORS) -> dict[str, torch.Tensor]:
    """x: reconstruction, y: target, both (B, C, T). Returns {"rec/mel", "rec/stft", "rec/l1"} for the terms
    whose weight is non-zero (all when `weights` is None), and "rec/down" (at `down_factors`) when
    weights["down"] is non-zero (its default is 0)."""
    w = weights or {}
    out = {}
    if w.get("mel", 1.0):
        out["rec/mel"] = multiscale_mel_loss(x, y, sr=sr)
    if w.get("stft", 1.0):
        out["rec/stft"] = mrstft_loss(x, y)
    if w.get("l1", 1.0):
        out["rec/l1"] = F.l1_loss(x, y)
    if w.get("down", 0.0):
        out["rec/down"] = downsampled_l1(x, y, tuple(int(f) for f in down_factors))
    return out
