"""The ideal ratio mask oracle, the method registry (names -> methods, nothing else) and the one device rule."""
import math

import pytest
import torch

from latentmix.errors import ConfigError
from latentmix.metrics.sisdr import si_sdr_improvement
from latentmix.separation import registry
from latentmix.separation.apply import separate_long
from latentmix.separation.oracle import OracleIRM, irm
from latentmix.separation.registry import available_methods, get_method, register_method


def _two_sines(T=22050 * 2):
    t = torch.arange(T, dtype=torch.float32) / 22050
    return torch.stack([0.5 * torch.sin(2 * math.pi * 110 * t), 0.3 * torch.sin(2 * math.pi * 1760 * t)])


def test_irm_two_sines_high_sisdri():
    stems = _two_sines()[None]                                 # (1, 2, T)
    mix = stems.sum(1, keepdim=True)
    est = irm(mix, stems)
    assert est.shape == stems.shape
    sisdri = si_sdr_improvement(est, stems, mix)
    assert (sisdri > 20).all(), sisdri


def test_irm_shapes_and_silence():
    stems = torch.zeros(2, 3, 4000)
    stems[:, 0] = torch.randn(2, 4000)
    est = irm(stems.sum(1, keepdim=True), stems)
    assert est.shape == (2, 3, 4000)
    assert torch.allclose(est[:, 0], stems[:, 0], atol=1e-4)
    assert irm(stems[0].sum(0), stems[0]).shape == (1, 3, 4000)


def test_registry_oracle_and_unknown():
    m = get_method("oracle-irm")
    assert isinstance(m, OracleIRM) and m.hop == 512
    assert m.needs_references and m.stems == ("bass", "drums", "guitar", "piano")
    stems = torch.randn(1, 4, 22050 * 3) * 0.1
    out = separate_long(m, stems.sum(1, keepdim=True), stems, segment_seconds=1.0)
    assert out.shape == stems.shape
    assert (si_sdr_improvement(out, stems, stems.sum(1, keepdim=True)) > 3).all()
    with pytest.raises(ConfigError, match="known: .*oracle-irm"):
        get_method("no-such-method")
    with pytest.raises(ConfigError, match="needs the reference"):
        separate_long(m, stems.sum(1, keepdim=True), None)


def test_register_method_later():
    class Half:
        name, needs_references, stems, segment_seconds = "half", False, ("a", "b"), 0.5

        def separate(self, mix, refs):
            return mix.expand(-1, 2, -1) * 0.5
    register_method("half-test", lambda **o: Half())
    assert "half-test" in available_methods()
    out = separate_long(get_method("half-test", model=None), torch.ones(1, 1, 30_000))
    assert torch.allclose(out, torch.full((1, 2, 30_000), 0.5))


def test_registry_only_registers():
    """registry.py maps names to method factories: no method, inference or device code lives there."""
    own = {n for n, v in vars(registry).items() if not n.startswith("_") and callable(v)
           and getattr(v, "__module__", None) == registry.__name__}
    assert own == {"register_method", "available_methods", "get_method"}
    assert not {"OracleIRM", "separate_long", "resolve_device", "torch"} & set(vars(registry))
    assert {"oracle-irm", "supervised"} <= set(available_methods())
    assert type(get_method("oracle-irm", hop=256)).__module__ == "latentmix.separation.oracle"


def test_one_device_rule():
    from latentmix import device
    from latentmix.train import ddp
    assert ddp.pick_device is device.pick_device
    assert device.pick_device("cpu") == torch.device("cpu") and device.resolve_device("cpu") == "cpu"
    assert device.resolve_device("auto") == ("cuda:0" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="unknown device"):
        device.pick_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            device.pick_device("cuda")


def test_separation_never_imports_train():
    import ast
    from pathlib import Path
    import latentmix.separation as sep
    root = Path(sep.__file__).parent
    for f in root.rglob("*.py"):
        depth = len(f.relative_to(root).parts)      # "..train" from separation/x.py, "...train" from models/x.py
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                mods = [base] + [f"{base}.{a.name}".lstrip(".") for a in node.names]
                if node.level == depth + 1:         # relative to the latentmix package
                    mods = [f"latentmix.{m}" for m in mods]
            else:
                continue
            assert not any(m == "latentmix.train" or m.startswith("latentmix.train.") for m in mods), (f, mods)
