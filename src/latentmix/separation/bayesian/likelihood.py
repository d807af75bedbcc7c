"""Likelihoods p(mixture | z_bass, z_drums) over candidate code pairs, scored for a whole batch of chains at once.

Every likelihood has `score(ctx, level, t, cand_b, cand_d, codes_b, codes_d) -> (R, kb, kd)` log-likelihoods:
  ctx      MixContext of the R rows (each row is one chain or beam of one chunk): the mixture's codes and latent
  level    the residual level being chosen (0 = coarsest)
  t        the frame of that level at this step (an int: the delay pattern puts frame s - level on level `level`)
  cand_b   (R, kb), cand_d (R, kd): the candidate codes the priors' top-k kept
  codes_b  (R, K, F), codes_d: what every row has chosen so far (coarser levels of frame t are already chosen)
A level a likelihood does not cover scores 0 there (the priors alone choose it).

- CodeSumGaussian: LQ-VAE (seed 001, seeds_spec §2d): -||e_S[i,j] - e_mix||^2 / (2 sigma^2) on level 0, with the
  code-sum table S of codec/linearity.py (nearest level-0 code to the average of two codewords) and the
  (L2-normalised) level-0 codewords e.
- LatentGaussian: latentmix's: the mixture's continuous encoder latent against the average of the two partial
  sums of decoded codewords, -||z_mix - (P_b + P_d) / 2 - (D_l[i] + D_l[j]) / 2||^2 / (2 sigma^2), so every
  residual level is scored on what the coarser levels left (the depth-wise likelihood on partial sums).
- CountLikelihood: LASS (seeds_spec §3b) with smoothing: lambda * log p(m | i, j) from counts.CodeCounts.
- Sum: several of them added (e.g. counts + latent).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class MixContext:
    """The mixtures the rows separate: codes (R, Kc, F) int64 and encoder latents (R, D, F) float32 (row r holds
    its chunk's mixture; rows of one chunk share them)."""
    codes: torch.Tensor
    latent: torch.Tensor

    def select(self, rows: torch.Tensor) -> "MixContext":
        return MixContext(self.codes.index_select(0, rows), self.latent.index_select(0, rows))

    @classmethod
    def from_mixture(cls, codec, mix: torch.Tensor, rows_per_chunk: int) -> "MixContext":
        """mix (n, 1, T) at the codec's rate -> a context of n * rows_per_chunk rows (chunk-major)."""
        with torch.inference_mode():
            codes = codec.encode(mix)
            latent = codec.encode_latents(mix).float()
        rep = torch.arange(mix.shape[0]).repeat_interleave(rows_per_chunk)
        return cls(codes[rep].clone(), latent[rep].clone())


class Likelihood:
    """Base: `covers(level)` says which residual levels it scores."""
    name = "none"

    def covers(self, level: int) -> bool:
        return True

    def score(self, ctx: MixContext, level: int, t, cand_b, cand_d, codes_b, codes_d) -> torch.Tensor:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


class CodeSumGaussian(Likelihood):
    """LQ-VAE's likelihood on level 0 (seed 001): table (V, V) int64 from codec.linearity.code_sum_table."""
    name = "codesum"

    def __init__(self, codec, table: torch.Tensor, sigma: float = 0.4):
        lvl = codec.quantizer.levels[0]
        e = lvl.codebook.detach().float()
        self.e = F.normalize(e, dim=1) if getattr(lvl, "l2_normalize", False) else e     # the codes' geometry
        self.table, self.sigma = table.long(), float(sigma)

    def covers(self, level: int) -> bool:
        return level == 0

    def score(self, ctx, level, t, cand_b, cand_d, codes_b, codes_d):
        if level != 0:
            return torch.zeros(cand_b.shape[0], cand_b.shape[1], cand_d.shape[1])
        e_mix = self.e[ctx.codes[:, 0, t]]                             # (R, d)
        s = self.table[cand_b[:, :, None], cand_d[:, None, :]]                          # (R, kb, kd)
        d2 = (self.e[s] - e_mix[:, None, None]).pow(2).sum(-1)
        return -d2 / (2 * self.sigma ** 2)

    def describe(self) -> str:
        return f"code-sum Gaussian (level 0, sigma {self.sigma:g})"


class LatentGaussian(Likelihood):
    """Gaussian on the mixture's encoder latent against the average of the sources' partial sums (any level).

    D[l] (V, D): level l's decoded codewords (out_proj of the codebook). sigma is relative to the mixture latent's
    RMS frame norm, sqrt(mean_t ||z_t||^2) (a setting), so one value serves codecs of any latent scale."""
    name = "latent"

    def __init__(self, codec, sigma: float = 0.5):
        with torch.inference_mode():
            self.D = torch.stack([lv.decode(torch.arange(lv.codebook_size)[None])[0].t().float()
                                  for lv in codec.quantizer.levels])                   # (K, V, D)
        self.sigma = float(sigma)
        self.norms = self.D.pow(2).sum(-1)                                               # (K, V)

    def _partial(self, codes, t, level):
        """(R, D): sum over levels < level of the decoded codewords chosen at frame t."""
        out = torch.zeros(codes.shape[0], self.D.shape[-1])
        for k in range(level):
            out = out + self.D[k][codes[:, k, t]]
        return out

    def score(self, ctx, level, t, cand_b, cand_d, codes_b, codes_d):
        z = ctx.latent[:, :, t]                                                     # (R, D)
        r = z - 0.5 * (self._partial(codes_b, t, level) + self._partial(codes_d, t, level))
        Dl, nl = self.D[level], self.norms[level]
        eb, ed = Dl[cand_b], Dl[cand_d]                                                  # (R, k, D)
        rb, rd = torch.einsum("rd,rkd->rk", r, eb), torch.einsum("rd,rkd->rk", r, ed)
        cross = torch.bmm(eb, ed.transpose(1, 2))                                        # (R, kb, kd)
        d2 = (r.pow(2).sum(-1)[:, None, None] - rb[:, :, None] - rd[:, None, :] + 0.25 * nl[cand_b][:, :, None]
              + 0.25 * nl[cand_d][:, None, :] + 0.5 * cross)
        scale = ctx.latent.pow(2).sum(1).mean(1).clamp_min(1e-8)                        # (R,) mean ||z_t||^2
        return -d2.clamp_min(0) / (2 * self.sigma ** 2 * scale[:, None, None])

    def describe(self) -> str:
        return f"latent partial-sum Gaussian (sigma {self.sigma:g} x the latent's RMS frame norm)"


class CountLikelihood(Likelihood):
    """LASS's count likelihood (seeds_spec §3b), lambda * log p(m | i, j), smoothed (counts.CodeCounts)."""
    name = "counts"

    def __init__(self, counts, lam: float = 3.0, smoothing: str = "backoff", alpha: float = 1.0):
        self.counts, self.lam, self.smoothing, self.alpha = counts, float(lam), smoothing, float(alpha)

    def covers(self, level: int) -> bool:
        return level < self.counts.levels

    def score(self, ctx, level, t, cand_b, cand_d, codes_b, codes_d):
        if not self.covers(level):
            return torch.zeros(cand_b.shape[0], cand_b.shape[1], cand_d.shape[1])
        m = ctx.codes[:, level, t]                            # (R,)
        return self.lam * self.counts.log_prob(level, cand_b, cand_d, m, self.smoothing, self.alpha)

    def describe(self) -> str:
        return (f"counts ({self.counts.pairs} pairs, {self.counts.levels} levels, lambda {self.lam:g}, "
                f"{self.smoothing} smoothing)")


class Sum(Likelihood):
    """The sum of several likelihoods' log-likelihoods."""
    name = "sum"

    def __init__(self, parts):
        self.parts = list(parts)

    def covers(self, level: int) -> bool:
        return any(p.covers(level) for p in self.parts)

    def score(self, ctx, level, t, cand_b, cand_d, codes_b, codes_d):
        return sum(p.score(ctx, level, t, cand_b, cand_d, codes_b, codes_d) for p in self.parts if p.covers(level))

    def describe(self) -> str:
        return " + ".join(p.describe() for p in self.parts)


class Limit(Likelihood):
    """Another likelihood restricted to the first `levels` residual levels (the search's depth)."""

    def __init__(self, inner: Likelihood, levels: int):
        self.inner, self.levels, self.name = inner, int(levels), inner.name

    def covers(self, level: int) -> bool:
        return level < self.levels and self.inner.covers(level)

    def score(self, ctx, level, t, cand_b, cand_d, codes_b, codes_d):
        return self.inner.score(ctx, level, t, cand_b, cand_d, codes_b, codes_d)

    def describe(self) -> str:
        return f"{self.inner.describe()}, searched on levels < {self.levels}"
