"""The one model-file format (strict, pickle-free) and YAML configs with --set overrides."""
import pytest
import torch
from torch import nn

from latentmix.checkpoint import ModelIO, load_tensors, save_tensors
from latentmix.config import apply_overrides, load_config
from latentmix.errors import ConfigError, ModelFileError


class Tiny(nn.Module, ModelIO):
    KIND = "tiny"

    def __init__(self, width=4):
        super().__init__()
        self.config = {"width": width}
        self.lin = nn.Linear(width, width)


class Other(Tiny):
    KIND = "other"


def test_save_load_exact(tmp_path):
    m = Tiny(4)
    m.save(tmp_path / "m.safetensors", provenance={"steps": 3})
    n = Tiny.load(tmp_path / "m.safetensors")
    for k, v in m.state_dict().items():
        assert torch.equal(v, n.state_dict()[k])
    assert n.header["provenance"] == {"steps": 3} and not n.training


def test_wrong_kind_truncated_and_shape_mismatch(tmp_path):
    p = tmp_path / "m.safetensors"
    Tiny(4).save(p)
    with pytest.raises(ModelFileError, match="expected 'other'"):
        Other.load(p)
    data = p.read_bytes()
    (tmp_path / "t.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="t.safetensors"):
        Tiny.load(tmp_path / "t.safetensors")
    save_tensors(tmp_path / "s.safetensors", {"lin.weight": torch.zeros(3, 3), "lin.bias": torch.zeros(3)},
                 {"kind": "tiny", "format_version": 1, "config": {"width": 4}})
    with pytest.raises(ModelFileError, match="shape"):
        Tiny.load(tmp_path / "s.safetensors")
    with pytest.raises(ModelFileError, match="newer"):
        save_tensors(p, {"x": torch.zeros(1)}, {"kind": "tiny", "format_version": 99})
        load_tensors(p, "tiny")


def test_config_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  width: 4\ntrain:\n  lr: 0.001\n  steps: 10\n")
    c = load_config(str(p), "codec", ["train.lr=3e-4", "model.width=8"])
    assert c["train"]["lr"] == 3e-4 and c["model"]["width"] == 8
    with pytest.raises(ConfigError, match="unknown config key"):
        apply_overrides(c, ["train.nope=1"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(c, ["train.lr"])
    with pytest.raises(ConfigError, match="unknown codec preset"):
        load_config("does-not-exist", "codec")
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(str(tmp_path / "bad.yaml"), "codec")


def test_yaml_exponent_floats_are_numbers(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  lr: 3e-4\n  name: cosine\n  betas: [0.8, 0.99]\n")
    c = load_config(str(p), "codec")
    assert c["train"]["lr"] == 3e-4 and c["train"]["name"] == "cosine"


def test_average_models_is_the_weighted_mean_and_refuses_other_models(tmp_path):
    """average_models: float tensors averaged by weight, the result loads as the same kind; another config or a
    single file is refused with one line naming the file."""
    from latentmix.checkpoint import average_models, read_header
    from latentmix.separation.models import build_separator, load_separator
    spec = dict(arch="spec", channels=8, hidden=8, layers=1, segment_seconds=1.0)
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        m = build_separator(spec)
        m.save(tmp_path / f"m{seed}.safetensors", {"steps": seed})
        models.append(m)
    out = average_models([tmp_path / "m0.safetensors", tmp_path / "m1.safetensors"], tmp_path / "avg.safetensors",
                         weights=[3, 1])
    avg = load_separator(out)
    for (k, a), b, c in zip(avg.state_dict().items(), models[0].state_dict().values(),
                            models[1].state_dict().values()):
        if a.is_floating_point():
            assert torch.allclose(a, 0.75 * b + 0.25 * c, atol=1e-6), k
    src = read_header(out)["provenance"]["average_of"]
    assert [s["weight"] for s in src] == [0.75, 0.25] and src[0]["file"] == str(tmp_path / "m0.safetensors")
    build_separator(dict(spec, hidden=16)).save(tmp_path / "wide.safetensors")
    with pytest.raises(ModelFileError, match="wide.safetensors: another kind or config"):
        average_models([tmp_path / "m0.safetensors", tmp_path / "wide.safetensors"], tmp_path / "bad.safetensors")
    with pytest.raises(ConfigError, match="at least two"):
        average_models([tmp_path / "m0.safetensors"], tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()


def test_config_base_key_merges_a_preset_over_another(tmp_path):
    """`base: NAME` starts from NAME.yaml beside the file: spec_wide is spec at 96 wide, and --set checks keys
    against the merged config; a missing base, a base that is not a name, and a cycle are one-line ConfigErrors
    naming the file."""
    spec, wide = load_config("spec", "separator"), load_config("spec_wide", "separator")
    assert wide["model"] == {**spec["model"], "channels": 96, "hidden": 96} and wide["train"] == spec["train"]
    assert "base" not in wide and load_config("spec_low", "separator")["model"]["low_fft"] == 4096
    assert load_config("spec_low", "separator", ["train.drive_p=0.2"])["train"]["drive_p"] == 0.2
    (tmp_path / "a.yaml").write_text("x: {k: 1, j: [1, 2]}\ny: 3e-4\n")
    (tmp_path / "b.yaml").write_text("base: a\nx: {j: [5]}\n")
    assert load_config(str(tmp_path / "b.yaml"), "separator") == {"x": {"k": 1, "j": [5]}, "y": 3e-4}
    (tmp_path / "c.yaml").write_text("base: nowhere\n")
    with pytest.raises(ConfigError, match="nowhere.yaml: no such config file"):
        load_config(str(tmp_path / "c.yaml"), "separator")
    (tmp_path / "d.yaml").write_text("base: [a]\n")
    with pytest.raises(ConfigError, match="d.yaml: `base:` must name a config beside it"):
        load_config(str(tmp_path / "d.yaml"), "separator")
    (tmp_path / "e.yaml").write_text("base: f\n")
    (tmp_path / "f.yaml").write_text("base: e\n")
    with pytest.raises(ConfigError, match="e.yaml: its `base:` chain comes back to itself"):
        load_config(str(tmp_path / "e.yaml"), "separator")
