"""benchmarks/common.py: write_section replaces exactly one marked section, atomically, and nothing else."""
import importlib.util
import os
from pathlib import Path

import pytest

from latentmix import fileio

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "common.py"
_spec = importlib.util.spec_from_file_location("bench_common", _PATH)
common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(common)

DOC = """# Benchmark results

<!-- data:begin -->
## Data
old data
<!-- data:end -->

<!-- codec:begin -->
## Codec
old codec
<!-- codec:end -->

trailing text
"""


def test_replaces_only_its_section(tmp_path):
    p = tmp_path / "RESULTS.md"
    p.write_text(DOC)
    common.write_section("codec", "## Codec\nnew codec\n", p)
    text = p.read_text()
    assert "new codec" in text and "old codec" not in text
    assert "<!-- data:begin -->\n## Data\nold data\n<!-- data:end -->" in text
    assert "<!-- codec:begin -->\n## Codec\nnew codec\n<!-- codec:end -->" in text
    assert text.endswith("trailing text\n")
    assert text.startswith("# Benchmark results\n")


def test_idempotent(tmp_path):
    p = tmp_path / "RESULTS.md"
    p.write_text(DOC)
    common.write_section("codec", "## Codec\nx", p)
    once = p.read_text()
    common.write_section("codec", "## Codec\nx", p)
    assert p.read_text() == once


def test_appends_missing_section_and_creates_file(tmp_path):
    p = tmp_path / "RESULTS.md"
    common.write_section("codec", "## Codec\nfirst", p)
    assert p.read_text() == "# Benchmark results\n\n<!-- codec:begin -->\n## Codec\nfirst\n<!-- codec:end -->\n"
    common.write_section("data", "## Data", p)
    text = p.read_text()
    assert text.index("codec:end") < text.index("data:begin")
    assert "## Codec\nfirst" in text


def test_similar_names_do_not_collide(tmp_path):
    p = tmp_path / "RESULTS.md"
    p.write_text(DOC)
    common.write_section("codec_speed", "speed", p)
    text = p.read_text()
    assert "old codec" in text and "<!-- codec_speed:begin -->\nspeed\n<!-- codec_speed:end -->" in text


@pytest.mark.parametrize("bad", ["<!-- codec:begin -->\nno end\n", "<!-- codec:end -->\n<!-- codec:begin -->\n",
                                 DOC + "<!-- codec:begin -->\n"])
def test_malformed_markers_leave_file_untouched(tmp_path, bad):
    p = tmp_path / "RESULTS.md"
    p.write_text(bad)
    with pytest.raises(ValueError):
        common.write_section("codec", "new", p)
    assert p.read_text() == bad
    assert sorted(os.listdir(tmp_path)) == ["RESULTS.md"]          # no temporary file left behind


def test_rejects_markers_inside_markdown(tmp_path):
    p = tmp_path / "RESULTS.md"
    p.write_text(DOC)
    with pytest.raises(ValueError):
        common.write_section("codec", "<!-- codec:end -->", p)
    assert p.read_text() == DOC


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "RESULTS.md"
    p.write_text(DOC)

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(fileio.os, "replace", boom)   # the atomic writer common uses
    with pytest.raises(OSError):
        common.write_section("codec", "new", p)
    assert p.read_text() == DOC
    assert sorted(os.listdir(tmp_path)) == ["RESULTS.md"]


def test_provenance_line():
    line = common.provenance("codec.py", ["--write", "--model", "a b.safetensors"], threads=2)
    assert "command `python benchmarks/codec.py --write --model 'a b.safetensors'`" in line
    assert "2 threads" in line and common.today() in line and common.cpu_model() in line


def test_no_benchmark_script_imports_another():
    """Each script under benchmarks/ imports latentmix, common.py and the peer_models package, never another script
    (what they share lives in latentmix.evaluation or common.py)."""
    import ast
    root = _PATH.parent
    scripts = {p.stem for p in root.glob("*.py")} - {"common"}
    assert {"codec", "separation", "peers", "data", "long_input"} <= scripts
    assert not (root / "peers").exists()                 # the peer package no longer shares the script's name
    for name in sorted(scripts):
        tree = ast.parse((root / f"{name}.py").read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
        assert not imported & scripts, f"benchmarks/{name}.py imports the script(s) {sorted(imported & scripts)}"


def test_parse_named_and_fmt_params():
    from latentmix.errors import ConfigError
    assert common.parse_named(["a=x.safetensors", " b = y "]) == [("a", "x.safetensors"), ("b", "y")]
    with pytest.raises(ConfigError, match="expected NAME=PATH"):
        common.parse_named(["nopath"], "--peer")
    with pytest.raises(ConfigError, match="already used"):
        common.parse_named(["IRM=x"], reserved={"IRM"})
    assert [common.fmt_params(n) for n in (None, 6700, 123_456)] == ["-", "6.7 k", "0.12 M"]


def _write_many(args):
    path, name = args
    for i in range(100):
        common.write_section(name, f"## {name}\n{name} run {i}\n", path)


def test_write_section_side_by_side_keeps_both(tmp_path):
    """Two benchmarks writing their sections at once: neither write is lost (a lock around read-modify-write)."""
    import multiprocessing
    p = tmp_path / "RESULTS.md"
    p.write_text("# Benchmark results\n")
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(_write_many, [(p, "alpha"), (p, "beta")])
    text = p.read_text()
    assert "alpha run 99" in text and "beta run 99" in text     # without the lock, usually one is lost
