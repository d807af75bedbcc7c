"""Codec v2: the spectral (STFT/ConvNeXt/iSTFT) codec, the no-churn dead-code rule, accumulated k-means,
the faithful LQ-VAE loss (hand-computed) and the level-0 code-sum agreement."""
import pytest
import torch

from latentmix.audio import overlap_add
from latentmix.codec.linearity import code_sum_agreement, linearity_loss
from latentmix.codec.model import Codec
from latentmix.codec.quantize import ResidualVectorQuantizer, VectorQuantizer
from latentmix.config import load_config
from latentmix.errors import ConfigError

Q = {"type": "rvq", "num_codebooks": 3, "codebook_size": 16, "codebook_dim": 4, "l2_normalize": True}


def spectral(**kw):
    torch.manual_seed(0)
    cfg = dict(strides=[32], latent_dim=8, quantizer=Q, architecture="spectral",
               spectral={"dim": 16, "encoder_depth": 1, "decoder_depth": 2})
    cfg.update(kw)
    return Codec(**cfg)


def test_spectral_shapes_round_trip_and_save_load(tmp_path):
    m = spectral().eval()
    assert m.hop_length == 32 and m.config["spectral"]["n_fft"] == 128
    x = torch.randn(2, 1, 1000) * 0.1
    out = m(x)
    assert out["audio"].shape == x.shape and out["codes"].shape == (2, 3, 32)
    assert torch.allclose(out["audio"], m.decode(out["codes"])[..., :1000], atol=1e-5)
    m.save(tmp_path / "c.safetensors")
    m2 = Codec.load(tmp_path / "c.safetensors")
    assert torch.equal(m2.encode(x), m.encode(x))


def test_stft_analysis_and_synthesis_are_exact_inverses():
    """The decoder's iSTFT undoes the encoder's framing sample for sample (frame alignment is right)."""
    m = spectral().eval()
    x = torch.randn(1, 1, 32 * 40)
    pairs = m.encoder.spectrum(x)                              # compressed, (B, C, F, bins, 2)
    mag = pairs.square().sum(-1, keepdim=True).sqrt()
    spec = torch.view_as_complex((pairs * (mag + 1e-12).pow(1 / 0.3 - 1)).contiguous())
    y = m.decoder.istft(spec)
    assert y.shape == x.shape and torch.allclose(y, x, atol=1e-4)


def test_overlap_add_matches_fold():
    frames = torch.randn(2, 9, 12)
    fast = overlap_add(frames, 4)
    ref = torch.nn.functional.fold(frames.transpose(1, 2), (1, 8 * 4 + 12), (1, 12), stride=(1, 4)).view(2, -1)
    assert torch.allclose(fast, ref, atol=1e-6)


def test_spectral_chunked_equals_whole():
    m = spectral().eval()
    x = torch.randn(1, 1, 32 * 300) * 0.3
    with torch.inference_mode():
        whole = m.encode(x)
        assert torch.equal(m.encode_chunked(x, None, chunk_frames=37), whole)
        assert torch.allclose(m.decode_chunked(whole, chunk_frames=41), m.decode(whole), atol=1e-5)


def test_v2_preset_builds_and_bad_options_fail():
    cfg = load_config("cpu_v2", "codec")
    m = Codec.from_config(cfg["model"])
    assert m.hop_length == 320 and m.bitrate(9) == pytest.approx(22050 / 320 * 90)
    with pytest.raises(ConfigError, match="spectral"):
        spectral(spectral={"dim": 16, "depth": 3})
    with pytest.raises(ConfigError, match="architecture"):
        spectral(architecture="transformer")


def test_stationary_input_resets_nothing_after_warm_up():
    torch.manual_seed(0)
    q = VectorQuantizer(4, 16, decay=0.9, kmeans_min_vectors=0).train()
    centres = torch.randn(16, 4) * 3
    for step in range(60):
        if step == 30:
            q.resets = 0
        z = (centres[torch.randint(0, 16, (256,))] + 0.05 * torch.randn(256, 4)).T[None]
        q(z)
    assert q.resets == 0


def test_old_absolute_rule_churned_and_relative_rule_is_world_size_free():
    q = VectorQuantizer(4, 1024, dead_fraction=0.1)
    # 2 ranks x 256 vectors or 1 rank x 512: the same threshold (the counts are all-reduced sums)
    assert q._threshold(512) == pytest.approx(0.1 * 512 / 1024)
    old = VectorQuantizer(4, 1024, dead_threshold=2.0)
    assert old._threshold(512) == 2.0   # > the 0.5 vectors a code gets per step: every code looks dead


def test_kmeans_waits_for_enough_vectors_level_by_level():
    torch.manual_seed(0)
    q = ResidualVectorQuantizer(4, 2, 8, quantizer_dropout=0.0, kmeans_min_vectors=40).train()
    z = torch.randn(2, 4, 10)                                   # 20 vectors a step
    out = q(z)
    assert q.levels[0].initialized.item() == 0 and torch.equal(out.z_q, torch.zeros_like(z))
    q(z)                                                        # 40 vectors: level 0 initialises
    assert q.levels[0].initialized.item() == 1 and q.levels[1].initialized.item() == 0
    q(z), q(z)
    assert q.levels[1].initialized.item() == 1


class _Identity:
    """A stand-in codec: identity encoder, one 1-d VQ level with codes {0, 1, 4}: hand-computable."""

    is_continuous = False

    def __init__(self):
        self.quantizer = ResidualVectorQuantizer(1, 1, 3, quantizer_dropout=0.0, ema=True, kmeans_init=False)
        self.quantizer.levels[0].codebook.copy_(torch.tensor([[0.0], [1.0], [4.0]]))
        self.quantizer.eval()
        self.encoder = torch.nn.Identity()

    def pad(self, x):
        return x

    def modules(self):
        return self.quantizer.modules()

    def encode(self, x, num_codebooks=None):
        return self.quantizer.encode(x, num_codebooks)


def test_linearity_loss_hand_computed():
    c = _Identity()
    # a = 0.4 -> code 0, b = 5.0 -> code 4; m = (0 + 4) / 2 = 2 -> q(m) = 1;  mix = 2.7 -> q = 4
    wav = torch.tensor([[[0.4]], [[5.0]]])
    out = linearity_loss(c, wav)
    assert float(out["lin/loss"]) == pytest.approx((1.0 - 4.0) ** 2)
    assert float(out["lin/commitment"]) == pytest.approx((2.0 - 1.0) ** 2)
    # b = 4.4 -> code 4; mix = 2.4 -> code 1 = q(m): no mismatch
    assert float(linearity_loss(c, torch.tensor([[[0.4]], [[4.4]]]))["lin/loss"]) == 0.0
    with pytest.raises(ConfigError, match="even batch"):
        linearity_loss(c, torch.tensor([[[0.4]]]))


def test_code_sum_agreement_hand_computed():
    c = _Identity()
    a = torch.tensor([[[0.4, 0.4]]])
    b = torch.tensor([[[4.4, 5.0]]])          # frame 0 agrees (q 1 = q 1), frame 1 does not (q 1 vs 4)
    assert code_sum_agreement(c, a, b) == pytest.approx(0.5)


def test_linearity_gradient_reaches_the_spectral_encoder():
    m = spectral().train()
    m(torch.randn(4, 1, 640) * 0.3)
    out = linearity_loss(m, torch.randn(4, 1, 640) * 0.3)
    (out["lin/loss"] + out["lin/commitment"]).backward()
    assert m.encoder.embed.weight.grad is not None and m.encoder.embed.weight.grad.abs().sum() > 0


def test_code_sum_table_matches_brute_force_and_is_cached(tmp_path):
    from latentmix.codec.linearity import code_sum_table
    m = spectral(quantizer={**Q, "codebook_size": 12}).eval()
    level = m.quantizer.levels[0]
    table = code_sum_table(m, chunk=5, cache_dir=tmp_path)
    e = level.codebook
    for i in range(12):
        for j in range(12):
            assert int(table[i, j]) == int(level.nearest((0.5 * e[i] + 0.5 * e[j])[None])[0])
    assert len(list(tmp_path.glob("code_sum_*.npy"))) == 1
    assert torch.equal(code_sum_table(m, cache_dir=tmp_path), table)


def test_magnitude_encoder_input_gives_phase_free_codes_and_keeps_old_configs(tmp_path):
    x = torch.randn(1, 1, 2048) * 0.1
    mag = spectral(spectral={"dim": 16, "encoder_depth": 1, "decoder_depth": 2, "encoder_input": "magnitude"}).eval()
    assert torch.equal(mag.encode(x), mag.encode(-x))             # polarity (phase) does not reach the codes
    assert torch.allclose(mag.encoder(x), mag.encoder(-x), atol=1e-6)
    cpx = spectral().eval()
    assert not torch.allclose(cpx.encoder(x), cpx.encoder(-x), atol=1e-3)
    assert "encoder_input" not in cpx.config["spectral"]           # the default is not written: old hashes hold
    mag.save(tmp_path / "m.safetensors")
    assert torch.equal(Codec.load(tmp_path / "m.safetensors").encode(x), mag.encode(x))
    assert mag(x)["audio"].shape == x.shape
    with pytest.raises(ConfigError, match="encoder_input"):
        spectral(spectral={"dim": 16, "encoder_depth": 1, "decoder_depth": 2, "encoder_input": "phase"})
