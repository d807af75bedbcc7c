"""Shared pieces of the supervised separators: the model-file kind, STFT helpers and the training losses.

Every separator maps a mixture (batch, 1, time) to stems (batch, 4, time) plus an aux dict
{"losses": {name: scalar tensor}, "stats": {name: float}}; the losses here compare (batch, stems, time) tensors.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ... import SAMPLE_RATE, STEMS
from ...checkpoint import ModelIO
from ...metrics.sisdr import si_sdr

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


def spec(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Complex STFT (..., time) -> (..., n_fft//2+1, frames), Hann, centred; the window is made per call so
    that a tensor created under inference_mode is never cached and reused by autograd."""
    shape = x.shape
    w = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    s = torch.stft(x.reshape(-1, shape[-1]), n_fft, hop, window=w, return_complex=True, center=True)
    return s.reshape(*shape[:-1], *s.shape[-2:])


def ispec(s: torch.Tensor, length: int, n_fft: int, hop: int) -> torch.Tensor:
    """Inverse of `spec`: (..., freq, frames) -> (..., length)."""
    shape = s.shape
    w = torch.hann_window(n_fft, device=s.device, dtype=torch.float32)
    y = torch.istft(s.reshape(-1, *shape[-2:]), n_fft, hop, window=w, length=length, center=True)
    return y.reshape(*shape[:-2], length)


def mrstft_l1(est: torch.Tensor, ref: torch.Tensor, ffts=(256, 512, 1024, 2048)) -> torch.Tensor:
    """Multi-resolution STFT loss on (..., time): mean over resolutions of L1 on magnitude and on log magnitude.

    A few lines, so written here rather than depending on the codec's loss module (which carries discriminator
    and mel machinery the separator does not need).
    """
    total = est.new_zeros(())
    ffts = [n for n in ffts if n // 2 < est.shape[-1]] or [2 ** max(1, (est.shape[-1] - 1).bit_length() - 1)]
    for n in ffts:
        e = spec(est, n, n // 4).abs()
        r = spec(ref, n, n // 4).abs()
        total = total + F.l1_loss(e, r) + F.l1_loss(torch.log(e + 1e-5), torch.log(r + 1e-5)) * 0.1
    return total / len(ffts)


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
