"""Shared pieces of the supervised separators: the model-file kind and the training losses (their STFT is
latentmix.audio's, their multi-resolution STFT loss latentmix.metrics.spectral's).

Every separator maps a mixture (batch, 1, time) to stems (batch, 4, time) plus an aux dict
{"losses": {name: scalar tensor}, "stats": {name: float}}; the losses here compare (batch, stems, time) tensors.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ... import SAMPLE_RATE, STEMS
from ...checkpoint import ModelIO
from ...metrics.sisdr import si_sdr
from ...metrics.spectral import fits, multi_resolution_stft_distance

SILENT_POWER = 1e-8     # mean-square below which a reference stem counts as silent (about -80 dBFS)


class SeparatorBase(ModelIO):
    """Mixin for every separator: KIND 'separator', the stem names and the inference segment length."""

    KIND = "separator"

    @property
    def stems(self) -> tuple[str, ...]:
        return tuple(self.config.get("stems", STEMS))

    @property
    def sample_rate(self) -> int:
        return int(self.config.get("sample_rate", SAMPLE_RATE))

    @property
    def segment_samples(self) -> int:
        """Samples per inference chunk (config `segment_seconds`), a multiple of `hop_multiple`."""
        n = int(round(float(self.config.get("segment_seconds", 6.0)) * self.sample_rate))
        m = self.hop_multiple
        return max(m, n // m * m)

    hop_multiple = 1


MRSTFT_FFTS = (256, 512, 1024, 2048)


def mrstft_l1(est: torch.Tensor, ref: torch.Tensor, ffts=MRSTFT_FFTS) -> torch.Tensor:
    """Multi-resolution STFT loss on (batch, ..., time): the mean over resolutions of L1 on the magnitude plus
    0.1 x L1 on the log magnitude (log(|X| + 1e-5)), i.e. metrics.spectral.multi_resolution_stft_distance with
    weights SC 0, log 0.1, linear 1. Resolutions too long for the clip are left out; a clip too short for all of
    them uses the longest power of two that fits."""
    ffts = [n for n in ffts if fits(n, est.shape[-1])] or [2 ** max(1, (est.shape[-1] - 1).bit_length() - 1)]
    return multi_resolution_stft_distance(est, ref, ffts, sc_weight=0.0, log_weight=0.1, lin_weight=1.0)


def separation_losses(est: torch.Tensor, ref: torch.Tensor, weights: dict) -> dict:
    """Named waveform losses between estimated and true stems (batch, stems, time), each already weighted.

    weights: {"wave_l1": w, "mrstft": w, "sisdr": w}; a zero weight skips the term. The SI-SDR term is the negative
    zero-mean SI-SDR (capped at 60 dB) averaged over the non-silent stems (dB / 10 so its scale matches the L1
    terms).
    """
    out = {}
    if weights.get("wave_l1", 0):
        out["sep/wave_l1"] = weights["wave_l1"] * F.l1_loss(est, ref)
    if weights.get("mrstft", 0):
        out["sep/mrstft"] = weights["mrstft"] * mrstft_l1(est, ref)
    if weights.get("sisdr", 0):
        live = (ref.pow(2).mean(-1) > SILENT_POWER).float()      # a silent reference has no SI-SDR
        sdr = si_sdr(est, ref).clamp(max=60.0)
        out["sep/neg_sisdr"] = weights["sisdr"] * (-(sdr * live).sum() / live.sum().clamp_min(1) / 10)
    return out
