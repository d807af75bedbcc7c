"""Oracle separators that read the true stems: the ideal ratio mask (IRM), an upper bound for any masking method.

mix (T,), (1, T) or (B, 1, T) and stems (B, S, T) -> estimates (B, S, T), via latentmix.audio.stft/istft.
"""
from __future__ import annotations

import torch

from ..audio import istft, stft


def irm(mix: torch.Tensor, stems: torch.Tensor, n_fft: int = 2048, hop: int = 512, power: float = 2.0,
        eps: float = 1e-10) -> torch.Tensor:
    """Ideal ratio mask: M_s = |S_s|^p / sum_k |S_k|^p applied to the mixture's STFT, then inverted.

    mix: (T,), (1, T) or (B, 1, T); stems: (S, T) or (B, S, T). Returns (B, S, T) float32 (B = 1 for 2-D
    stems). power=2 is the Wiener-like power ratio, power=1 the magnitude ratio. Where every stem is zero the
    mask is 1/S. The mixture need not be the exact sum of the stems (e.g. a clipped or coded mixture).
    """
    if stems.ndim == 2:
        stems = stems.unsqueeze(0)
    if mix.ndim == 1:
        mix = mix[None, None]
    elif mix.ndim == 2:
        mix = mix.unsqueeze(1) if mix.shape[0] == stems.shape[0] and mix.shape[0] != 1 else mix[None]
    if mix.shape[0] != stems.shape[0] or mix.shape[1] != 1 or mix.shape[-1] != stems.shape[-1]:
        raise ValueError(f"irm: mix {tuple(mix.shape)} does not match stems {tuple(stems.shape)}")
    T = stems.shape[-1]
    S = stems.shape[1]
    mix_spec = stft(mix.float(), n_fft, hop)                     # (B, 1, F, N)
    p = stft(stems.float(), n_fft, hop).abs().pow(power)          # (B, S, F, N)
    total = p.sum(1, keepdim=True)
    mask = torch.where(total > eps, p / total.clamp_min(eps), torch.full_like(p, 1.0 / S))
    return istft(mask * mix_spec, T, n_fft, hop)
