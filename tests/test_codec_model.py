"""Codec model: shapes, bitrate, strict save/load, chunked == whole, causality, a 2-step adversarial run."""
import pytest
import torch

from latentmix.checkpoint import save_tensors
from latentmix.codec.discriminators import (CodecDiscriminator, discriminator_loss, feature_matching_loss,
                                            generator_adv_loss)
from latentmix.codec.losses import reconstruction_losses
from latentmix.codec.model import Codec
from latentmix.config import load_config
from latentmix.errors import ModelFileError
from latentmix.train.tasks.codec import CodecTask

TINY = dict(base_channels=4, strides=[2, 4], latent_dim=8, dilations=[1, 3],
            quantizer={"type": "rvq", "num_codebooks": 4, "codebook_size": 16, "quantizer_dropout": 0.5})


def tiny(**kw):
    torch.manual_seed(0)
    return Codec(**{**TINY, **kw})


def test_shapes_and_bitrate():
    m = tiny().eval()
    assert m.hop_length == 8 and m.num_codebooks == 4 and m.codebook_size == 16
    assert m.bitrate(2) == pytest.approx(22050 / 8 * 2 * 4)
    x = torch.randn(2, 1, 1001) * 0.1
    out = m(x)
    assert out["audio"].shape == x.shape and out["codes"].shape == (2, 4, 126)
    codes = m.encode(x, 3)
    assert codes.shape == (2, 3, 126) and m.decode(codes).shape == (2, 1, 1008)
    # everything the decoder sees goes through the codes: forward == decode(encode)
    assert torch.allclose(out["audio"], m.decode(out["codes"])[..., :1001], atol=1e-6)
    assert torch.allclose(m.from_codes(out["codes"]), out["z_q"], atol=1e-6)
    assert m.receptive_field > m.hop_length


def test_cpu_preset_builds():
    cfg = load_config("cpu_small", "codec")
    m = Codec.from_config(cfg["model"])
    assert m.hop_length == 320 and m.bitrate(9) >= 6000


def test_save_load_round_trip_exact(tmp_path):
    m = tiny().train()
    m(torch.randn(4, 1, 800))  # k-means init + EMA so buffers are non-trivial
    m.eval()
    m.save(tmp_path / "c.safetensors", {"note": "test"})
    m2 = Codec.load(tmp_path / "c.safetensors")
    x = torch.randn(1, 1, 900)
    assert torch.equal(m.encode(x), m2.encode(x))
    assert torch.equal(m.decode(m.encode(x)), m2.decode(m2.encode(x)))
    assert m2.header["provenance"] == {"note": "test"} and m2.config == m.config


def test_load_is_strict(tmp_path):
    m = tiny()
    save_tensors(tmp_path / "sep.safetensors", m.state_dict(), {"kind": "separator", "format_version": 1,
                                                                "config": m.config})
    with pytest.raises(ModelFileError, match="expected 'codec'"):
        Codec.load(tmp_path / "sep.safetensors")
    m.save(tmp_path / "ok.safetensors")
    data = (tmp_path / "ok.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError):
        Codec.load(tmp_path / "cut.safetensors")
    other = tiny(latent_dim=12)
    save_tensors(tmp_path / "bad.safetensors", other.state_dict(), {"kind": "codec", "format_version": 1,
                                                                    "config": m.config})
    with pytest.raises(ModelFileError):
        Codec.load(tmp_path / "bad.safetensors")


@pytest.mark.parametrize("causal", [False, True])
def test_chunked_equals_whole(causal):
    m = tiny(causal=causal).eval()
    x = torch.randn(1, 1, 3001) * 0.3
    with torch.inference_mode():
        whole = m.encode(x)
        for chunk in (5, 17, 1000):
            assert torch.equal(m.encode_chunked(x, None, chunk_frames=chunk), whole)
        dec = m.decode(whole)
        assert torch.allclose(m.decode_chunked(whole, chunk_frames=7), dec, atol=1e-5)


def test_causal_codes_ignore_the_future():
    m = tiny(causal=True).eval()
    x = torch.randn(1, 1, 800)
    y = x.clone()
    y[..., 400:] = torch.randn(1, 1, 400)
    assert torch.equal(m.encode(x)[..., :50], m.encode(y)[..., :50])


def test_two_step_adversarial_training():
    torch.manual_seed(0)
    m = tiny().train()
    disc = CodecDiscriminator(n_ffts=(256, 128), periods=(2, 3), channels=4)
    opt_g = torch.optim.Adam(m.parameters(), 1e-3)
    opt_d = torch.optim.Adam(disc.parameters(), 1e-3)
    x = torch.randn(2, 1, 2048) * 0.2
    for _ in range(2):
        opt_g.zero_grad(set_to_none=True)
        out = m(x)
        # discriminator step: fake is detached, so the generator receives nothing
        opt_d.zero_grad()
        d_loss = discriminator_loss(disc(x), disc(out["audio"].detach()))
        d_loss.backward()
        assert all(p.grad is None for p in m.parameters())
        opt_d.step()
        # generator step: discriminator gradients are cleared and never applied
        opt_g.zero_grad()
        fake, real = disc(out["audio"]), disc(x)
        rec = reconstruction_losses(out["audio"], x)
        g_loss = sum(rec.values()) + sum(out["losses"].values()) + generator_adv_loss(fake) \
            + feature_matching_loss(real, fake)
        before = [p.detach().clone() for p in disc.parameters()]
        g_loss.backward()
        opt_g.step()
        disc.zero_grad(set_to_none=True)
        assert all(torch.equal(b, p) for b, p in zip(before, disc.parameters()))
        assert torch.isfinite(g_loss) and torch.isfinite(d_loss)


def test_codec_task_steps_without_data():
    cfg = {"model": TINY, "train": {"weights": {"mel": 15.0, "stft": 1.0, "l1": 1.0, "commitment": 0.25,
                                                "linearity": 1.0, "adversarial": 1.0, "feature": 2.0},
                                    "linearity": True, "adversarial": True}}
    task = CodecTask(cfg, "/nonexistent", seed=0)
    m = task.build_model().train()
    disc = task.build_discriminator()
    x = torch.randn(2, 1, 2048) * 0.2
    res = task.training_step(m, x, 0, disc)
    assert {"loss", "rec/mel", "vq/commitment", "lin/loss", "adv/gen", "adv/feature"} <= set(res)
    res["loss"].backward()
    assert all(p.grad is None for p in disc.parameters())
    d = task.discriminator_step(disc, res["out"], x)
    d["loss"].backward()
    assert all(p.grad is None or p.grad.abs().sum() == p.grad.abs().sum() for p in m.parameters())
