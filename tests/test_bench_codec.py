"""benchmarks/codec.py end to end on the tiny dataset with a random tiny codec: every section is rendered from
latentmix.evaluation.codec's records, --write replaces only the codec section, and it refuses an untrained model."""
import importlib.util
from pathlib import Path

import pytest
import torch

from latentmix.evaluation.codec import opus_available

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "codec.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_codec", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(autouse=True)
def _restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def codec_files(tmp_path_factory):
    from latentmix.codec.model import Codec
    d = tmp_path_factory.mktemp("bench_codec")
    torch.manual_seed(0)
    c = Codec(base_channels=4, strides=[2, 4], latent_dim=8, dilations=[1, 3],
              quantizer={"type": "rvq", "num_codebooks": 2, "codebook_size": 16})
    c.save(d / "trained.safetensors", {"steps": 3, "wall_time_s": 60})
    c.save(d / "untrained.safetensors")
    return d


def test_sections_and_write(bench, tiny_dataset, codec_files, tmp_path, monkeypatch, capsys):
    written = {}
    monkeypatch.setattr(bench, "write_section", lambda name, md: written.setdefault(name, md) and tmp_path)
    rc = bench.main(["--model", str(codec_files / "trained.safetensors"), "--data", str(tiny_dataset), "--split",
                     "train", "--seconds", "0.5", "--max-tracks", "2", "--threads", "1", "--speed-seconds", "1",
                     "--no-profile", "--quiet", "--write"])
    assert rc == 0
    md = capsys.readouterr().out
    assert written == {"codec": md.rstrip("\n")}
    for heading in ("## Codec", "### Reconstruction", "### Opus alignment", "### Code usage (2 levels, 2758 frames",
                    "### Speed (encode 2 codebooks + decode, 1 s mixture", "### Targets"):
        assert heading in md
    rows = [line.split("|")[1].strip() for line in md.splitlines() if line.startswith("| ")]
    assert rows[:3] == ["system", "codec, 1 codebook", "codec, 2 codebooks"]
    assert "(trained 3 steps in 1 min)" in md and "2 tracks; the mixture (sum of the 4 stems) cut to 0.5 s" in md
    if opus_available():
        # 6/8/12 kbps and the smallest hard-CBR rates >= the codec's 11.03 and 22.05 kbps
        assert [r for r in rows if r.startswith("Opus hard-cbr")] == [f"Opus hard-cbr (asked {k})" for k in
                                                            ("6.00", "8.00", "11.20", "12.00", "22.40")]
        assert "mel distance better than Opus at the same bitrate" in md and "n/a" not in md.split("### Targets")[1]
    else:
        assert "Opus rows skipped" in md


def test_refuses_to_write_an_untrained_model(bench, tiny_dataset, codec_files, capsys):
    rc = bench.main(["--model", str(codec_files / "untrained.safetensors"), "--data", str(tiny_dataset),
                     "--write", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "no training provenance" in err and err.count("\n") == 1


def test_missing_data_is_one_line_error(bench, codec_files, tmp_path, capsys):
    rc = bench.main(["--model", str(codec_files / "trained.safetensors"), "--data", str(tmp_path / "none"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1
