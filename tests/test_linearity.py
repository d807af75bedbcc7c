"""LQ-VAE linearity loss: zero for identical inputs where q is idempotent (one level, no factorisation; the
VAE), gradient reaches the encoder, EMA untouched by default. Hand-computed cases: test_codec_v2.py."""
import pytest
import torch

from latentmix.codec.linearity import linearity_loss
from latentmix.codec.model import Codec

QUANTS = {"rvq": {"type": "rvq", "num_codebooks": 3, "codebook_size": 16},
          "vq": {"type": "vq", "codebook_size": 16},
          "rvq_factorised": {"type": "rvq", "num_codebooks": 3, "codebook_size": 16, "codebook_dim": 4,
                             "l2_normalize": True},
          "vae": {"type": "vae"}}


def make(q):
    torch.manual_seed(0)
    return Codec(base_channels=4, strides=[2, 4], latent_dim=8, dilations=[1], quantizer=q)


@pytest.mark.parametrize("name", ["vq", "vae"])
def test_zero_for_identical_inputs(name):
    m = make(QUANTS[name]).train()
    m(torch.randn(4, 1, 640) * 0.3)  # initialise codebooks
    a = torch.randn(1, 1, 640) * 0.3
    loss = linearity_loss(m, a.repeat(2, 1, 1))
    assert float(loss["lin/loss"]) < 1e-10 and float(loss["lin/commitment"]) < 1e-10


@pytest.mark.parametrize("name", list(QUANTS))
def test_gradient_reaches_encoder(name):
    m = make(QUANTS[name]).train()
    loss = sum(linearity_loss(m, torch.randn(4, 1, 640) * 0.3, random_alpha=True).values())
    assert float(loss.detach()) > 0
    loss.backward()
    g = m.encoder[0].conv.parametrizations.weight.original1.grad
    assert g is not None and g.abs().sum() > 0


def test_ema_codebooks_untouched_unless_asked():
    m = make(QUANTS["rvq"]).train()
    m(torch.randn(4, 1, 640) * 0.3)
    snap = {k: v.clone() for k, v in m.state_dict().items() if "codebook" in k or "ema_" in k}
    linearity_loss(m, torch.randn(4, 1, 640) * 0.3)
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in snap.items())
    linearity_loss(m, torch.randn(4, 1, 640) * 0.3, update_codebooks=True)
    assert any(not torch.equal(v, m.state_dict()[k]) for k, v in snap.items())
