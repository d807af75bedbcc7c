"""Packaging (issue 21 item 9): presets ship as package data; pyproject keeps a torch range (the Makefile pins the
build); the built wheel, installed into a fresh venv, runs `separate`, `codec` and `train --steps 2` from another
folder; `--help` needs no torch."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_torch_range_and_license():
    try:
        import tomllib
    except ModuleNotFoundError:                   # Python 3.10
        pytest.skip("tomllib needs Python 3.11")
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_dep = next(d for d in meta["dependencies"] if d.startswith("torch"))
    assert "==" not in torch_dep and ">=" in torch_dep and "2.13.0" not in torch_dep
    assert meta["license"] == "MIT"                                    # an SPDX string, not the deprecated table
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text()
    assert "-c constraints.txt" in (ROOT / "Makefile").read_text()


def test_presets_named_in_help_and_readme_exist():
    from latentmix.cli.train import EPILOG
    from latentmix.config import presets
    text = EPILOG + (ROOT / "README.md").read_text()
    named = re.findall(r"train (codec|separator|prior) --config ([\w-]+)(?=\s)", text)
    assert named
    for group, name in named:
        assert name in presets(group), (group, name)


def test_unknown_preset_lists_the_known_ones():
    from latentmix.config import resolve_config_path
    from latentmix.errors import ConfigError
    with pytest.raises(ConfigError, match=r"unknown codec preset 'nope' \(known: .*cpu_v2"):
        resolve_config_path("nope", "codec")


def test_help_imports_no_torch():
    code = ("import sys; from latentmix.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'numpy', 'soundfile', 'tqdm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")}).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_wheel_installs_and_runs_from_another_folder(tmp_path):
    """Build the wheel, install it (no deps, offline) into a fresh venv that borrows this venv's dependencies
    through a .pth line (not its latentmix), and run the CLI from a folder outside the repository."""
    import site
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(ROOT)], check=True, capture_output=True, timeout=600)
    whl = next(wheels.glob("latentmix-*.whl"))
    names = zipfile.ZipFile(whl).namelist()
    assert "latentmix/configs/codec/cpu_small.yaml" in names
    assert "latentmix/pretrained/codec_default.safetensors" in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    # --ignore-installed: pip runs from this venv and would otherwise see its (editable) latentmix as installed
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index",
                    "--ignore-installed", str(whl)], check=True, capture_output=True, timeout=600)
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "borrowed_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    lm = str(venv / "bin" / "latentmix")

    def run(*args):
        r = subprocess.run([lm, *args], cwd=work, capture_output=True, text=True, env=env, timeout=900)
        assert r.returncode == 0, (args, r.stderr[-2000:])
        return r.stdout

    where = subprocess.run([str(py), "-c", "import latentmix; print(latentmix.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv)), where                                 # the wheel, not the checkout
    run("data", "synth", "--out", "data", "--tracks", "3", "--seconds", "2", "--quiet")
    run("separate", "data/train/Track00000", "-o", "sep", "--quiet")
    assert sorted(p.name for p in (work / "sep" / "Track00000").iterdir()) == [
        "bass.wav", "drums.wav", "guitar.wav", "piano.wav"]
    run("codec", "encode", "data/train/Track00000/mix.wav", "-o", "mix.lmxc", "--quiet")
    run("codec", "mix.lmxc", "-o", "mix_decoded.wav", "--quiet")
    run("train", "codec", "--config", "cpu_small", "--data", "data", "--out", "run", "--steps", "2", "--quiet",
        "--set", "train.batch_size=2", "--set", "train.segment_seconds=0.5")
    assert (work / "run" / "model.safetensors").exists()
