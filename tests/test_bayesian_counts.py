"""LASS's count likelihood: the sparse table equals a dense one on a small codebook, counting is resumable, and
every triplet, seen or not, gets a finite score."""
import torch

from latentmix.separation.bayesian.counts import CodeCounts
from latentmix.separation.bayesian.likelihood import CountLikelihood, MixContext


def codes(seed, V=6, K=2, F=40):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, V, (K, F), generator=g) for _ in range(3)]


def dense(triples, V, K):
    c = torch.zeros(K, V, V, V, dtype=torch.long)
    for b, d, m in triples:
        for lv in range(K):
            for i, j, k in zip(b[lv], d[lv], m[lv]):
                c[lv, i, j, k] += 1
                c[lv, j, i, k] += 1
    return c


def test_sparse_counts_equal_dense_counts():
    V, K = 6, 2
    triples = [codes(s, V, K) for s in range(3)]
    sp = CodeCounts(V, K)
    for t in triples:
        sp.add(*t)
    dn = dense(triples, V, K)
    i, j, k = torch.meshgrid(torch.arange(V), torch.arange(V), torch.arange(V), indexing="ij")
    for lv in range(K):
        assert torch.equal(sp.count(lv, i, j, k), dn[lv])
        # additive smoothing against the dense formula, every (i, j) pair x every m
        b, d = torch.arange(V)[None].expand(V, V), torch.arange(V)[None].expand(V, V)
        m = torch.arange(V)
        lp = sp.log_prob(lv, b, d, m, "additive", 0.5)                        # (V=m rows, V, V)
        ref = ((dn[lv] + 0.5) / (dn[lv].sum(-1, keepdim=True) + 0.5 * V)).log().permute(2, 0, 1)
        assert torch.allclose(lp, ref.float(), atol=1e-5)
        # backoff smoothing is a distribution over m for every pair
        lb = sp.log_prob(lv, b, d, m, "backoff", 1.0)
        assert torch.allclose(lb.exp().sum(0), torch.ones(V, V), atol=1e-5)


def test_smoothing_scores_every_triplet_finitely_and_empty_counts_work():
    V, K = 6, 1
    sp = CodeCounts(V, K)
    b, d, m = codes(0, V, K, F=5)
    sp.add(b, d, m)
    allb = torch.arange(V)[None].expand(V, V)
    for smoothing in ("additive", "backoff"):
        lp = sp.log_prob(0, allb, allb, torch.arange(V), smoothing)
        assert torch.isfinite(lp).all()
        assert torch.isfinite(CodeCounts(V, K).log_prob(0, allb, allb, torch.arange(V), smoothing)).all()
    lik = CountLikelihood(sp, lam=3.0)
    ctx = MixContext(torch.full((2, 1, 4), V - 1), torch.zeros(2, 1, 4))
    s = lik.score(ctx, 0, 3, torch.tensor([[0, 1], [2, 3]]), torch.tensor([[4, 5], [5, 5]]), None, None)
    assert s.shape == (2, 2, 2) and torch.isfinite(s).all()


def test_counting_is_resumable_and_files_round_trip(tmp_path):
    V, K = 6, 2
    pairs = [(f"p{s}", *[torch.randn(1, 3200) for _ in range(2)]) for s in range(3)]

    class FakeCodec:                                   # codes from the signs of the audio, deterministic
        def encode_chunked(self, x, n):
            f = x[:, 0, :x.shape[-1] // 320 * 320].view(x.shape[0], -1, 320)
            return torch.stack([(f[..., lv::7].sum(-1) > 0).long() * 3 + lv for lv in range(n)], 1)

    path = tmp_path / "c.safetensors"
    one = CodeCounts(V, K, "h")
    assert one.update(FakeCodec(), pairs[:2], save_to=path) == 2
    resumed = CodeCounts.load(path)
    assert resumed.update(FakeCodec(), pairs, save_to=path) == 1           # the first two are skipped
    whole = CodeCounts(V, K, "h")
    whole.update(FakeCodec(), pairs)
    back = CodeCounts.load(path)
    assert back.seen == ["p0", "p1", "p2"] and back.codec_hash == "h"
    for lv in range(K):
        assert torch.equal(back.keys[lv], whole.keys[lv]) and torch.equal(back.counts[lv], whole.counts[lv])
