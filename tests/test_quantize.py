"""Quantizers: straight-through, codes <-> z_q, EMA/k-means in fp32, dead-code reset, dropout, SOM, VAE."""
import torch

from latentmix.codec.quantize import (ResidualVectorQuantizer, SOMQuantizer, VAEBottleneck, VectorQuantizer,
                                      build_quantizer, kmeans, no_codebook_update)
from latentmix.codec.quantize.som import neighbourhood


def test_straight_through_gradient():
    torch.manual_seed(0)
    q = VectorQuantizer(8, 32, kmeans_init=False).train()
    z = torch.randn(2, 8, 10, requires_grad=True)
    out = q(z)
    out.z_q.sum().backward()
    assert torch.allclose(z.grad, torch.ones_like(z))
    assert out.codes.shape == (2, 1, 10) and out.codes.dtype == torch.int64
    assert set(out.losses) == {"vq/commitment", "vq/codebook"}
    assert {"vq/usage_l0", "vq/perplexity_l0", "vq/dead_fraction_l0"} <= set(out.stats)


def test_rvq_codes_to_from_codes_equal_z_q():
    torch.manual_seed(0)
    q = ResidualVectorQuantizer(8, num_codebooks=4, codebook_size=16, codebook_dim=4, l2_normalize=True)
    q.train()(torch.randn(4, 8, 20))  # k-means init + EMA step
    q.eval()
    z = torch.randn(2, 8, 12)
    out = q(z)
    assert torch.allclose(q.from_codes(out.codes), out.z_q, atol=1e-6)
    assert torch.equal(q.encode(z), out.codes)
    assert torch.allclose(q.decode(out.codes[:, :2]), q(z, num_codebooks=2).z_q, atol=1e-6)


def test_quantizer_dropout_respects_num_codebooks():
    torch.manual_seed(0)
    q = ResidualVectorQuantizer(8, num_codebooks=6, codebook_size=16, quantizer_dropout=1.0).train()
    seen = set()
    for _ in range(20):
        out = q(torch.randn(2, 8, 5))
        k = out.codes.shape[1]
        assert 1 <= k <= 6 and int(out.stats["vq/num_codebooks"]) == k
        seen.add(k)
    assert len(seen) > 2
    assert q(torch.randn(2, 8, 5), num_codebooks=3).codes.shape == (2, 3, 5)
    q.eval()
    assert q(torch.randn(2, 8, 5)).codes.shape[1] == 6  # no dropout at inference
    codes = q.encode(torch.randn(2, 8, 5), 2)
    assert codes.shape == (2, 2, 5) and q.decode(codes).shape == (2, 8, 5)


def test_dead_codes_are_revived():
    torch.manual_seed(0)
    q = VectorQuantizer(4, 16, kmeans_init=False, decay=0.5, dead_threshold=0.5).train()
    with torch.no_grad():
        q.codebook[8:] = 100.0  # far from the data: never chosen
    data = torch.randn(4, 4, 32)
    for _ in range(3):
        out = q(data)
    assert q.codebook.norm(dim=1).max() < 10  # every far code was replaced by a data vector
    assert float(out.stats["vq/dead_fraction_l0"]) < 1.0


def test_ema_and_kmeans_run_in_float32_under_autocast():
    torch.manual_seed(0)
    q = VectorQuantizer(8, 16).train()
    assert q.initialized.item() == 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = q(torch.randn(2, 8, 40).bfloat16())
    assert q.initialized.item() == 1
    assert q.codebook.dtype == q.ema_sum.dtype == q.ema_count.dtype == torch.float32
    assert out.z_q.dtype == torch.float32


def test_kmeans_recovers_separated_clusters():
    torch.manual_seed(0)
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = (centers[:, None] + 0.1 * torch.randn(3, 50, 2)).reshape(-1, 2)
    found = None
    for _ in range(5):  # Lloyd from random starts can merge clusters; one of a few restarts suffices
        cent, counts = kmeans(x, 3, 20)
        if (torch.cdist(centers, cent).min(1).values < 0.5).all():
            found = cent
    assert found is not None


def test_no_update_context_freezes_codebooks():
    torch.manual_seed(0)
    q = ResidualVectorQuantizer(8, 2, 16).train()
    q(torch.randn(2, 8, 30))
    before = [lvl.codebook.clone() for lvl in q.levels]
    with no_codebook_update(q):
        q(torch.randn(2, 8, 30))
    assert all(torch.equal(b, lvl.codebook) for b, lvl in zip(before, q.levels))
    q(torch.randn(2, 8, 30), num_codebooks=2)
    assert not torch.equal(before[0], q.levels[0].codebook)


def test_gradient_codebook_mode_trains_the_codebook():
    q = VectorQuantizer(8, 16, codebook_dim=4, l2_normalize=True, ema=False, kmeans_init=False).train()
    assert isinstance(q.codebook, torch.nn.Parameter)
    out = q(torch.randn(2, 8, 10))
    out.losses["vq/codebook"].backward()
    assert q.codebook.grad is not None and q.codebook.grad.abs().sum() > 0


def test_som_update_spreads_to_grid_neighbours():
    n = neighbourhood((4, 4), 1, "box")
    assert n.shape == (16, 16) and n[0].sum() == 4 and n[5].sum() == 9
    torch.manual_seed(0)
    q = SOMQuantizer(2, 16, som_grid=(4, 4), som_radius=1.0, som_kernel="box", kmeans_init=False,
                     decay=0.5, dead_threshold=0.0).train()
    with torch.no_grad():
        q.codebook.copy_(torch.randn(16, 2) * 5)
        q.ema_sum.copy_(q.codebook)
    target = q.codebook[5].clone()
    before = q.codebook.clone()
    q(target.view(1, 2, 1).repeat(1, 1, 8) + 0.01)  # all vectors pick code 5
    moved = (q.codebook - before).norm(dim=1) > 1e-4
    assert moved[[0, 1, 2, 4, 6, 8, 9, 10]].all()  # grid neighbours of (1, 1) move too
    assert build_quantizer(8, {"type": "som", "num_codebooks": 2, "codebook_size": 16}).levels[0].som_grid == (4, 4)


def test_vae_bottleneck():
    torch.manual_seed(0)
    v = VAEBottleneck(8).train()
    out = v(torch.randn(2, 8, 10))
    assert out.codes is None and out.losses["vae/kl"] >= 0
    v.eval()
    z = torch.randn(2, 8, 10)
    assert torch.equal(v(z).z_q, v(z).z_q)
