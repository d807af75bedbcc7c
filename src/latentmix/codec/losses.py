"""Reconstruction losses of the codec: multi-scale log-mel L1 (DAC), multi-resolution STFT, waveform L1.

The spectral terms are the metrics of latentmix.metrics.spectral (one definition for training and evaluation):
  rec/mel   = mel_distance / number of scales, i.e. the MEAN over DAC's 7 scales of the log10-mel L1
              (mel_distance, the metric in benchmarks/RESULTS.md, is their SUM);
  rec/stft  = multi_resolution_stft_distance (spectral convergence + log magnitude, mean over 512/1024/2048).
On a clip too short for a scale's centred STFT (window / 2 >= samples) that scale is left out of both the sum and
the count. Audio: (B, C, T) float32.
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
    """Multi-resolution STFT distance (spectral convergence + L1 log magnitude) over the FFT sizes that fit."""
    used = [n for n in fft_sizes if fits(n, x.shape[-1])]
    if not used:
        return x.new_zeros(())
    return multi_resolution_stft_distance(x, y, used)


def reconstruction_losses(x: torch.Tensor, y: torch.Tensor, weights: dict | None = None,
                          sr: int = SAMPLE_RATE) -> dict[str, torch.Tensor]:
    """x: reconstruction, y: target, both (B, C, T). Returns {"rec/mel", "rec/stft", "rec/l1"} for the terms
    whose weight is non-zero (all when `weights` is None)."""
    w = weights or {}
    out = {}
    if w.get("mel", 1.0):
        out["rec/mel"] = multiscale_mel_loss(x, y, sr=sr)
    if w.get("stft", 1.0):
        out["rec/stft"] = mrstft_loss(x, y)
    if w.get("l1", 1.0):
        out["rec/l1"] = F.l1_loss(x, y)
    return out
