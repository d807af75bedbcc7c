"""benchmarks/bayesian.py: --variant rows parse into (method, seed preset, settings, oracle) and reach the
separator (settings, and a row's own codec / priors / counts files); bad specs are refused."""
import importlib.util
import sys
from pathlib import Path

import pytest

_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(_DIR))
_spec = importlib.util.spec_from_file_location("bench_bayesian", _DIR / "bayesian.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_variant_spec_parses_flags_settings_and_files():
    name, (method, seed, over, oracle) = bench.parse_variant(
        "lass as it was, no-linearity codec=lass;seed;oracle;codec=/x/v1.safetensors;priors=/a.st,/b.st;lam=3;"
        "sigma=0.25;smoothing=additive")
    assert (name, method, seed, oracle) == ("lass as it was, no-linearity codec", "lass", True, True)
    assert over == {"codec": "/x/v1.safetensors", "priors": "/a.st,/b.st", "lam": 3, "sigma": 0.25,
                    "smoothing": "additive"}
    assert bench.parse_variant("h=hybrid;topk=8") == ("h", ("hybrid", False, {"topk": 8}, False))
    assert bench.parse_variant("m=lq-vae;mask=false;x=True")[1][2] == {"mask": False, "x": True}


@pytest.mark.parametrize("bad", ["nomethod", "=lass", "x=", "x=lass;fast"])
def test_bad_variant_specs_are_refused(bad):
    with pytest.raises(ValueError):
        bench.parse_variant(bad)


def test_variant_settings_reach_the_separator(monkeypatch):
    made = []

    class Fake:
        def __init__(self, method, seed_preset=False, **kw):
            made.append((method, seed_preset, kw))

    import latentmix.separation.bayesian as B
    monkeypatch.setattr(B, "BayesianSeparator", Fake)
    name, spec = bench.parse_variant("v=hybrid;sigma=0.2;counts=/c.st")
    monkeypatch.setitem(bench.VARIANTS, name, spec)
    args = type("A", (), {"priors": "/p1,/p2", "counts": "/shared.st"})()
    out = bench.build([name], args)
    assert made == [("hybrid", False, {"sigma": 0.2, "counts": "/c.st", "priors": "/p1,/p2"})]
    assert out[0][0] == "v" and out[0][2] is False
