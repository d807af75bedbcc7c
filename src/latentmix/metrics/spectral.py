"""THE spectral distances of the package: the codec metrics and the codec and separator training losses are all
computed here (codec/losses.py and separation/models/base.py express their losses through these functions).

All take est, ref shaped (batch, channels, time) (any (batch, ..., time) works), are differentiable torch functions
built on latentmix.audio's stft / magnitude / mel_spectrogram (centred Hann frames, hop n_fft / 4 unless stated),
and return a scalar (reduction="mean", the mean over batch items) or one value per batch item
(reduction="none" -> (batch,)). Every per-item mean runs over all channels, bins and frames of that item.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import SAMPLE_RATE
from ..audio import magnitude, mel_spectrogram, stft

# DAC's MelSpectrogramLoss defaults (descript-audio-codec, conf/base.yml): (window length, mel bands)
DAC_MEL_SCALES = ((32, 5), (64, 10), (128, 20), (256, 40), (512, 80), (1024, 160), (2048, 320))
MRSTFT_FFTS = (512, 1024, 2048)
LOG_MEL_FFTS = (512, 1024, 2048)

__all__ = ["DAC_MEL_SCALES", "MRSTFT_FFTS", "LOG_MEL_FFTS", "log_mel_l1", "mel_distance", "log_mel_distance",
           "multi_resolution_stft_distance", "fits"]


def fits(n_fft: int, length: int) -> bool:
    """Whether a centred (reflect-padded) STFT of n_fft points is defined for `length` samples (n_fft / 2 < length);
    the training losses skip the resolutions that do not fit a short clip."""
    return n_fft // 2 < length


def _reduce(per_item: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_item.mean()
    if reduction == "none":
        return per_item
    raise ValueError(f"reduction must be 'mean' or 'none', not {reduction!r}")


def _item_mean(d: torch.Tensor) -> torch.Tensor:
    return d.reshape(d.shape[0], -1).mean(dim=1)


def log_mel_l1(est: torch.Tensor, ref: torch.Tensor, n_fft: int, n_mels: int, sr: int = SAMPLE_RATE,
               floor: float = 1e-5, power: float = 1.0, hop: int | None = None) -> torch.Tensor:
    """One scale: mean | log10 max(mel_ref, floor) - log10 max(mel_est, floor) | per batch item -> (batch,), with
    mel = audio.mel_spectrogram(n_fft, hop (default max(1, n_fft // 4)), n_mels, sr, power)."""
    hop = hop or max(1, n_fft // 4)
    me = mel_spectrogram(est, n_fft, hop, n_mels, sr, power)
    mr = mel_spectrogram(ref, n_fft, hop, n_mels, sr, power)
    return _item_mean((torch.log10(mr.clamp_min(floor)) - torch.log10(me.clamp_min(floor))).abs())


def mel_distance(est: torch.Tensor, ref: torch.Tensor, scales=DAC_MEL_SCALES, sr: int = SAMPLE_RATE,
                 clamp_eps: float = 1e-5, reduction: str = "mean") -> torch.Tensor:
    """DAC-style multi-scale mel distance: the SUM over scales of the L1 distance of log10 mel magnitudes.

    For each (window W, mel bands M) in `scales`: Hann STFT with n_fft = W and hop W // 4 (centred), magnitude
    mel spectrogram with latentmix.audio's M-band filterbank at `sr`, then
      d_W = mean | log10(max(mel_ref, clamp_eps)) - log10(max(mel_est, clamp_eps)) |
    (mean over channels, bands and frames of each batch item); distance = sum_W d_W. This is DAC's
    MelSpectrogramLoss with mag_weight = 0, log_weight = 1, pow = 1 and its seven scales
    (32/5 ... 2048/320); the filterbank is latentmix's, not librosa's, so values match DAC's only closely.
    The codec's training mel loss is this divided by the number of scales (codec/losses.py).
    est, ref (batch, channels, time) -> () or (batch,). A clip shorter than a scale's window leaves that scale
    out (a 10 ms clip has four of the seven); one shorter than every window is zero-padded to the smallest.
    """
    total = 0
    length = est.shape[-1]
    if not any(fits(win, length) for win, _ in scales):
        pad = min(win for win, _ in scales) // 2 + 1 - length
        est, ref = F.pad(est, (0, pad)), F.pad(ref, (0, pad))
    for win, n_mels in (s for s in scales if fits(s[0], est.shape[-1])):
        total = total + log_mel_l1(est, ref, win, n_mels, sr, clamp_eps)
    return _reduce(total, reduction)


def log_mel_distance(est: torch.Tensor, ref: torch.Tensor, fft_sizes=LOG_MEL_FFTS, n_mels: int = 80,
                     sr: int = SAMPLE_RATE, floor: float = 1e-5, reduction: str = "mean") -> torch.Tensor:
    """The bandwidth-neutral log-mel distance of issue #16: for each N in `fft_sizes` (Hann, hop N / 4, i.e. 75 %
    overlap), P = 80-band mel POWER spectrogram; d_N = mean | log10 max(P_ref, floor) - log10 max(P_est, floor) |
    over channels, bands and frames; distance = the MEAN over N (not the sum, unlike mel_distance). A band
    missing in the estimate costs at most its log-distance to the floor, so band-limited codecs (Opus below
    ~10 kbps) are not punished beyond what is missing. est, ref (batch, channels, time) -> () or (batch,).
    """
    items = [log_mel_l1(est, ref, n, n_mels, sr, floor, power=2, hop=n // 4) for n in fft_sizes]
    return _reduce(torch.stack(items).mean(0), reduction)


def multi_resolution_stft_distance(est: torch.Tensor, ref: torch.Tensor, fft_sizes=MRSTFT_FFTS,
                                   hop_ratio: float = 0.25, eps: float = 1e-5, reduction: str = "mean",
                                   sc_weight: float = 1.0, log_weight: float = 1.0,
                                   lin_weight: float = 0.0, sc_bounded: bool = False) -> torch.Tensor:
    """Multi-resolution STFT distance (Yamamoto et al., Parallel WaveGAN), averaged over resolutions.

    For each FFT size N (Hann window N, hop N*hop_ratio), with magnitudes E = |STFT(est)|, R = |STFT(ref)|
    (audio.magnitude):
      spectral convergence  SC  = ||R - E||_F / (||R||_F + eps)
      log-magnitude         LM  = mean |log(R + eps) - log(E + eps)|
      linear magnitude      L1  = mean |R - E|
    distance = mean over N of (sc_weight·SC + log_weight·LM + lin_weight·L1); the defaults (1, 1, 0) are the
    metric (SC + LM); the separators' training loss is (0, 0.1, 1) over 256...2048 points. Norms and means run
    over channels, frequency and frames of each batch item. est, ref (batch, channels, time) -> () or (batch,).
    sc_bounded divides SC by max(||R||, ||E|| (no gradient)) instead, so SC <= 2: a silent reference (an isolated
    silent stem) otherwise makes SC ||E|| / eps, thousands to millions (the codec's training loss uses it).
    """
    items = []
    for n in fft_sizes:
        hop = max(1, int(n * hop_ratio))
        E, R = magnitude(stft(est, n, hop)), magnitude(stft(ref, n, hop))
        E, R = E.reshape(E.shape[0], -1), R.reshape(R.shape[0], -1)
        d = 0
        if sc_weight:
            den = torch.linalg.vector_norm(R, dim=1)
            if sc_bounded:
                den = torch.maximum(den, torch.linalg.vector_norm(E, dim=1).detach())
            d = d + sc_weight * (torch.linalg.vector_norm(R - E, dim=1) / (den + eps))
        if log_weight:
            d = d + log_weight * (torch.log(R + eps) - torch.log(E + eps)).abs().mean(dim=1)
        if lin_weight:
            d = d + lin_weight * (R - E).abs().mean(dim=1)
        items.append(d)
    return _reduce(torch.stack(items).mean(0), reduction)
