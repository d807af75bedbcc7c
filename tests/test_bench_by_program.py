"""benchmarks/separation_by_program.py: per-program means from a separation JSON, and its one-line errors."""
import importlib.util
import json
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "separation_by_program.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_by_program", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def scored(tmp_path):
    """Three test tracks (guitar programs 30, 30, 26) and a JSON with a model row and the IRM's."""
    programs = {"T0": 30, "T1": 30, "T2": 26}
    for name, prog in programs.items():
        d = tmp_path / "data" / "test" / name
        d.mkdir(parents=True)
        (d / "guitar.wav").write_bytes(b"")
        (d / "metadata.json").write_text(json.dumps({"programs": {"guitar": [prog], "bass": [33]}}))
    model = {"T0": -6.0, "T1": -4.0, "T2": 8.0}
    irm = {"T0": 4.0, "T1": 5.0, "T2": 20.0}
    rows = {"m": {"per_track": {t: {"guitar (non-silent)": v, "bass (non-silent)": 9.0} for t, v in model.items()}},
            "IRM (oracle)": {"per_track": {t: {"guitar (non-silent)": v, "bass (non-silent)": 12.0}
                                           for t, v in irm.items()}}}
    res = {"rows": rows, "data": str(tmp_path / "data"), "split": "test", "stems": ["bass", "drums", "guitar"],
           "command": "python benchmarks/separation.py ...", "date": "2026-12-01"}
    path = tmp_path / "sep.json"
    path.write_text(json.dumps(res))
    return path


def test_means_per_program_beside_the_irm(bench, scored):
    tables, md = bench.run(["--json", str(scored)])
    assert set(tables) == {"bass", "guitar"}                      # every scored stem but drums
    g = tables["guitar"]
    assert g["30 distorted guitar"] == {"tracks": 2, "m": -5.0, "IRM (oracle)": 4.5}
    assert g["26 jazz guitar"] == {"tracks": 1, "m": 8.0, "IRM (oracle)": 20.0}
    assert tables["bass"]["33 fingered bass"]["tracks"] == 3
    assert "| 30 distorted guitar | 2 | -5.00 | 4.50 |" in md


def test_bad_inputs_are_one_line_errors(bench, scored, tmp_path):
    from latentmix.errors import InputError
    with pytest.raises(InputError, match="nowhere.json: no such file"):
        bench.run(["--json", str(tmp_path / "nowhere.json")])
    bad = tmp_path / "bad.json"
    bad.write_text("{\"rows\": ")
    with pytest.raises(InputError, match="bad.json: not a readable JSON file"):
        bench.run(["--json", str(bad)])
    with pytest.raises(InputError, match="no row named 'x'"):
        bench.run(["--json", str(scored), "--row", "x"])
    assert bench.main(["--json", str(tmp_path / "nowhere.json")]) == 2
