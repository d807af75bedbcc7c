"""Supervised separators: shapes, sums, no quantizer bypass, frozen codec, file round trips, the forward and loss
convention (one output type, named unweighted terms, weights from train.weights only), the config-version-1
migration, the shipped model's output, training runs."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from latentmix.codec import Codec
from latentmix.separation.models import SeparatorOutput, build_separator, load_separator

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
        out = model(mix)
        y = out.stems
        assert type(out) is SeparatorOutput and out.losses == {}
        assert y.shape == (2, 4, T_ODD) and y.dtype == torch.float32
        assert torch.isfinite(model(torch.zeros(1, 1, T_ODD)).stems).all()
    model.save(tmp_path / "m.safetensors", {"test": True})
    loaded = load_separator(tmp_path / "m.safetensors")
    assert type(loaded) is type(model) and loaded.config == model.config
    with torch.no_grad():
        assert torch.equal(loaded(mix).stems, y)


@pytest.mark.parametrize("mask", ["softmax", "complex"])
def test_spec_estimates_sum_to_mixture(mask):
    torch.manual_seed(1)
    model = build_separator(dict(SPEC, mask=mask)).eval()
    mix = 0.3 * torch.randn(1, 1, T_ODD)
    with torch.no_grad():
        y = model(mix).stems
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
        a = model(torch.randn(1, 1, T_ODD)).stems
        b = model(10 * torch.randn(1, 1, T_ODD)).stems
    assert torch.equal(a, b)


def test_latent_codec_stays_frozen(tiny_codec):
    torch.manual_seed(3)
    model = build_separator(configs(tiny_codec)["latent"]).train()
    assert not model.codec.training and all(not p.requires_grad for p in model.codec.parameters())
    before = {k: v.clone() for k, v in model.codec.state_dict().items()}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], 1e-2)
    stems = 0.1 * torch.randn(2, 4, 4000)
    for terms in (("latent",), ("latent", "l1")):
        out = model(stems.sum(1, keepdim=True), stems, terms=terms)
        loss = sum(out.losses.values())
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
        cfg["train"]["weights"] = {"l1": 1.0, "mrstft": 0.0, "sisdr": 0.0}
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
    """A stereo 44.1 kHz mixture comes out as four stereo 44.1 kHz stems of exactly its length."""
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
        assert info.channels == 2 and info.samplerate == 44100 and info.frames == len(t)


# ------------------------------------------------------------------ the forward and loss convention

@pytest.mark.parametrize("name", ARCH_NAMES)
def test_forward_one_type_named_unweighted_terms(name, tiny_codec):
    """Whatever the terms asked for, forward returns a SeparatorOutput; its losses are the asked terms the model
    has, named "sep/<term>", unweighted (the waveform ones equal the plain loss of the returned stems)."""
    torch.manual_seed(4)
    model = build_separator(configs(tiny_codec)[name]).train()
    stems = 0.1 * torch.randn(2, 4, 4000)
    mix = stems.sum(1, keepdim=True)
    for terms in (None, ("l1",), ("sisdr", "latent", "commitment", "kl"), ("l1", "mrstft", "codebook")):
        out = model(mix, stems, terms=terms)
        assert type(out) is SeparatorOutput and out.stems.shape == stems.shape
        asked = set(model.TERMS) if terms is None else set(terms) & set(model.TERMS)
        names = {k.split("/", 1)[1] for k in out.losses}
        assert all(k.startswith("sep/") for k in out.losses) and names <= asked
        assert names >= asked & {"l1", "mrstft", "sisdr", "latent"}
        if "l1" in asked:
            assert torch.allclose(out.losses["sep/l1"], (out.stems - stems).abs().mean())
    if name == "latent":      # latent terms alone: the decoder stays out of the loop, same output type
        out = model(mix, stems, terms=("latent",))
        assert type(out) is SeparatorOutput and out.stems is None and set(out.losses) == {"sep/latent"}


def test_task_applies_train_weights_to_named_terms(tiny_codec):
    import inspect
    from latentmix.errors import ConfigError
    from latentmix.train.tasks.separator import SeparatorTask
    model_cfg = configs(tiny_codec)["codec_vae"]
    weights = {"l1": 0.5, "mrstft": 0.0, "sisdr": 2.0, "kl": 0.1}
    task = SeparatorTask({"model": model_cfg, "train": {"weights": weights}}, "/unused", 0)
    torch.manual_seed(6)
    model = task.build_model().train()
    stems = 0.1 * torch.randn(2, 4, 4000)
    torch.manual_seed(7)
    res = task.training_step(model, stems, 0)
    assert {k for k in res if k.startswith("sep/")} == {"sep/l1", "sep/sisdr", "sep/kl"}
    expect = 0.5 * res["sep/l1"] + 2.0 * res["sep/sisdr"] + 0.1 * res["sep/kl"]
    assert torch.allclose(res["loss"].detach(), expect)
    assert "arch" not in inspect.getsource(SeparatorTask.training_step)     # no branching on the architecture
    # a config-version-1 training config (weights in the model section) trains the same objective
    legacy = dict(model_cfg, loss={"wave_l1": 0.5, "mrstft": 0.0, "sisdr": 2.0}, bottleneck_weight={"kl": 0.1})
    old = SeparatorTask({"model": legacy, "train": {}}, "/unused", 0)
    assert old.weights == task.weights and old.terms == task.terms and old.model_config == task.model_config
    with pytest.raises(ConfigError, match="unknown separator loss term"):
        SeparatorTask({"model": model_cfg, "train": {"weights": {"wave_l1": 1.0}}}, "/unused", 0)
    zero = {k: 0.0 for k in ("l1", "mrstft", "sisdr", "commitment", "codebook", "kl")}
    with pytest.raises(ConfigError, match="weight 0"):
        SeparatorTask({"model": model_cfg, "train": {"weights": zero}}, "/unused", 0).build_model()


def test_presets_hold_architecture_only():
    from latentmix.config import load_config
    from latentmix.separation.models.base import legacy_weights
    for name in ("spec", "gpu_large", "rvq", "vq", "vae", "latent"):
        cfg = load_config(name, "separator")
        assert legacy_weights(cfg["model"]) == (cfg["model"], {}) and cfg["train"]["weights"]


# ------------------------------------------------------------------ model files: migration, the shipped model

def _as_version_1(path, legacy: dict):
    """Rewrite a model file's header as the pre-#15 code wrote it: no config_version, weights in the config."""
    from latentmix.checkpoint import load_tensors, save_tensors
    header, tensors = load_tensors(path)
    header.pop("config_version")
    header["config"].update(legacy)
    save_tensors(path, tensors, header)


def test_config_version_1_files_load(tiny_codec, tmp_path):
    """Files written with config version 1 (loss weights in the config; the shipped separator was one until
    2026-12-01) load with an architecture-only config, and a re-save is version 2. The shipped separator made into
    a version-1 file, and version-1 files of every arch."""
    from latentmix.checkpoint import read_header
    from latentmix.errors import ModelFileError
    from latentmix.pretrained.registry import default_separator_path
    shipped = load_separator(default_separator_path())
    assert "loss" not in shipped.config
    shipped.save(tmp_path / "shipped_v1.safetensors")
    _as_version_1(tmp_path / "shipped_v1.safetensors", {"loss": {"wave_l1": 1.0, "mrstft": 1.0, "sisdr": 1.0}})
    header = read_header(tmp_path / "shipped_v1.safetensors")
    assert "config_version" not in header and "loss" in header["config"]
    assert load_separator(tmp_path / "shipped_v1.safetensors").config == shipped.config
    assert shipped.config == {k: v for k, v in header["config"].items() if k != "loss"}
    shipped.save(tmp_path / "v2.safetensors")
    h2 = read_header(tmp_path / "v2.safetensors")
    assert h2["config_version"] == 2 and h2["config"] == shipped.config
    legacy = {"spec": {"loss": {"wave_l1": 1.0, "mrstft": 1.0, "sisdr": 1.0}},
              "codec_vae": {"loss": {"wave_l1": 1.0, "mrstft": 1.0, "sisdr": 1.0},
                            "bottleneck_weight": {"commitment": 0.25, "codebook": 1.0, "kl": 1e-3}},
              "latent": {"latent_weight": 1.0, "loss": {"wave_l1": 0.0, "mrstft": 0.0, "sisdr": 0.0}}}
    mix = 0.1 * torch.randn(1, 1, T_ODD)
    for name, keys in legacy.items():
        torch.manual_seed(0)
        model = build_separator(configs(tiny_codec)[name]).eval()
        path = tmp_path / f"{name}.safetensors"
        model.save(path)
        _as_version_1(path, keys)
        loaded = load_separator(path)
        assert loaded.config == model.config
        with torch.no_grad():
            assert torch.equal(loaded(mix).stems, model(mix).stems)
    from latentmix.checkpoint import load_tensors, save_tensors
    header, tensors = load_tensors(tmp_path / "v2.safetensors")
    save_tensors(tmp_path / "v9.safetensors", tensors, dict(header, config_version=9))
    with pytest.raises(ModelFileError, match="config version 9 is newer"):
        load_separator(tmp_path / "v9.safetensors")


def test_shipped_separator_output_unchanged():
    """The shipped separator's stems for a short random input, as the code before the #15 refactor computed
    them (tests/data/separator_default_ref.npz: mix = 0.1 * randn(1, 1, 4000) after torch.manual_seed(0))."""
    from pathlib import Path
    from latentmix.separation.registry import get_method
    ref = np.load(Path(__file__).parent / "data" / "separator_default_ref.npz")
    mix = torch.from_numpy(ref["mix"])
    method = get_method("supervised")
    with torch.no_grad():
        y = method.model(mix).stems
    assert y.shape == ref["stems"].shape
    assert np.allclose(y.numpy(), ref["stems"], atol=1e-5, rtol=0)
    assert np.allclose(method.separate(mix).numpy(), ref["stems"], atol=1e-5, rtol=0)


def test_extra_data_roots_join_the_training_windows(sep_data, tmp_path):
    """train.extra_data: each root an equal share of the windows; a missing root is a one-line error."""
    import shutil
    from latentmix.errors import InputError
    from latentmix.train.tasks.separator import SeparatorTask
    other = tmp_path / "other"
    shutil.copytree(sep_data, other)
    cfg = {"model": SPEC, "train": {"steps": 10, "batch_size": 100, "extra_data": [str(other)]}}
    ds = SeparatorTask(cfg, sep_data, 0).train_dataset()
    assert len(ds.datasets) == 2 and len(ds.datasets[0]) == len(ds.datasets[1]) == 500
    assert ds[0].shape[0] == 4 and ds[len(ds) - 1].shape[0] == 4
    cfg["train"]["extra_data"] = [str(tmp_path / "nowhere")]
    with pytest.raises(InputError, match="nowhere: no such data folder"):
        SeparatorTask(cfg, sep_data, 0).train_dataset()


FIVE = ["bass", "drums", "guitar", "piano", "other"]


@pytest.fixture(scope="module")
def five_stem_data(tmp_path_factory):
    """4 tracks x 2 s with other_prob 0.5: some tracks have other.wav, some do not."""
    from latentmix.data.build import synth_dataset
    root = synth_dataset(tmp_path_factory.mktemp("five"), tracks=4, seconds=2.0, seed=1, other_prob=0.5,
                         progress=False, workers=1)
    has = [(t / "other.wav").exists() for t in sorted(root.glob("*/Track*"))]
    assert any(has) and not all(has)
    return root


def test_five_stem_separator_trains_and_separates(five_stem_data, tmp_path):
    """model.stems with 'other': 5 outputs, trained 2 steps through the loop, and `latentmix separate` writes
    5 stem files that sum to the input."""
    from latentmix.cli import main
    from latentmix.train.loop import train
    from latentmix.train.tasks.separator import SeparatorTask
    cfg = {"model": dict(SPEC, stems=FIVE),
           "train": dict(steps=2, batch_size=2, segment_seconds=0.5, val_segment_seconds=0.5, lr=1e-3,
                         log_every=1, val_every=0, val_items=2, ckpt_every=0, tensorboard=False)}
    assert SeparatorTask(cfg, str(five_stem_data), 0).train_dataset()[0].shape[0] == 5
    res = train("separator", cfg, str(five_stem_data), tmp_path / "run", seed=0, quiet=True)
    assert res["step"] == 2 and np.isfinite(res["loss"])
    path = tmp_path / "run" / "model.safetensors"
    model = load_separator(path)
    assert model.stems == tuple(FIVE) and model(0.1 * torch.randn(1, 1, T_ODD)).stems.shape == (1, 5, T_ODD)
    track = sorted((five_stem_data / "test").iterdir())[0]
    assert main(["separate", str(track / "mix.wav"), "-o", str(tmp_path / "out"), "--model", str(path),
                 "--float32", "--quiet"]) == 0
    written = sorted((tmp_path / "out").rglob("*.wav"))
    assert sorted(p.stem for p in written) == sorted(FIVE)
    mix = sf.read(track / "mix.wav", dtype="float32")[0]
    total = sum(sf.read(p, dtype="float32")[0] for p in written)
    assert np.abs(total - mix).max() < 1e-4


def test_four_stem_files_and_stem_list_checks(tmp_path):
    """A model file whose config has no `stems` (as any file may) loads with the four and gives 4 outputs, as
    before; a stem list with an unknown or repeated name, or none, is a ConfigError."""
    from latentmix.checkpoint import load_tensors, save_tensors
    from latentmix.errors import ConfigError
    from latentmix.separation.registry import get_method
    assert get_method("supervised").stems == ("bass", "drums", "guitar", "piano")       # the shipped model
    torch.manual_seed(0)
    four = build_separator(SPEC).eval()
    four.save(tmp_path / "four.safetensors")
    header, tensors = load_tensors(tmp_path / "four.safetensors")
    config = {k: v for k, v in header["config"].items() if k != "stems"}
    save_tensors(tmp_path / "bare.safetensors", tensors, dict(header, config=config))
    mix = 0.1 * torch.randn(1, 1, T_ODD)
    for name in ("four", "bare"):
        model = load_separator(tmp_path / f"{name}.safetensors")
        assert model.stems == ("bass", "drums", "guitar", "piano")
        with torch.no_grad():
            assert torch.equal(model(mix).stems, four(mix).stems) and model(mix).stems.shape == (1, 4, T_ODD)
    for bad in (["bass", "vocals"], ["bass", "bass"], []):
        with pytest.raises(ConfigError):
            build_separator(dict(SPEC, stems=bad))


def test_spec_low_band_branch(tmp_path):
    """model.low_fft (issue #19): bins of a 4096-point STFT below low_hz join as band tokens and separate the
    low band first; the stems still sum to the mixture exactly, for long and very short inputs; the file keeps the
    setting; a config without it builds the unchanged model; a bad low_fft is a ConfigError."""
    from latentmix.errors import ConfigError
    from latentmix.separation.models import build_separator, load_separator
    cfg = dict(arch="spec", n_fft=512, hop=128, channels=8, hidden=8, layers=1)
    plain = build_separator(cfg)
    torch.manual_seed(0)
    low = build_separator({**cfg, "low_fft": 2048, "low_hz": 400.0, "low_band_bins": 8})
    assert low.low_bins == round(400 * 2048 / 22050) and low.n_bands == plain.n_bands + -(-low.low_bins // 8)
    x = 0.1 * torch.randn(2, 1, 9000, generator=torch.Generator().manual_seed(1))
    out = low(x, torch.randn(2, 4, 9000))
    assert out.stems.shape == (2, 4, 9000) and torch.allclose(out.stems.sum(1, keepdim=True), x, atol=1e-5)
    out.losses["sep/l1"].backward()
    assert low.inp.weight.grad[plain.n_bands:].abs().sum() > 0          # the low tokens are trained
    with torch.no_grad():
        short = low(x[..., :300]).stems
    assert short.shape == (2, 4, 300) and torch.allclose(short.sum(1, keepdim=True), x[..., :300], atol=1e-5)
    path = tmp_path / "low.safetensors"
    low.save(path)
    again = load_separator(path)
    assert again.low_fft == 2048 and again.config["low_hz"] == 400.0
    with torch.no_grad():
        assert torch.allclose(again(x).stems, low.eval()(x).stems, atol=1e-6)
    assert "low_fft" not in plain.config and plain.low_fft == 0
    for bad in (512, 1000, 256):
        with pytest.raises(ConfigError, match="low_fft"):
            build_separator({**cfg, "low_fft": bad})


def test_five_stem_model_fine_tunes_from_a_four_stem_file(five_stem_data, tmp_path):
    """train.init of a 5-stem separator from a 4-stem file (issue #19): every tensor but the mask head is the
    file's, the head keeps each common stem's columns (in the model's order, whatever the file's), the new stem
    starts near silent so the four estimates are nearly the file's; a file stem the model lacks is refused."""
    from latentmix.checkpoint import load_tensors, save_tensors
    from latentmix.errors import ModelFileError
    from latentmix.train.loop import train
    torch.manual_seed(0)
    four = build_separator(SPEC).eval()
    four.save(tmp_path / "four.safetensors")
    cfg = {"model": dict(SPEC, stems=FIVE),
           "train": dict(steps=1, batch_size=2, segment_seconds=0.5, val_segment_seconds=0.5, lr=0.0,
                         init=str(tmp_path / "four.safetensors"), log_every=1, val_every=0, val_items=2,
                         ckpt_every=0, tensorboard=False)}
    train("separator", cfg, str(five_stem_data), tmp_path / "run", seed=0, quiet=True)
    five = load_separator(tmp_path / "run" / "model.safetensors").eval()
    _, t4 = load_tensors(tmp_path / "four.safetensors")
    _, t5 = load_tensors(tmp_path / "run" / "model.safetensors")
    assert all(torch.equal(t4[k], t5[k]) for k in t4 if not k.startswith("head2."))
    W, M = five.max_width, five.n_mask
    w4 = t4["head2.weight"].reshape(*t4["head2.weight"].shape[:2], W, 4, M)
    w5 = t5["head2.weight"].reshape(*t5["head2.weight"].shape[:2], W, 5, M)
    assert torch.equal(w5[..., :4, :], w4) and torch.equal(w5[..., 4, :], torch.zeros_like(w4[..., 0, :]))
    mix = 0.1 * torch.randn(1, 1, T_ODD, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y4, y5 = four(mix).stems, five(mix).stems
    assert y5[0, 4].norm() < 0.1 * mix.norm()                                       # other starts near silent
    assert (y5[:, :4] - y4).norm() < 0.1 * y4.norm()
    # a file in another stem order lands in the model's order
    header, tensors = load_tensors(tmp_path / "four.safetensors")
    order = ["drums", "bass", "guitar", "piano"]
    h = tensors["head2.weight"].reshape(*tensors["head2.weight"].shape[:2], W, 4, M)
    b = tensors["head2.bias"].reshape(*tensors["head2.bias"].shape[:2], W, 4, M)
    inv = [("bass", "drums", "guitar", "piano").index(s) for s in order]
    swapped = dict(tensors, **{"head2.weight": h[..., inv, :].reshape(tensors["head2.weight"].shape).contiguous(),
                               "head2.bias": b[..., inv, :].reshape(tensors["head2.bias"].shape).contiguous()})
    save_tensors(tmp_path / "swapped.safetensors", swapped, dict(header, config=dict(header["config"], stems=order)))
    cfg["train"]["init"] = str(tmp_path / "swapped.safetensors")
    train("separator", cfg, str(five_stem_data), tmp_path / "run2", seed=0, quiet=True)
    _, t5b = load_tensors(tmp_path / "run2" / "model.safetensors")
    assert torch.equal(t5b["head2.weight"], t5["head2.weight"]) and torch.equal(t5b["head2.bias"], t5["head2.bias"])
    # the file has a stem this model lacks
    cfg["model"] = dict(SPEC, stems=["bass", "drums", "guitar"])
    cfg["train"]["init"] = str(tmp_path / "four.safetensors")
    with pytest.raises(ModelFileError, match="four.safetensors.*piano"):
        train("separator", cfg, str(five_stem_data), tmp_path / "run3", seed=0, quiet=True)


def test_cli_init_default_adds_other_to_the_shipped_separator(five_stem_data, tmp_path):
    """`latentmix train separator --config spec_wide --init default --set model.stems=[...,other]`: the README's
    way to a 5-stem model starts from the shipped file (its shared tensors unchanged at lr 0)."""
    from latentmix.checkpoint import load_tensors
    from latentmix.cli import main
    from latentmix.pretrained.registry import resolve_model
    out = tmp_path / "run"
    assert main(["train", "separator", "--config", "spec_wide", "--init", "default", "--data", str(five_stem_data),
                 "--out", str(out), "--steps", "1", "--quiet", "--set", "model.stems=[bass,drums,guitar,piano,other]",
                 "--set", "train.lr=0", "--set", "train.batch_size=1", "--set", "train.segment_seconds=1.0",
                 "--set", "train.val_every=0", "--set", "train.tensorboard=false"]) == 0
    _, shipped = load_tensors(resolve_model("default", "separator"))
    _, five = load_tensors(out / "model.safetensors")
    assert load_separator(out / "model.safetensors").stems == tuple(FIVE)
    assert all(torch.equal(shipped[k], five[k]) for k in shipped if not k.startswith("head2."))


@pytest.mark.parametrize("time_model", ["conv", "gru"])
def test_init_of_a_deeper_model_starts_as_the_file(tmp_path, time_model):
    """--init of a model with more layers than the file: the added layers are the identity, so the outputs are the
    file's; a file with more layers than the model is a one-line ModelFileError."""
    from latentmix.errors import ModelFileError
    from latentmix.separation.models.spec_sep import SpecSeparator
    from latentmix.train.loop import _init_from
    kw = dict(n_fft=512, hop=128, channels=8, hidden=8, time_model=time_model)
    torch.manual_seed(0)
    small = SpecSeparator(layers=1, **kw).eval()
    small.save(tmp_path / "small.safetensors")
    deep = SpecSeparator(layers=3, **kw).eval()
    _init_from(deep, tmp_path / "small.safetensors")
    x = torch.randn(1, 1, 4096) * 0.1
    with torch.inference_mode():
        assert torch.allclose(deep(x).stems, small(x).stems, atol=1e-6)
    assert any(p.abs().sum() > 0 for n, p in deep.named_parameters() if n.startswith("time.2."))
    deep.save(tmp_path / "deep.safetensors")
    with pytest.raises(ModelFileError, match="deep.safetensors: .*the file has 3 layers, this model 1"):
        _init_from(SpecSeparator(layers=1, **kw), tmp_path / "deep.safetensors")


@pytest.mark.parametrize("time_model", ["conv", "gru"])
def test_init_of_a_wider_model_computes_the_file_and_breaks_symmetry(tmp_path, time_model):
    """--init of a model 2x / 3x wider than the file (Net2Wider): the outputs are the file's to float precision,
    the repeated units' weights are not all equal (they must drift apart in training), training still runs, and
    widths that do not divide are a one-line ModelFileError naming the file."""
    from latentmix.errors import ModelFileError
    from latentmix.separation.models.spec_sep import SpecSeparator
    from latentmix.train.loop import _init_from
    kw = dict(n_fft=512, hop=128, layers=2, time_model=time_model, low_fft=1024, low_hz=1000.0, low_band_bins=8,
              stems=FIVE)
    torch.manual_seed(0)
    small = SpecSeparator(channels=8, hidden=6, **kw).eval()
    with torch.no_grad():                 # norms at 1 and biases at 0 would hide a wrong rule for them
        for p in small.parameters():
            p.add_(0.1 * torch.randn_like(p))
    small.save(tmp_path / "small.safetensors")
    x = torch.randn(1, 1, 4096) * 0.1
    for c, h in [(16, 12), (24, 6), (8, 18)]:
        wide = SpecSeparator(channels=c, hidden=h, **kw).eval()
        _init_from(wide, tmp_path / "small.safetensors")
        with torch.inference_mode():
            assert torch.allclose(wide(x).stems, small(x).stems, atol=1e-6)
    w = wide.band[0].proj.weight                                    # (8, 2 x 18): forward h, backward h, 3 copies
    assert not torch.allclose(w[:, :6], w[:, 6:12])
    assert torch.allclose(w[:, :6] + w[:, 6:12] + w[:, 12:18], small.band[0].proj.weight[:, :6], atol=1e-6)
    wide.train()
    sum(wide(x, torch.randn(1, 5, 4096) * 0.05).losses.values()).backward()
    g = wide.band[0].rnn.weight_hh_l0.grad                          # r-gate rows of the first two copies
    assert g.abs().sum() > 0 and not torch.allclose(g[:6], g[6:12])
    with pytest.raises(ModelFileError, match="small.safetensors: .*do not divide this model's \\(12, 6\\)"):
        _init_from(SpecSeparator(channels=12, hidden=6, **kw), tmp_path / "small.safetensors")
    wide.save(tmp_path / "wide.safetensors")
    with pytest.raises(ModelFileError, match="wide.safetensors: .*--set model.channels=8 --set model.hidden=18"):
        _init_from(SpecSeparator(channels=8, hidden=6, **kw), tmp_path / "wide.safetensors")
