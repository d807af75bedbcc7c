"""LQ-VAE linearity loss (Mancusi et al. 2021, seed §2b), for any bottleneck (VQ, RVQ, SOM, VAE).

L_lin = || Q(a0 q(E a) + a1 q(E b)) - q(E(a0 a + a1 b)) ||^2, pairs (a, b) = (batch, batch rolled by one).
RVQ generalisation (our choice): the loss is applied per residual level l, in that level's own code space:
  mean_l || Q_l(a0 q_l(a) + a1 q_l(b)) - q_l(mix) ||^2,
where q_l(x) is the level-l code vector of x's residual chain. It is zero when a == b (each level's Q_l is
idempotent on its own codes), reduces to the original for one level, and matches a per-level code-sum table
for Bayesian separation. The VAE uses its posterior mean (Q = identity). All vectors are straight-through, so
the gradient reaches the encoder. By default the mixture latents do not update EMA codebooks (the original did,
a side effect): pass update_codebooks=True to reproduce it.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from .quantize.base import no_codebook_update


def linearity_loss(codec, wav: torch.Tensor, alpha=(0.5, 0.5), random_alpha: bool = False,
                   num_codebooks: int | None = None, update_codebooks: bool = False,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """wav (B, C, T) -> scalar L_lin. Pairs each item with the next one (torch.roll by 1 over the batch).

    alpha: fixed weights (a0, a1); random_alpha draws a0 ~ U(0, 1), a1 = 1 - a0 per pair.
    """
    b = wav.shape[0]
    if random_alpha:
        a0 = torch.rand(b, 1, 1, generator=generator).to(wav)
        a1 = 1 - a0
    else:
        a0 = torch.full((b, 1, 1), float(alpha[0]), device=wav.device)
        a1 = torch.full((b, 1, 1), float(alpha[1]), device=wav.device)
    wav_b = torch.roll(wav, 1, 0)
    mix = a0 * wav + a1 * wav_b
    q = codec.quantizer
    ctx = contextlib.nullcontext() if update_codebooks else no_codebook_update(codec)
    with ctx:
        x = codec._pad(torch.cat([wav, mix], 0))
        z = codec.encoder(x)
        levels = q.level_latents(z, num_codebooks)
        if update_codebooks and codec.training and not codec.is_continuous:
            with torch.no_grad():
                q(z[b:].detach(), num_codebooks)  # the original's side effect: mixtures update the EMA codebooks
    total = 0.0
    for lvl, v in enumerate(levels):
        v_a, v_mix = v[:b], v[b:]
        v_b = torch.roll(v_a, 1, 0)
        combo = q.requantize(lvl, a0.to(v) * v_a + a1.to(v) * v_b)
        total = total + F.mse_loss(combo, v_mix)
    return total / len(levels)
