"""Reconstruction losses of the codec: multi-scale log-mel L1 (DAC), multi-resolution STFT, waveform L1.

Self-contained on purpose (built on latentmix.audio's stft/mel only); also holds the two quick quality figures
the CLI prints (SI-SDR, mel distance). Audio: (B, C, T) float32.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import SAMPLE_RATE
from ..audio import mel_spectrogram, stft

MEL_WINDOWS = (32, 64, 128, 256, 512, 1024, 2048)
MEL_BINS = (5, 10, 20, 40, 80, 160, 320)
STFT_WINDOWS = (512, 1024, 2048)


def multiscale_mel_loss(x: torch.Tensor, y: torch.Tensor, windows=MEL_WINDOWS, n_mels=MEL_BINS,
                        sr: int = SAMPLE_RATE, clamp: float = 1e-5) -> torch.Tensor:
    """Mean over scales of L1(log10 mel(x), log10 mel(y)); x, y: (..., T). Hop = window / 4."""
    total, used = 0.0, 0
    for w, m in zip(windows, n_mels):
        if w // 2 >= x.shape[-1]:  # reflect padding needs T > w/2; skip scales longer than the clip
            continue
        used += 1
        mx = mel_spectrogram(x, w, w // 4, m, sr).clamp(min=clamp).log10()
        my = mel_spectrogram(y, w, w // 4, m, sr).clamp(min=clamp).log10()
        total = total + F.l1_loss(mx, my)
    return total / max(used, 1)


def mrstft_loss(x: torch.Tensor, y: torch.Tensor, windows=STFT_WINDOWS, eps: float = 1e-7) -> torch.Tensor:
    """Multi-resolution STFT loss: spectral convergence + L1 log magnitude, averaged over windows."""
    total, used = 0.0, 0
    for w in windows:
        if w // 2 >= x.shape[-1]:
            continue
        used += 1
        sx, sy = stft(x, w, w // 4).abs(), stft(y, w, w // 4).abs()
        sc = torch.linalg.vector_norm(sy - sx) / torch.linalg.vector_norm(sy).clamp(min=eps)
        total = total + sc + F.l1_loss((sx + eps).log(), (sy + eps).log())
    return total / max(used, 1)


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
