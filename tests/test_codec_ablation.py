"""Seed 002's codec ideas as codec v2 options (issue #23): every ablation preset is cpu_v2 plus its one option, trains
2 steps through the one loop and round-trips; the SOM's map, the energy bottleneck's gradient and context, the
multiresolution blocks' reach, the alternating adversary, the downsampled loss and the benchmark's verdict rule."""
import copy
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from latentmix.codec.discriminators import CodecDiscriminator, schedule_part
from latentmix.codec.losses import downsample, reconstruction_losses
from latentmix.codec.model import Codec
from latentmix.codec.quantize import EnergyBottleneck, SOMQuantizer, build_quantizer
from latentmix.codec.quantize.som import ordered_codebook
from latentmix.config import load_config, parse_value
from latentmix.errors import ConfigError
from latentmix.evaluation.codec import codec_speed
from latentmix.train.loop import train
from latentmix.train.tasks.codec import CodecTask

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "codec_ablation.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_codec_ablation", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _set(cfg: dict, dotted: str) -> None:
    key, value = dotted.split("=", 1)
    *path, last = key.split(".")
    node = cfg
    for p in path:
        node = node.setdefault(p, {})
    node[last] = parse_value(value)


def test_every_preset_is_v2_plus_its_option(bench):
    base = load_config("cpu_v2", "codec")
    assert [r[0] for r in bench.ROWS] == ["v2", "som_seed", "som", "energy", "multires", "adv", "adv_alternate",
                                          "down"]
    for _name, preset, _, _, overrides in bench.ROWS:
        want = copy.deepcopy(base)
        if overrides is None:   # the energy bottleneck replaces the whole quantizer block
            want["model"]["quantizer"] = dict(bench.ENERGY_QUANTIZER)
        for o in overrides or []:
            _set(want, o)
        assert load_config(preset, "codec") == want, preset


TINY = ["model.spectral.dim=16", "model.spectral.encoder_depth=1", "model.spectral.decoder_depth=2",
        "model.spectral.mult=2",
        "train.batch_size=2", "train.segment_seconds=0.5", "train.steps=2", "train.warmup_steps=0",
        "train.val_items=1", "train.val_seconds=1.0", "train.log_every=1", "train.ckpt_every=0",
        "train.tensorboard=false"]
TINY_Q = {"num_codebooks": 2, "codebook_size": 16, "kmeans_min_vectors": 0, "som_grid": [4, 4],
          "som_radius_steps": 2, "energy_memories": 8, "energy_heads": 1, "energy_head_dim": 4, "energy_window": 2,
          "energy_steps": 3}


def _tiny(preset: str) -> dict:
    cfg = load_config(preset, "codec")
    for o in TINY:
        _set(cfg, o)
    q = cfg["model"]["quantizer"]
    q.update({k: v for k, v in TINY_Q.items() if k in q})
    return cfg


@pytest.mark.parametrize("preset", ["cpu_v2_som_seed", "cpu_v2_som", "cpu_v2_energy", "cpu_v2_multires",
                                    "cpu_v2_adv_alternate", "cpu_v2_down"])
def test_option_trains_two_steps_in_the_loop_and_round_trips(preset, tiny_dataset, tmp_path):
    cfg = _tiny(preset)
    res = train("codec", cfg, tiny_dataset, tmp_path / "run", seed=0, quiet=True)
    assert res["step"] == 2 and not res["interrupted"]
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in logged if r["kind"] == "train"]
    assert len(train_rows) == 2 and all(torch.isfinite(torch.tensor(r["loss"])) for r in train_rows)
    keys = set().union(*train_rows)
    expect = {"cpu_v2_down": "rec/down", "cpu_v2_energy": "energy/update", "cpu_v2_adv_alternate": "disc/loss",
              "cpu_v2_som": "vq/usage_l0", "cpu_v2_som_seed": "vq/usage_l0", "cpu_v2_multires": "vq/usage_l0"}
    assert expect[preset] in keys
    m = Codec.load(tmp_path / "run" / "model.safetensors")
    x = torch.randn(1, 1, 320 * 12) * 0.1
    with torch.inference_mode():
        if m.is_continuous:
            y = m.decode_latents(m.encode_latents(x))
            assert torch.allclose(y[..., :x.shape[-1]], m(x)["audio"], atol=1e-5)
        else:
            codes = m.encode(x)
            assert codes.shape == (1, 2, 12) and codes.dtype == torch.int64
            assert torch.allclose(m.decode(codes)[..., :x.shape[-1]], m(x)["audio"], atol=1e-5)
    assert torch.isfinite(y if m.is_continuous else m.decode(codes)).all()


# ------------------------------------------------------------------ SOM
def test_shared_map_is_one_codebook_saved_once(tmp_path):
    q = build_quantizer(8, {"type": "som", "num_codebooks": 3, "codebook_size": 16, "codebook_dim": 4,
                            "shared_codebook": True, "kmeans_min_vectors": 0}).train()
    q(torch.randn(2, 8, 30))
    keys = set(q.state_dict())
    assert "levels.0.codebook" in keys and not any(k.startswith(("levels.1.codebook", "levels.2.ema"))
                                                   for k in keys)
    assert q.levels[2].codebook is q.levels[0].codebook
    z = torch.randn(1, 8, 5)
    codes = q.eval()(z).codes
    assert torch.allclose(q.decode(codes), q.levels[0].decode(codes[:, 0]) + q.levels[1].decode(codes[:, 1])
                          + q.levels[2].decode(codes[:, 2]), atol=1e-6)


def test_first_som_configs_still_build_the_same_model():
    """A model file of the first SOM (Gaussian radius 1, one map per level) names no new tensor: it loads."""
    q = build_quantizer(8, {"type": "som", "num_codebooks": 2, "codebook_size": 16, "som_radius": 1.0})
    assert sorted(q.state_dict()) == ["levels.0.codebook", "levels.0.ema_count", "levels.0.ema_sum",
                                      "levels.0.initialized", "levels.1.codebook", "levels.1.ema_count",
                                      "levels.1.ema_sum", "levels.1.initialized"]
    assert q.levels[0].radius() == 1.0 and q.levels[0].som_init == "kmeans"


def test_radius_shrinks_by_steps_and_bad_options_fail():
    q = SOMQuantizer(2, 16, som_grid=(4, 4), som_kernel="box", som_radius=2, som_radius_end=0,
                     som_radius_steps=4, kmeans_init=False).train()
    seen = []
    for _ in range(6):
        seen.append(q.radius())
        q(torch.randn(1, 2, 8))
    assert seen == [2.0, 1.5, 1.0, 0.5, 0.0, 0.0]
    assert float(q.state_dict()["som_updates"]) == 6.0
    assert q.neighbours().sum() == 16          # radius 0: every code only itself
    with pytest.raises(ConfigError, match="som_init"):
        SOMQuantizer(2, 16, som_init="random")
    with pytest.raises(ConfigError, match="som_grid"):
        SOMQuantizer(2, 16, som_grid=(3, 4))


def _grid_ratio(codebook: torch.Tensor, grid=(8, 8)) -> float:
    """Mean distance between 4-neighbours on the grid / mean distance between all pairs of codes."""
    h, w = grid
    c = codebook.view(h, w, -1)
    near = torch.cat([(c[1:] - c[:-1]).norm(dim=-1).flatten(), (c[:, 1:] - c[:, :-1]).norm(dim=-1).flatten()])
    return float(near.mean() / torch.cdist(codebook, codebook).mean())


def test_ordered_start_puts_data_neighbours_on_grid_neighbours():
    torch.manual_seed(0)
    plane = torch.randn(8, 2)
    x = torch.rand(4000, 2) @ plane.t() * 3 + 0.05 * torch.randn(4000, 8)
    ordered, counts = ordered_codebook(x, (8, 8), iters=10, radius_end=1.0)
    assert counts.sum() > 0 and _grid_ratio(ordered) < 0.35
    q = SOMQuantizer(8, 64, som_grid=(8, 8), kmeans_iters=10)           # k-means start: no order
    kmeans_book, _ = q.initial_codebook(x)
    assert _grid_ratio(kmeans_book) > 0.7


def test_grid_neighbours_decode_to_closer_audio_than_random_pairs():
    """A tiny spectral codec with an ordered 8 x 8 SOM, fitted 40 steps on tones: decoding a grid neighbour's
    code changes the log-mel spectrum less than decoding a random other code; a plain VQ's grid is no map."""
    from latentmix.metrics.spectral import log_mel_distance

    def fit(quantizer: dict) -> Codec:
        torch.manual_seed(0)
        m = Codec(strides=[64], latent_dim=8, architecture="spectral",
                  spectral={"dim": 24, "encoder_depth": 1, "decoder_depth": 1, "mult": 2},
                  quantizer={"num_codebooks": 1, "codebook_size": 64, "codebook_dim": 4, "kmeans_min_vectors": 512,
                             "decay": 0.9, **quantizer}).train()
        opt = torch.optim.Adam(m.parameters(), 3e-3)
        t = torch.arange(2048) / 22050
        for _ in range(40):
            f = 80 * 2 ** (torch.rand(8, 1) * 5)
            x = (torch.sin(2 * torch.pi * f * t) * torch.rand(8, 1) * 0.5)[:, None]
            y = m(x)["audio"]
            loss = (y - x).abs().mean() * 10 + log_mel_distance(y, x)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return m.eval()

    def ratio(m: Codec) -> float:
        with torch.inference_mode():
            audio = m.decode(torch.arange(64).repeat_interleave(16).view(64, 1, 16))   # (64, 1, 1024)
        spec = torch.stack([torch.log10(torch.stft(a[0], 256, 64, window=torch.hann_window(256),
                                                   return_complex=True).abs().pow(2).mean(-1) + 1e-5)
                            for a in audio])
        return _grid_ratio(spec)

    som = ratio(fit({"type": "som", "som_grid": [8, 8], "som_radius": 1.0, "som_init": "ordered"}))
    vq = ratio(fit({"type": "vq"}))
    assert som < 0.8 and som < vq - 0.15, (som, vq)


# ------------------------------------------------------------------ energy bottleneck
def test_energy_gradient_is_the_energy_s_gradient():
    torch.manual_seed(0)
    e = EnergyBottleneck(6, heads=2, head_dim=3, memories=5, window=2)
    with torch.no_grad():
        for p in (e.wq, e.wk, e.xi):
            p.mul_(20.0)
    g = torch.randn(2, 9, 6, requires_grad=True)
    (ga, ea), (gh, eh) = e._attention(g), e._hopfield(g)
    auto, = torch.autograd.grad((ea + eh).sum(), g)
    assert torch.allclose(ga + gh, auto, atol=1e-5)


def test_energy_descends_and_its_context_makes_windows_exact():
    torch.manual_seed(0)
    e = EnergyBottleneck(8, steps=4, step_size=0.1, heads=2, head_dim=4, memories=16, window=3).eval()
    z = torch.randn(1, 8, 120)
    with torch.no_grad():
        x0 = z.transpose(1, 2)
        after = e.dynamics(z).transpose(1, 2)
        assert float(e.energy_and_grad(after)[0]) < float(e.energy_and_grad(x0)[0])
        for p in (e.wq, e.wk):   # stronger couplings than at initialisation: frames reach further
            p.mul_(40.0)
        m = e.context_frames()
        assert m == 24
        whole = e.dynamics(z)
        part = e.dynamics(z[..., 40 - m:80 + m])[..., m:m + 40]
        z2 = z.clone()
        z2[..., 60] += 1.0
        moved = (e.dynamics(z2) - whole).abs().amax(1)[0]          # (frames,)
    assert torch.allclose(part, whole[..., 40:80], atol=1e-5)
    assert (moved[:60 - m] == 0).all() and (moved[60 + m + 1:] == 0).all()   # nothing beyond the margin moves
    assert (torch.cat([moved[:60 - 6], moved[60 + 7:]]) > 0).any()   # steps chain: beyond one step's 2 x window


def test_energy_codec_has_no_codes():
    m = Codec(strides=[32], latent_dim=8, architecture="spectral", quantizer={"type": "energy", "energy_window": 2},
              spectral={"dim": 16, "encoder_depth": 1, "decoder_depth": 1})
    assert m.is_continuous
    with pytest.raises(ConfigError, match="no discrete codes"):
        m.encode(torch.zeros(1, 1, 64))
    assert codec_speed(m.eval(), torch.zeros(1, 1, 32 * 20), threads=1, repeats=1).best > 0   # through latents
    with pytest.raises(ConfigError, match="energy"):
        build_quantizer(8, {"type": "energy", "energy_steps": 0})


# ------------------------------------------------------------------ multiresolution convolutions
def test_multires_blocks_reach_as_far_as_the_context_says():
    torch.manual_seed(0)
    m = Codec(strides=[32], latent_dim=8, architecture="spectral",
              quantizer={"type": "rvq", "num_codebooks": 2, "codebook_size": 16},
              spectral={"dim": 16, "encoder_depth": 1, "decoder_depth": 2, "multires": 3}).eval()
    assert m.encoder.blocks[0].span == 2 * 7 and m.encoder.blocks[0].dw.levels == 3
    plain = Codec(strides=[32], latent_dim=8, architecture="spectral",
                  quantizer={"type": "rvq", "num_codebooks": 2, "codebook_size": 16},
                  spectral={"dim": 16, "encoder_depth": 1, "decoder_depth": 2})
    assert m.context_frames()[1] > plain.context_frames()[1]
    x = torch.randn(1, 1, 32 * 300) * 0.3
    with torch.inference_mode():
        whole = m.encode(x)
        assert torch.equal(m.encode_chunked(x, None, chunk_frames=37), whole)
        assert torch.allclose(m.decode_chunked(whole, chunk_frames=41), m.decode(whole), atol=1e-5)
        z = torch.zeros(1, 16, 60)
        z[..., 30] = 1.0
        y = m.encoder.blocks[0].dw(z)[0].abs().sum(0)
    assert (y[30 - 7:30 + 8] > 0).all() and (y[:30 - 7] == 0).all() and (y[30 + 8:] == 0).all()


# ------------------------------------------------------------------ one discriminator per step
def test_alternating_schedule_trains_one_discriminator_per_step():
    assert [schedule_part("alternate", s) for s in range(3)] == ["msstft", "mpd", "msstft"]
    assert schedule_part("all", 5) is None
    cfg = {"model": {"base_channels": 4, "strides": [2, 4], "latent_dim": 8, "dilations": [1],
                     "quantizer": {"type": "rvq", "num_codebooks": 2, "codebook_size": 16}},
           "train": {"adversarial": True, "disc_schedule": "alternate", "linearity": False}}
    task = CodecTask(cfg, "/nonexistent")
    m = task.build_model().train()
    disc = CodecDiscriminator(n_ffts=(128,), periods=(2,), channels=4)
    x = torch.randn(2, 1, 1024) * 0.2
    for step, active, idle in ((0, disc.msstft, disc.mpd), (1, disc.mpd, disc.msstft)):
        disc.zero_grad(set_to_none=True)
        out = task.training_step(m, x, step, disc)
        task.discriminator_step(disc, out["out"], x, step)["loss"].backward()
        assert all(p.grad is not None for p in active.parameters())
        assert all(p.grad is None for p in idle.parameters())
    with pytest.raises(ConfigError, match="disc_schedule"):
        CodecTask({"model": {}, "train": {"disc_schedule": "random"}}, "/nonexistent")


# ------------------------------------------------------------------ downsampled objective
def test_downsampling_keeps_the_low_band_and_rejects_aliases():
    t = torch.arange(22050) / 22050
    low = torch.sin(2 * torch.pi * 1000 * t).view(1, 1, -1)
    high = torch.sin(2 * torch.pi * 4000 * t).view(1, 1, -1)     # below 2x's Nyquist (5512 Hz), above 4x's (2756)
    assert downsample(low, 4).shape[-1] == 22050 // 4 + 1
    assert abs(downsample(low, 4)[..., 200:-200].pow(2).mean().sqrt() - 0.5 ** 0.5) < 0.01
    assert downsample(high, 4)[..., 200:-200].abs().max() < 0.01
    assert downsample(high, 2)[..., 200:-200].pow(2).mean().sqrt() > 0.69
    parts = reconstruction_losses(low + 0.1 * high, low, {"mel": 0.0, "stft": 0.0, "l1": 1.0, "down": 1.0})
    assert set(parts) == {"rec/l1", "rec/down"} and parts["rec/down"] < parts["rec/l1"]
    assert "rec/down" not in reconstruction_losses(low, low, {"l1": 1.0})


# ------------------------------------------------------------------ the benchmark's verdict rule
def test_verdict_rule(bench):
    def row(lm6, lm12, sdr=5.0, xrt=100.0, nll=None, continuous=False):
        levels = {None: {"log_mel_distance": lm12, "si_sdr": sdr}} if continuous else \
            {6: {"log_mel_distance": lm6, "si_sdr": sdr}, 12: {"log_mel_distance": lm12, "si_sdr": sdr}}
        return {"levels": levels, "xrt": xrt, "nll": nll, "continuous": continuous}
    ref = row(1.0, 0.8, nll=5.0)
    assert bench.verdict(row(0.95, 0.75), ref)[0] == "adopt"
    assert bench.verdict(row(0.95, 0.75, sdr=4.0), ref)[0] == "keep as option"
    assert bench.verdict(row(1.05, 0.85), ref)[0] == "drop"
    assert bench.verdict(row(1.0, 0.8, xrt=40.0), ref)[0] == "drop"
    assert bench.verdict(row(1.005, 0.8, nll=4.9), ref)[0] == "adopt"
    assert bench.verdict(row(None, 0.7, continuous=True), ref)[0] == "keep as option"
    assert "log-mel -12.5 %" in bench.verdict(row(None, 0.7, continuous=True), ref)[1]
    slow = dict(row(0.5, 0.4), steps=20)                      # far better scores, but 20 of v2's 600 steps
    assert bench.verdict(slow, dict(ref, steps=600), base_steps=600)[0] == "no verdict"
    assert bench.verdict(row(0.95, 0.75), dict(ref, steps=20), base_steps=600)[0] == "no verdict"
    assert bench.verdict(dict(row(0.95, 0.75), steps=500), dict(ref, steps=600), base_steps=600)[0] == "adopt"
