"""The energy-transformer bottleneck (seed 002, §5; Hoover et al. 2023): the latent frames descend a learned
energy, x <- x - step_size * dE/dg with g = LayerNorm(x), for a fixed number of steps. Continuous: no codes.

E(g) = E_att + E_hn over the frames g_c (c = 1..F):
  E_att = -(1/beta) sum_heads sum_c log sum_{b in window(c), b != c} exp(beta K_b . Q_c),  Q = W_Q g, K = W_K g
  E_hn  = -1/2 sum_c sum_mu relu(xi_mu . g_c)^2   (a Hopfield layer with `memories` stored patterns xi)
The gradient is written out (not taken by autograd) so that the dynamics also run under torch.inference_mode,
as every codec's inference does; training back-propagates through the unrolled steps like any other layers.
Attention looks `window` frames each way, so chunked inference stays exact with a margin of
steps * 2 * window frames (`context_frames`). Written by hand: no maintained library has this layer.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from .base import Quantizer, QuantizerOutput


def _shift(x: torch.Tensor, offset: int) -> torch.Tensor:
    """y[..., c, :] = x[..., c + offset, :] along the frame axis (-2), zero outside."""
    if offset == 0:
        return x
    n = x.shape[-2]
    if abs(offset) >= n:
        return torch.zeros_like(x)
    if offset > 0:
        return F.pad(x[..., offset:, :], (0, 0, 0, offset))
    return F.pad(x[..., :n + offset, :], (0, 0, -offset, 0))


class EnergyBottleneck(Quantizer):
    """forward(z (B, dim, F)) -> QuantizerOutput(z_q = the latent after `steps` energy-descent steps,
    codes=None, no losses, stats {"energy/energy", "energy/update"}). z_q: (B, dim, F)."""

    continuous = True

    def __init__(self, dim: int, steps: int = 10, step_size: float = 0.1, heads: int = 4, head_dim: int = 16,
                 memories: int = 256, window: int = 8, beta: float | None = None):
        super().__init__()
        if min(int(steps), int(heads), int(head_dim), int(memories), int(window)) < 1 or float(step_size) <= 0:
            raise ConfigError("quantizer.energy_*: steps, heads, head_dim, memories and window must be >= 1 and "
                              "step_size > 0")
        self.dim, self.num_codebooks, self.codebook_size = dim, 0, 0
        self.steps, self.step_size, self.window = int(steps), float(step_size), int(window)
        self.beta = float(beta) if beta is not None else float(head_dim) ** -0.5
        self.norm = nn.LayerNorm(dim)
        self.wq = nn.Parameter(torch.randn(heads, head_dim, dim) * 0.02)
        self.wk = nn.Parameter(torch.randn(heads, head_dim, dim) * 0.02)
        self.xi = nn.Parameter(torch.randn(memories, dim) * 0.02)

    def _attention(self, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """g (B, F, D) -> (dE_att/dg (B, F, D), E_att per item (B,))."""
        q = torch.einsum("bfd,hyd->bhfy", g, self.wq)
        k = torch.einsum("bfd,hyd->bhfy", g, self.wk)
        offsets = [o for o in range(-self.window, self.window + 1) if o != 0]
        n = g.shape[1]
        valid = torch.stack([(torch.arange(n, device=g.device) + o >= 0) & (torch.arange(n, device=g.device) + o < n)
                             for o in offsets], -1)                                     # (F, 2w)
        scores = torch.stack([(q * _shift(k, o)).sum(-1) for o in offsets], -1) * self.beta   # (B, H, F, 2w)
        scores = scores.masked_fill(~valid, float("-inf"))
        lse = torch.logsumexp(scores, -1)                                               # (B, H, F)
        p = torch.exp(scores - lse[..., None]).nan_to_num(0.0)
        dq = -sum(p[..., i, None] * _shift(k, o) for i, o in enumerate(offsets))      # dE/dQ (B, H, F, Y)
        dk = -sum(_shift(p[..., i, None] * q, -o) for i, o in enumerate(offsets))     # dE/dK
        grad = torch.einsum("bhfy,hyd->bfd", dq, self.wq) + torch.einsum("bhfy,hyd->bfd", dk, self.wk)
        energy = -(lse.nan_to_num(0.0, neginf=0.0)).sum((1, 2)) / self.beta
        return grad, energy

    def _hopfield(self, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """g (B, F, D) -> (dE_hn/dg (B, F, D), E_hn per item (B,))."""
        a = F.relu(g @ self.xi.t())                                                     # (B, F, M)
        return -(a @ self.xi), -0.5 * a.pow(2).sum((1, 2))

    def energy_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, F, D) -> (E (B,), dE/dg (B, F, D)) at g = LayerNorm(x)."""
        g = self.norm(x)
        ga, ea = self._attention(g)
        gh, eh = self._hopfield(g)
        return ea + eh, ga + gh

    def dynamics(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, D, F) -> the latent after `steps` descent steps (B, D, F)."""
        with torch.autocast(device_type=z.device.type, enabled=False):
            x = z.float().transpose(1, 2)
            for _ in range(self.steps):
                x = x - self.step_size * self.energy_and_grad(x)[1]
        return x.transpose(1, 2)

    def forward(self, z: torch.Tensor, num_codebooks: int | None = None) -> QuantizerOutput:
        z_q = self.dynamics(z)
        with torch.no_grad():
            stats = {"energy/update": (z_q - z.float()).pow(2).mean().sqrt(),
                     "energy/energy": self.energy_and_grad(z_q.float().transpose(1, 2))[0].mean() / z.shape[-1]}
        return QuantizerOutput(z_q, None, {}, stats)

    def context_frames(self) -> int:
        """Frames each side that one output frame depends on."""
        return self.steps * 2 * self.window

    def encode(self, z, num_codebooks=None):
        raise ConfigError("an energy-bottleneck codec has no discrete codes; use encode_latents/decode_latents")

    def decode(self, codes):
        raise ConfigError("an energy-bottleneck codec has no discrete codes; use encode_latents/decode_latents")

    def level_latents(self, z: torch.Tensor, num_codebooks: int | None = None) -> list[torch.Tensor]:
        return [self.dynamics(z)]

    def requantize(self, level: int, v: torch.Tensor) -> torch.Tensor:
        return v
