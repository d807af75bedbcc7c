"""Supervised separators: shapes, sums, no quantizer bypass, frozen codec, file round trips, training runs."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from latentmix.codec import Codec
from latentmix.separation.models import build_separator, load_separator

T_ODD = 8821     # ~0.4 s, not a multiple of any hop

SPEC = dict(arch="spec", channels=8, hidden=8, layers=1, segment_seconds=1.0)
CODEC = dict(arch="codec", channels=2, strides=[2, 4], dim=8, dilations=[1], segment_seconds=1.0)
QUANTIZERS = {"rvq": {"type": "rvq", "num_codebooks": 2, "codebook_size": 16, "quantizer_dropout": 0.0},
              "vq": {"type": "vq", "codebook_size": 16}, "vae": {"type": "vae"}}


@pytest.fixture(scope="module")
def tiny_codec(tmp_path_factory):
    torch.manual_seed(0)
    codec = Codec(base_channels=2, strides=(2, 4), latent_dim=8, dilations=(1,),
                  quantizer={"type": "rvq", "num_codebooks": 2, "codebook_size": 16})
    path = tmp_path_factory.mktemp("codec") / "codec.safetensors"
    codec.save(path)
    return str(path)


def configs(tiny_codec):
    out = {"spec": SPEC, "spec_conv_complex": dict(SPEC, time_model="conv", mask="complex")}
    out.update({f"codec_{k}": dict(CODEC, quantizer=q) for k, q in QUANTIZERS.items()})
    out["latent"] = dict(arch="latent", codec=tiny_codec, channels=8, dilations=[1, 2])
    return out


ARCH_NAMES = ["spec", "spec_conv_complex", "codec_rvq", "codec_vq", "codec_vae", "latent"]


@pytest.fixture
def sep_data(request, tmp_path_factory):
    """The shared tiny MSDM dataset if conftest provides one, else random stems in the MSDM layout."""
    try:
        return str(request.getfixturevalue("tiny_dataset"))
    except pytest.FixtureLookupError:
        pass
    root = tmp_path_factory.mktemp("msdm")
    rng = np.random.default_rng(0)
    for split, n in (("train", 2), ("validation", 1), ("test", 1)):
        for i in range(n):
            d = root / split / f"Track{i:05d}"
            d.mkdir(parents=True)
            for stem in ("bass", "drums", "guitar", "piano"):
                sf.write(d / f"{stem}.wav", (0.1 * rng.standard_normal(22050 * 5)).astype(np.float32), 22050)
    return str(root)


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_shapes_silence_and_round_trip(name, tiny_codec, tmp_path):
    torch.manual_seed(0)
    model = build_separator(configs(tiny_codec)[name]).eval()
    mix = 0.1 * torch.randn(2, 1, T_ODD)
    with torch.no_grad():
        y, aux = model(mix)
        assert y.shape == (2, 4, T_ODD) and y.dtype == torch.float32
        assert set(aux) == {"losses", "stats"}
        y0, _ = model(torch.zeros(1, 1, T_ODD))
        assert torch.isfinite(y0).all()
    model.save(tmp_path / "m.safetensors", {"test": True})
    loaded = load_separator(tmp_path / "m.safetensors")
    assert type(loaded) is type(model) and loaded.config == model.config
    with torch.no_grad():
        assert torch.equal(loaded(mix)[0], y)


@pytest.mark.parametrize("mask", ["softmax", "complex"])
def test_spec_estimates_sum_to_mixture(mask):
    torch.manual_seed(1)
    model = build_separator(dict(SPEC, mask=mask)).eval()
    mix = 0.3 * torch.randn(1, 1, T_ODD)
    with torch.no_grad():
        y, _ = model(mix)
    assert torch.allclose(y.sum(1, keepdim=True), mix, atol=1e-5)


@pytest.mark.parametrize("q", sorted(QUANTIZERS))
def test_codec_decoder_sees_only_the_quantized_latent(q):
    """No skip connections: the decoder's only input is z_q, and with z_q fixed the output ignores the mixture."""
    torch.manual_seed(2)
    model = build_separator(dict(CODEC, quantizer=QUANTIZERS[q])).eval()
    seen = {}
    model.decoder.register_forward_hook(lambda m, args, out: seen.update(args=args))
    orig = model.quantizer.forward
    model.quantizer.forward = lambda z, n=None: seen.update(q=orig(z, n)) or seen["q"]
    with torch.no_grad():
        model(torch.randn(1, 1, T_ODD))
    assert len(seen["args"]) == 1 and seen["args"][0] is seen["q"].z_q
    fixed = seen["q"]
    model.quantizer.forward = lambda z, n=None: fixed
    with torch.no_grad():
        a, _ = model(torch.randn(1, 1, T_ODD))
        b, _ = model(10 * torch.randn(1, 1, T_ODD))
    assert torch.equal(a, b)


def test_latent_codec_stays_frozen(tiny_codec):
    torch.manual_seed(3)
    model = build_separator(configs(tiny_codec)["latent"]).train()
    assert not model.codec.training and all(not p.requires_grad for p in model.codec.parameters())
    before = {k: v.clone() for k, v in model.codec.state_dict().items()}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], 1e-2)
    stems = 0.1 * torch.randn(2, 4, 4000)
    for decode in (False, True):
        y, aux = model(stems.sum(1, keepdim=True), stems, decode=decode)
        loss = aux["losses"]["latent/mse"] + (y.abs().mean() if y is not None else 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = model.codec.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("name", ["spec", "codec_rvq", "latent"])      # one per arch (bottlenecks: above)
def test_two_training_steps_through_the_loop(name, tiny_codec, sep_data, tmp_path):
    from latentmix.train.loop import train
    cfg = {"model": configs(tiny_codec)[name],
           "train": dict(steps=2, batch_size=2, segment_seconds=0.5, val_segment_seconds=0.5, lr=1e-3,
                         log_every=1, val_every=0, val_items=2, ckpt_every=0, tensorboard=False)}
    if name == "latent":
        cfg["model"] = dict(cfg["model"], loss={"wave_l1": 1.0, "mrstft": 0.0, "sisdr": 0.0})
    res = train("separator", cfg, sep_data, tmp_path / "run", seed=0, quiet=True)
    assert res["step"] == 2 and np.isfinite(res["loss"])
    assert "score" in {k.split("/", 1)[-1] for k in res}
    model = load_separator(tmp_path / "run" / "model.safetensors")
    assert model.config["arch"] == cfg["model"]["arch"]


def test_cli_train_and_supervised_method(sep_data, tmp_path):
    from latentmix.cli import main
    from latentmix.separation.registry import get_method
    out = tmp_path / "run"
    rc = main(["train", "separator", "--config", "configs/separator/spec.yaml", "--data", sep_data,
               "--out", str(out), "--steps", "2", "--quiet", "--set", "train.batch_size=2",
               "--set", "train.val_items=2", "--set", "train.segment_seconds=0.5",
               "--set", "train.val_segment_seconds=0.5", "--set", "model.layers=1", "--set", "model.channels=8",
               "--set", "model.hidden=8"])
    assert rc == 0 and (out / "model.safetensors").exists()
    method = get_method("supervised", model=str(out / "model.safetensors"))
    assert not method.needs_references and len(method.stems) == 4
    mix = 0.1 * torch.randn(1, 1, 22050 * 6 + 13)      # longer than one 6 s segment: stitched
    y = method.separate(mix)
    assert y.shape == (1, 4, mix.shape[-1]) and torch.isfinite(y).all()
    assert torch.allclose(y.sum(1, keepdim=True), mix, atol=1e-4)    # softmax masks survive the stitching


def test_load_rejects_other_kinds_and_unknown_arch(tiny_codec):
    from latentmix.errors import ConfigError, ModelFileError
    with pytest.raises(ModelFileError, match="expected 'separator'"):
        load_separator(tiny_codec)
    with pytest.raises(ConfigError, match="unknown separator arch"):
        build_separator({"arch": "unet"})


def test_cli_separate_stereo_other_rate_input(tmp_path):
    """A stereo 44.1 kHz mixture comes out as four mono 22050 Hz stems of the same duration."""
    from latentmix.cli import main
    torch.manual_seed(0)
    model = build_separator(SPEC)
    model.save(tmp_path / "sep.safetensors")
    t = np.arange(int(44100 * 1.5)) / 44100
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 110 * t), 0.2 * np.sin(2 * np.pi * 660 * t)], 1)
    sf.write(tmp_path / "song.wav", stereo.astype(np.float32), 44100)
    rc = main(["separate", str(tmp_path / "song.wav"), "-o", str(tmp_path / "out"),
               "--model", str(tmp_path / "sep.safetensors"), "--quiet"])
    assert rc == 0
    for stem in ("bass", "drums", "guitar", "piano"):
        info = sf.info(tmp_path / "out" / "song" / f"{stem}.wav")
        assert info.channels == 1 and info.samplerate == 22050 and abs(info.frames - int(22050 * 1.5)) <= 1
