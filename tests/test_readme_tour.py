"""The README's CLI tour runs as written (issue 21): every command of its code block, in order, in a scratch folder,
with sizes shrunk (10 tracks of 2 s, 1 s generated, 2 training steps, one evaluated track) and the SoundFont
swapped for one this machine has. The README keeps its real sizes; only this test shrinks them."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOUNDFONTS = ("/usr/share/sounds/sf2/TimGM6mb.sf2", "/usr/share/sounds/sf2/FluidR3_GM.sf2")
TRAIN_SMALL = ["--steps", "2", "--set", "train.batch_size=2", "--set", "train.val_every=0", "--quiet"]


def tour_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## CLI tour", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines()]
    return [re.sub(r"\s+\[--[^\]]*\]", "", line) for line in lines if line]      # optional [...] parts dropped


def shrink(cmd: str, sf2: str) -> list[str]:
    cmd = re.sub(r"--tracks \d+", "--tracks 10", cmd)
    cmd = re.sub(r"--seconds \d+", "--seconds 2", cmd)
    cmd = re.sub(r"--duration \d+", "--duration 1", cmd)
    cmd = cmd.replace("Track00180", "Track00009").replace("FluidR3_GM.sf2", sf2)
    argv = shlex.split(cmd)
    if argv[0] == "torchrun":
        argv = [sys.executable, "-m", "torch.distributed.run", *argv[1:]]
    elif argv[0] == "latentmix":
        argv = [sys.executable, "-m", "latentmix", *argv[1:]]
    if "generate" in argv and "--duration" not in argv:
        argv += ["--duration", "1"]
    if "train" in argv:
        argv += TRAIN_SMALL
    if "msdm" in argv and "--data" in argv:
        argv += ["--limit", "1", "--quiet"]
    return argv


def test_tour_parses():
    cmds = tour_commands()
    assert len(cmds) >= 15 and all(c.split()[0] in ("latentmix", "torchrun") for c in cmds)


@pytest.mark.slow
def test_readme_cli_tour_runs(tmp_path):
    sf2 = next((s for s in SOUNDFONTS if Path(s).exists()), None)
    if sf2 is None:
        pytest.skip("no General MIDI SoundFont installed (apt-get install fluid-soundfont-gm)")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for cmd in tour_commands():
        argv = shrink(cmd, sf2)
        if "separate" in argv and "song.mp3" in argv and not (tmp_path / "song.mp3").exists():
            _inputs(tmp_path)
        if "generate" in argv and not (tmp_path / "prompts.txt").exists():
            (tmp_path / "prompts.txt").write_text("a calm piano\nfast drums\n")
            shutil.copy(tmp_path / "data/slakhlike/test/Track00009/mix.wav", tmp_path / "intro.wav")
        if "render-midi" in argv and not (tmp_path / "songs").exists():
            (tmp_path / "songs").mkdir()
            shutil.copy(tmp_path / "data/slakhlike/train/Track00000/song.mid", tmp_path / "songs" / "a.mid")
        r = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
        assert r.returncode == 0, f"{cmd}\n{r.stderr[-3000:]}"
    assert sorted(p.name for p in (tmp_path / "out" / "song").iterdir()) == ["bass.mp3", "no_bass.mp3"]
    assert (tmp_path / "song_decoded.wav").exists() and (tmp_path / "runs" / "ddp" / "model.safetensors").exists()


def _inputs(tmp_path: Path) -> None:
    """song.mp3 (stereo 44.1 kHz, from a test track) and more_songs/ for the separate/codec lines."""
    import numpy as np
    import soundfile as sf
    from latentmix.audio import read_audio, to_rate
    mix = read_audio(tmp_path / "data/slakhlike/test/Track00009/mix.wav").numpy()
    x = to_rate(mix, 22050, 44100, mix.shape[-1] * 2)
    stereo = np.stack([x[0], 0.8 * x[0]], 1)
    sf.write(tmp_path / "song.mp3", stereo, 44100, format="MP3", subtype="MPEG_LAYER_III")
    (tmp_path / "more_songs").mkdir()
    sf.write(tmp_path / "more_songs" / "a.wav", stereo[: 44100], 44100)
    sf.write(tmp_path / "more_songs" / "b.flac", stereo[44100:], 44100)
