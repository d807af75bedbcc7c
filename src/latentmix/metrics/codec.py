"""Codec reconstruction metrics: SI-SDR and the spectral distances (multi-resolution STFT, DAC-style mel distance,
the bandwidth-neutral log-mel distance), which double as the codec's training losses.

The spectral distances are defined once, in latentmix.metrics.spectral (see there for their definitions); this
module is the name the benchmarks, CLI and training import them by. All take est, ref shaped
(batch, channels, time), are differentiable, and return a scalar (reduction="mean") or (batch,) ("none").
"""
from __future__ import annotations

from .sisdr import si_sdr
from .spectral import DAC_MEL_SCALES, MRSTFT_FFTS, log_mel_distance, mel_distance, multi_resolution_stft_distance

__all__ = ["si_sdr", "multi_resolution_stft_distance", "mel_distance", "log_mel_distance", "DAC_MEL_SCALES",
           "MRSTFT_FFTS"]
