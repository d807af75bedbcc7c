"""Scale-invariant SDR (SI-SDR / SI-SNR) and its improvement over the mixture, batched over the last axis.

Also MSDM's exact `sisnr` (eps inside the projection, no zero-mean) used by the `msdm` protocol.

Zero-mean: the textbook SI-SDR (Le Roux et al., 2019) removes each signal's mean first (`zero_mean=True`, the
default here). MSDM's evaluation, and therefore the `msdm` protocol, does not (`zero_mean=False`); a DC offset
then counts as signal, which is why latentmix writes DC-free audio and every figure states which variant it
uses. The formula is three lines, so no library is pulled in for it.
"""
from __future__ import annotations

import numpy as np
import torch


def _as_tensor(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def si_sdr(est, ref, zero_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """SI-SDR in dB of `est` against `ref`, both (..., time); returns (...,).

    alpha = <est, ref> / (<ref, ref> + eps); target = alpha * ref; noise = est - target;
    SI-SDR = 10 log10((|target|^2 + eps) / (|noise|^2 + eps)). Differentiable; numpy input is accepted and
    computed in float64 (a tensor comes back either way).
    """
    est, ref = _as_tensor(est), _as_tensor(ref)
    est, ref = torch.broadcast_tensors(est, ref)
    if zero_mean:
        est = est - est.mean(dim=-1, keepdim=True)
        ref = ref - ref.mean(dim=-1, keepdim=True)
    alpha = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    target = alpha * ref
    noise = est - target
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


def si_sdr_improvement(est, ref, mix, zero_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """SI-SDRi = SI-SDR(est, ref) - SI-SDR(mix, ref); est/ref (..., time), mix broadcastable (e.g. (..., 1, time))."""
    return si_sdr(est, ref, zero_mean, eps) - si_sdr(mix, ref, zero_mean, eps)


def si_snr_msdm(est, ref, eps: float = 1e-8) -> torch.Tensor:
    """MSDM's `sisnr` exactly (evaluation/evaluate_separation.py): (..., time) -> (...,), no zero-mean.

    alpha = (<est, ref> + eps) / (<ref, ref> + eps); note eps in the numerator too, which makes an all-zero
    reference give alpha = 1 rather than 0. Kept separate from `si_sdr` so the protocol stays byte-faithful.
    """
    est, ref = _as_tensor(est), _as_tensor(ref)
    alpha = ((est * ref).sum(-1, keepdim=True) + eps) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    target = alpha * ref
    noise = target - est
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))
