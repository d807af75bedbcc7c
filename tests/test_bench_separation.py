"""benchmarks/separation.py end to end on the tiny dataset: a random spec separator, the IRM and a random codec."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "separation.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_separation", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(autouse=True)
def _one_thread():
    """The script sets torch's thread count; restore it for the tests that follow."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    from latentmix.codec.model import Codec
    from latentmix.separation.models import build_separator
    d = tmp_path_factory.mktemp("bench_sep")
    torch.manual_seed(0)
    build_separator({"arch": "spec", "channels": 8, "hidden": 8, "layers": 1,
                     "segment_seconds": 1.5}).save(d / "tiny.safetensors")
    Codec(base_channels=4, strides=[2, 4], latent_dim=8, dilations=[1, 3],
          quantizer={"type": "rvq", "num_codebooks": 2, "codebook_size": 16}).save(d / "codec.safetensors")
    return d


def test_table_rows_and_json(bench, tiny_dataset, model_files, tmp_path, monkeypatch, capsys):
    written = {}

    def fake_write_section(name, markdown):      # never touch the real benchmarks/RESULTS.md
        written[name] = markdown
        return tmp_path / "RESULTS.md"

    monkeypatch.setattr(bench, "write_section", fake_write_section)
    out = tmp_path / "sep.json"
    rc = bench.main(["--data", str(tiny_dataset), "--split", "test", "--threads", "1", "--quiet",
                     "--model", f"tiny={model_files / 'tiny.safetensors'}",
                     "--codec", str(model_files / "codec.safetensors"), "--json", str(out), "--write"])
    assert rc == 0
    md = capsys.readouterr().out
    rows = [line.split("|")[1].strip() for line in md.splitlines() if line.startswith("| ")]
    assert rows == ["method", "tiny", "IRM (oracle)", "codec ceiling"]
    assert "Targets (shipped default): not measured" in md
    assert written == {"separation": md.rstrip("\n")}
    res = json.loads(out.read_text())
    assert res["tracks"] == 1 and res["threads"] == 1
    irm, tiny = res["rows"]["IRM (oracle)"], res["rows"]["tiny"]
    assert irm["windows"] > 0 and irm["All"] > 5 and irm["pct_irm"] == pytest.approx(100)
    assert tiny["params"] > 0 and irm["params"] is None and tiny["xrt"] > 0
    assert tiny["pct_irm"] == pytest.approx(100 * tiny["All"] / irm["All"])


def test_variant_rows_run_each_model_with_another_segment_and_overlap(bench, tiny_dataset, model_files, capsys):
    """--variant SEGMENT:OVERLAP: a row per model with that segment and overlap, its detail line says so; the
    default row is unchanged; a malformed variant is a one-line error naming it."""
    args = ["--data", str(tiny_dataset), "--split", "test", "--threads", "1", "--quiet",
            "--model", f"tiny={model_files / 'tiny.safetensors'}"]
    out, md = bench.run(args + ["--variant", "1:0", "--variant", "2.5:0.5"])
    assert list(out["rows"]) == ["tiny", "tiny --segment 1 --overlap 0", "tiny --segment 2.5 --overlap 0.5",
                                 "IRM (oracle)"]
    assert "(arch spec, segment 1.5 s, overlap 0.25," in out["rows"]["tiny"]["detail"]
    assert "(arch spec, segment 2.5 s, overlap 0.5," in out["rows"]["tiny --segment 2.5 --overlap 0.5"]["detail"]
    plain, _ = bench.run(args)
    assert plain["rows"]["tiny"]["All"] == out["rows"]["tiny"]["All"]
    assert out["rows"]["tiny --segment 1 --overlap 0"]["All"] != out["rows"]["tiny"]["All"]
    for bad in ("12", "0:0.1", "12:1", "x:0.1", "inf:0.1"):
        capsys.readouterr()
        assert bench.main(args + ["--variant", bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: --variant {bad}:") and err.count("\n") == 1


def test_missing_model_is_one_line_error(bench, tiny_dataset, capsys):
    rc = bench.main(["--data", str(tiny_dataset), "--quiet", "--threads", "1",
                     "--model", "gone=/no/such/model.safetensors"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1


def test_targets(bench):
    rows = {bench.SHIPPED_ROW: {"All": 9.0, "pct_irm": 45.0, "xrt": 30.0}}
    t = bench.check_targets(rows)
    assert {k: v["pass"] for k, v in t.items()} == {"all_db": True, "pct_irm": False, "xrt": True}
    assert bench.check_targets({}) == {}


def test_targets_non_silent(bench):
    """Issue #19's targets read the non-silent figures: % of IRM against --irm-target, bass > 8, lowest stem >= 0."""
    row = {"All": 9.0, "pct_irm": 45.0, "xrt": 30.0, "All (non-silent)": 7.0, "pct_irm_ns": 55.0,
           "bass (non-silent)": 8.5, "drums (non-silent)": 9.0, "guitar (non-silent)": -0.5, "piano (non-silent)": 4.0}
    t = bench.check_targets({bench.SHIPPED_ROW: row})
    assert t["pct_irm_ns"]["pass"] and t["bass_ns"]["pass"] and not t["min_stem_ns"]["pass"]
    assert t["min_stem_ns"]["value"] == -0.5
    assert not bench.check_targets({bench.SHIPPED_ROW: row}, irm_target=60.0)["pct_irm_ns"]["pass"]
    md = bench.markdown({"stems": ["bass", "drums", "guitar", "piano"], "rows": {}, "targets": t, "tracks": 1,
                         "audio_seconds": 1.0},
                        {"data": "d", "split": "test", "machine": "m", "date": "x", "command": "c", "threads": 1,
                         "device": "cpu"})
    assert "Issue #19 targets, non-silent stems: All of IRM 55.0 % (target >= 50.0 %): PASS; bass 8.50 dB" in md
    assert "lowest stem -0.50 dB (target >= 0.00 dB): MISS" in md
    # one decimal: 49.8 % must not print as "50 %" beside a MISS
    near = bench.check_targets({bench.SHIPPED_ROW: {**row, "pct_irm_ns": 49.8}})
    md = bench.markdown({"stems": ["bass", "drums", "guitar", "piano"], "rows": {}, "targets": near, "tracks": 1,
                         "audio_seconds": 1.0},
                        {"data": "d", "split": "test", "machine": "m", "date": "x", "command": "c", "threads": 1,
                         "device": "cpu"})
    assert "All of IRM 49.8 % (target >= 50.0 %): MISS" in md


def test_stems_scores_a_five_stem_separator_on_other(bench, tiny_dataset, tmp_path, monkeypatch, capsys):
    """--stems with other: a five-stem model and the IRM get an `other` column; a four-stem model is refused."""
    import shutil
    import soundfile as sf
    from latentmix.data.datasets import list_tracks
    from latentmix.separation.models import build_separator
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset / "test", root / "test")
    for track in list_tracks(root, "test"):                  # an other part: a quiet 440 Hz tone
        n = sf.info(str(track / "bass.wav")).frames
        tone = 0.1 * torch.sin(2 * torch.pi * 440 * torch.arange(n) / 22050)
        sf.write(str(track / "other.wav"), tone.numpy(), 22050, subtype="FLOAT")
    torch.manual_seed(0)
    cfg = {"arch": "spec", "channels": 8, "hidden": 8, "layers": 1, "segment_seconds": 1.5}
    build_separator({**cfg, "stems": ["bass", "drums", "guitar", "piano", "other"]}).save(tmp_path / "five.safetensors")
    build_separator(cfg).save(tmp_path / "four.safetensors")
    out = tmp_path / "sep.json"
    rc = bench.main(["--data", str(root), "--threads", "1", "--quiet", "--stems", "bass,drums,guitar,piano,other",
                     "--model", f"five={tmp_path / 'five.safetensors'}", "--json", str(out)])
    assert rc == 0
    md = capsys.readouterr().out
    assert "| method | bass | drums | guitar | piano | other | All |" in md and "heard and scored" in md
    res = json.loads(out.read_text())
    assert res["stems"] == ["bass", "drums", "guitar", "piano", "other"]
    irm = res["rows"]["IRM (oracle)"]
    assert irm["other"] > 5 and irm["All"] == pytest.approx(sum(irm[s] for s in res["stems"]) / 5)
    rc = bench.main(["--data", str(root), "--threads", "1", "--quiet", "--stems", "bass,drums,guitar,piano,other",
                     "--model", f"four={tmp_path / 'four.safetensors'}"])
    err = capsys.readouterr().err
    assert rc == 2 and "other" in err and err.count("\n") == 1
    assert bench.main(["--data", str(root), "--quiet", "--stems", "bass,violin"]) == 2
    assert "--stems bass,violin" in capsys.readouterr().err


def test_profile_script_lists_operators(tiny_dataset, model_files, capsys):
    """benchmarks/separator_profile.py: real time and an operator table for a separator file; bad file: one line."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "separator_profile.py"
    spec = importlib.util.spec_from_file_location("bench_separator_profile", path)
    prof = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prof)
    args = ["--data", str(tiny_dataset), "--seconds", "2", "--threads", "1", "--top", "5"]
    assert prof.run(["--model", str(model_files / "tiny.safetensors"), *args]) == 0
    out = capsys.readouterr().out
    assert "x real time (best of 3, no profiler; " in out and "% of the CPU time in the kernel)" in out
    assert "| operator | calls | self CPU ms | share |" in out
    assert len([ln for ln in out.splitlines() if ln.startswith("| `aten::")]) == 5
    assert prof.run_main(prof.run, ["--model", str(model_files / "tiny.safetensors"), *args, "--repeats", "0"]) == 2
    assert "--repeats 0: must be at least 1" in capsys.readouterr().err
    assert prof.run_main(prof.run, ["--model", str(model_files / "missing.safetensors"), *args]) == 2
    assert "missing.safetensors" in capsys.readouterr().err
