"""Choosing one estimate out of N chains or beams, without the ground truth, and the mixture-consistent mask.

estimates: (n, N, 2, T) decoded (bass, drums) of every row of n chunks; mix (n, T) the 0.5 (b + d) mixtures.
- posterior: the row with the best search score (prior + likelihood).
- mixture: the row whose re-encoded mixture 0.5 (b^ + d^) has the encoder latent nearest the mixture's.
- agreement: per stem, the medoid row: the one whose log-magnitude spectrogram is nearest, on average, to the
  other rows' (the chains agree on it).
- mean: no single row: the average over rows of their soft masks (needs the mask step).
- oracle: per stem, the row of best SDR against the true stem (seed 001/003's selection; an UPPER BOUND only).
`mask(est, mix)` re-synthesises the chosen estimates from the mixture with their Wiener-like ratio mask, so the
outputs add up to the mixture (a 4-level code decode misses the detail the finer levels carry).
"""
from __future__ import annotations

import torch

from ...audio import istft, stft
from ...errors import ConfigError

SELECTIONS = ("posterior", "mixture", "agreement", "mean")
N_FFT, HOP = 1024, 256


def _spec_power(x: torch.Tensor) -> torch.Tensor:
    return stft(x.float(), N_FFT, HOP).abs().pow(2)


def by_posterior(score: torch.Tensor) -> torch.Tensor:
    """score (n, N) -> (n, 2) chosen rows (the same for both stems)."""
    return score.argmax(1)[:, None].expand(-1, 2)


@torch.inference_mode()
def by_mixture(codec, est: torch.Tensor, mix: torch.Tensor, mix_gain: float = 0.5) -> torch.Tensor:
    """The row whose re-encoded mixture latent is nearest the mixture's: (n, 2) rows."""
    n, N, _, T = est.shape
    remix = (mix_gain * est.sum(2)).reshape(n * N, 1, T)
    z = codec.encode_latents(remix).reshape(n, N, -1)
    zm = codec.encode_latents(mix[:, None].float()).reshape(n, 1, -1)
    return (z - zm).pow(2).mean(-1).argmin(1)[:, None].expand(-1, 2)


@torch.inference_mode()
def by_agreement(est: torch.Tensor) -> torch.Tensor:
    """Per stem, the medoid row under the mean squared log-magnitude distance: (n, 2) rows."""
    n, N, S, T = est.shape
    logm = (_spec_power(est) + 1e-8).log().reshape(n, N, S, -1)
    rows = []
    for s in range(S):
        x = logm[:, :, s]
        d = torch.cdist(x, x)                                                     # (n, N, N)
        rows.append(d.sum(-1).argmin(-1))
    return torch.stack(rows, 1)


def by_oracle(est: torch.Tensor, refs: torch.Tensor, window: int = 44100) -> torch.Tensor:
    """Per stem, the row of best SDR (museval v4, first `window` samples as the lass protocol scores) against
    refs (n, 2, T): (n, 2) rows. Reads the ground truth: an upper bound, never a result."""
    w = min(window, est.shape[-1])
    e, r = est[..., :w].double(), refs[:, None, :, :w].double()
    sdr = 10 * torch.log10(r.pow(2).sum(-1) / (e - r).pow(2).sum(-1).clamp_min(1e-20))
    return sdr.argmax(1)


def gather(est: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """est (n, N, 2, T), rows (n, 2) -> (n, 2, T): stem s of row rows[:, s]."""
    idx = rows[:, None, :, None].expand(-1, 1, -1, est.shape[-1])
    return est.gather(1, idx)[:, 0]


@torch.inference_mode()
def mask(est: torch.Tensor, mix: torch.Tensor, mix_gain: float = 0.5, eps: float = 1e-10) -> torch.Tensor:
    """Ratio masks from estimates (n, [N,] 2, T) (averaged over N when given) applied to mix (n, T), scaled back
    to the stems' level (mix = mix_gain * sum of stems) -> (n, 2, T)."""
    if est.dim() == 3:
        est = est[:, None]
    T = est.shape[-1]
    p = _spec_power(est)                                                          # (n, N, S, F, frames)
    m = (p / p.sum(2, keepdim=True).clamp_min(eps)).mean(1)                        # (n, S, F, frames)
    spec = stft(mix.float(), N_FFT, HOP)[:, None]                                 # (n, 1, F, frames)
    return istft(m * spec, T, N_FFT, HOP) / mix_gain


def choose(how: str, est: torch.Tensor, mix: torch.Tensor, score: torch.Tensor, codec=None, use_mask: bool = True,
           mix_gain: float = 0.5) -> torch.Tensor:
    """One estimate (n, 2, T) per chunk by a non-oracle rule (SELECTIONS), optionally through the mask."""
    if how == "mean":
        if not use_mask:
            raise ConfigError("selection 'mean' averages the chains' masks: it needs the mask step")
        return mask(est, mix, mix_gain)
    if how == "posterior":
        rows = by_posterior(score)
    elif how == "mixture":
        rows = by_mixture(codec, est, mix, mix_gain)
    elif how == "agreement":
        rows = by_agreement(est)
    else:
        raise ConfigError(f"unknown selection '{how}' ({', '.join(SELECTIONS)}; 'oracle' reads the truth and is "
                          "only an upper bound in the benchmark)")
    out = gather(est, rows)
    return mask(out, mix, mix_gain) if use_mask else out
