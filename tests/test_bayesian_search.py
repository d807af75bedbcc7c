"""Bayesian search on toys: beam search = exhaustive search when the beam covers the joint space, a narrow beam
finds the unique best path, beam scores stay with their beams (seeds_spec §3c), and a mixture of two known code
sequences is recovered under a perfect likelihood, by beam search and by sampling."""
import itertools

import torch

from latentmix.priors.transformer import CodeTransformer
from latentmix.separation.bayesian.likelihood import Likelihood, MixContext
from latentmix.separation.bayesian.search import search


def toy_prior(seed, V=3, K=1, **kw):
    torch.manual_seed(seed)
    return CodeTransformer(num_codebooks=K, codebook_size=V, pattern="delay", dim=16, depth=1, heads=2, **kw).eval()


class TableLik(Likelihood):
    """score[t, i, j] given outright (level 0); the mixture context is not read."""
    name = "table"

    def __init__(self, table):
        self.table = table

    def covers(self, level):
        return level == 0

    def score(self, ctx, level, t, cand_b, cand_d, codes_b, codes_d):
        tab = self.table[t]
        return tab[cand_b[:, :, None], cand_d[:, None, :]]


def path_logprob(model, codes):
    """log p(codes (N, 1, F)) under a prior, by one full (uncached) forward."""
    streams = model.pattern.build(codes)
    lp = model(model.shift(streams)).log_softmax(-1)               # (N, 1, S, V)
    return lp.gather(-1, streams[..., None].clamp(max=model.pad - 1))[..., 0].sum((1, 2))


def dummy_ctx(rows, frames):
    return MixContext(torch.zeros(rows, 1, frames, dtype=torch.long), torch.zeros(rows, 1, frames))


def exhaustive(pb, pd, table, V=3, F=4):
    paths = torch.tensor(list(itertools.product(range(V), repeat=F)))            # (V^F, F)
    n = paths.shape[0]
    b = paths[:, None, None, :].expand(n, n, 1, F).reshape(-1, 1, F)
    d = paths[None, :, None, :].expand(n, n, 1, F).reshape(-1, 1, F)
    with torch.no_grad():
        lpb, lpd = path_logprob(pb, paths[:, None]), path_logprob(pd, paths[:, None])
    prior = (lpb[:, None] + lpd[None, :]).reshape(-1)
    lik = table[torch.arange(F)[None], b[:, 0], d[:, 0]].sum(-1)
    total = prior + lik
    i = int(total.argmax())
    return float(total[i]), b[i], d[i]


def test_wide_beam_equals_exhaustive_search():
    V, F = 3, 4
    pb, pd = toy_prior(0, V), toy_prior(1, V)
    table = torch.randn(F, V, V, generator=torch.Generator().manual_seed(3))
    best, b, d = exhaustive(pb, pd, table, V, F)
    width = (V * V) ** (F - 1)                                     # every path is kept until the last step
    res = search((pb, pd), TableLik(table), dummy_ctx(width, F), F, 1, width, mode="beam", topk=V)
    assert torch.equal(res.codes_b[0], b) and torch.equal(res.codes_d[0], d)
    assert abs(float(res.score[0]) - best) < 1e-4
    assert torch.all(res.score[:-1] >= res.score[1:])              # beams come out sorted by score


def test_beam_scores_follow_their_beams():
    """Every kept beam's score is the score of ITS path, recomputed from scratch (the LASS bug would fail)."""
    V, F = 3, 4
    pb, pd = toy_prior(4, V), toy_prior(5, V)
    table = torch.randn(F, V, V, generator=torch.Generator().manual_seed(6))
    res = search((pb, pd), TableLik(table), dummy_ctx(2 * 5, F), F, 2, 5, mode="beam", topk=V)
    with torch.no_grad():
        prior = path_logprob(pb, res.codes_b) + path_logprob(pd, res.codes_d)
    lik = table[torch.arange(F)[None], res.codes_b[:, 0], res.codes_d[:, 0]].sum(-1)
    assert torch.allclose(res.score, prior + lik, atol=1e-4)
    assert torch.allclose(res.lik, lik, atol=1e-4)


def peaked_prior(seed, code, V=3):
    """A prior whose every step puts almost all mass on `code`: the best path is unique and obvious."""
    p = toy_prior(seed, V)
    with torch.no_grad():
        p.heads[0].weight.zero_()
        p.heads[0].bias.fill_(-8.0)
        p.heads[0].bias[code] = 8.0
    return p


def test_narrow_beam_finds_the_unique_best_path():
    V, F = 3, 4
    pb, pd = peaked_prior(0, 2, V), peaked_prior(1, 1, V)
    table = 0.1 * torch.randn(F, V, V, generator=torch.Generator().manual_seed(0))
    best, b, d = exhaustive(pb, pd, table, V, F)
    res = search((pb, pd), TableLik(table), dummy_ctx(2, F), F, 1, 2, mode="beam", topk=2)
    assert torch.equal(res.codes_b[0], b) and torch.equal(res.codes_d[0], d)
    assert torch.all(b == 2) and torch.all(d == 1)
    assert abs(float(res.score[0]) - best) < 1e-4


class PerfectLik(Likelihood):
    """log L = 0 where (i, j) is the mixture's code pair, -50 elsewhere: the mixture code is i * V + j."""
    name = "perfect"

    def __init__(self, V):
        self.V = V

    def score(self, ctx, level, t, cand_b, cand_d, codes_b, codes_d):
        m = ctx.codes[:, level, t]
        hit = (cand_b[:, :, None] * self.V + cand_d[:, None, :]) == m[:, None, None]
        return torch.where(hit, 0.0, -50.0)


def test_perfect_likelihood_recovers_both_sequences_over_levels():
    V, K, F = 8, 2, 12
    pb, pd = toy_prior(7, V, K), toy_prior(8, V, K)
    g = torch.Generator().manual_seed(1)
    b, d = torch.randint(0, V, (K, F), generator=g), torch.randint(0, V, (K, F), generator=g)
    mix = b * V + d
    for mode, per in (("beam", 3), ("sample", 4)):
        ctx = MixContext(mix[None].expand(per, -1, -1).clone(), torch.zeros(per, 1, F))
        res = search((pb, pd), PerfectLik(V), ctx, F, 1, per, mode=mode, topk=V, seed=0)
        assert torch.equal(res.codes_b[0], b) and torch.equal(res.codes_d[0], d), mode
        assert res.lik[0] == 0
        if mode == "sample":                                       # every chain: the wrong pairs weigh e^-50
            assert torch.all(res.codes_b == b) and torch.all(res.codes_d == d)
