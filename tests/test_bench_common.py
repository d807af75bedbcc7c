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
