"""Oracle separators that read the true stems: the ideal ratio mask (IRM), an upper bound for any masking method.

`irm`: mix (T,), (1, T) or (B, 1, T) and stems (B, S, T) -> estimates (B, S, T), via latentmix.audio.stft/istft;
`OracleIRM`: the same as a separation method (registered as 'oracle-irm').
"""
from __future__ import annotations

import torch

from .. import STEMS
from ..audio import istft, stft
from ..errors import ConfigError


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


class OracleIRM:
    """Ideal ratio mask from the true stems (an upper bound, not a separator): needs the references.

    A method object (see separation.registry): separate(mix (n, 1, T), refs (n, S, T)) -> (n, S, T) on the input's
    device; separation.apply runs it over long tracks in segments of `segment_seconds` aligned to its STFT `hop`.
    """
    name = "oracle-irm"
    needs_references = True

    def __init__(self, stems=STEMS, n_fft: int = 2048, hop: int = 512, power: float = 2.0,
                 device: str = "cpu", segment_seconds: float = 30.0, **_ignored):
        self.stems = tuple(stems)
        self.n_fft, self.hop, self.power = n_fft, hop, power
        self.device = torch.device(device)
        self.segment_seconds = segment_seconds

    def separate(self, mix: torch.Tensor, refs: torch.Tensor | None) -> torch.Tensor:
        """mix (n, 1, T), refs (n, S, T) -> (n, S, T) on the input's device."""
        if refs is None:
            raise ConfigError(f"method '{self.name}' needs the reference stems")
        dev = mix.device
        return irm(mix.to(self.device), refs.to(self.device), self.n_fft, self.hop, self.power).to(dev)
