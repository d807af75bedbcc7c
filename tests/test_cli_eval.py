"""`latentmix separate` and `latentmix eval` end to end on a tiny generated MSDM folder; one-line errors."""
import argparse
import importlib
import json
import math

import numpy as np
import pytest

from latentmix.audio import read_audio, write_audio
from latentmix.errors import LatentmixError

SR = 22050
STEMS = ("bass", "drums", "guitar", "piano")


@pytest.fixture(scope="module")
def msdm_root(tmp_path_factory):
    """DATA/test/Track0000{1,2}/{bass,drums,guitar,piano}.wav: sines and noise bursts, 7 s, piano silent 0-3 s."""
    root = tmp_path_factory.mktemp("msdm")
    rng = np.random.default_rng(0)
    t = np.arange(7 * SR) / SR
    for k, track in enumerate(["Track00001", "Track00002"]):
        bass = 0.3 * np.sin(2 * math.pi * (55 + 10 * k) * t)
        drums = 0.2 * rng.standard_normal(t.size) * (np.mod(t, 0.5) < 0.05)
        guitar = 0.2 * np.sin(2 * math.pi * 330 * t) * (1 + 0.5 * np.sin(2 * math.pi * 2 * t))
        piano = 0.2 * np.sin(2 * math.pi * 880 * t) * (t > 3)
        for name, x in zip(STEMS, (bass, drums, guitar, piano)):
            write_audio(root / "test" / track / f"{name}.wav", x[None].astype(np.float32), SR)
    return root


def _parser():
    """Our two groups on a private parser, so these tests run before every other group exists."""
    p = argparse.ArgumentParser(prog="latentmix")
    p.add_argument("--debug", action="store_true")
    sub = p.add_subparsers(dest="command")
    for g in ("separate", "eval"):
        importlib.import_module(f"latentmix.cli.{g}").register(sub)
    return p


def _run(argv):
    args = _parser().parse_args(argv)
    return args.func(args)


def test_separate_then_eval_separation(msdm_root, tmp_path, capsys):
    out = tmp_path / "sep"
    assert _run(["separate", str(msdm_root / "test"), "-o", str(out), "--method", "oracle-irm",
                 "--segment", "3", "--quiet"]) == 0
    for track in ("Track00001", "Track00002"):
        for s in STEMS:
            assert read_audio(out / track / f"{s}.wav").shape[-1] == 7 * SR
    capsys.readouterr()
    js = tmp_path / "res.json"
    assert _run(["eval", "separation", "--reference", str(msdm_root / "test"), "--estimates", str(out),
                 "--protocol", "msdm", "--json", str(js)]) == 0
    table = capsys.readouterr().out
    assert "| method (MSDM exact / non-silent stems) | bass | drums | guitar | piano | All | windows |" in table
    res = json.loads(js.read_text())
    assert res["protocol"] == "msdm" and res["version"] == 1 and res["tracks"] == 2
    assert res["results"]["windows"] == 6                       # 3 windows per 7 s track: 0, 2, 4 s
    assert res["results"]["All"] > 10                           # the oracle separates the tiny mix well


def test_separate_stems_subset_and_mixture_file(msdm_root, tmp_path):
    track = msdm_root / "test" / "Track00001"
    mix = read_audio(track / "bass.wav") * 0
    for s in STEMS:
        mix = mix + read_audio(track / f"{s}.wav")
    mix_dir = tmp_path / "Track00001"
    for s in STEMS:
        write_audio(mix_dir / f"{s}.wav", read_audio(track / f"{s}.wav"), SR)
    write_audio(mix_dir / "mix.wav", mix * 0.5, SR)
    out = tmp_path / "sep"
    assert _run(["separate", str(mix_dir / "mix.wav"), "-o", str(out), "--method", "oracle-irm",
                 "--stems", "bass,drums", "--quiet"]) == 0
    assert sorted(p.name for p in (out / "Track00001").iterdir()) == ["bass.wav", "drums.wav"]


def test_eval_msdm_end_to_end(msdm_root, tmp_path, capsys):
    js = tmp_path / "msdm.json"
    assert _run(["eval", "msdm", "--data", str(msdm_root), "--split", "test", "--method", "oracle-irm",
                 "--json", str(js), "--quiet"]) == 0
    res = json.loads(js.read_text())
    assert res["results"]["windows"] == 6 and res["results"]["All"] > 10
    assert set(res["per_track"]) == {"Track00001", "Track00002"}
    assert "oracle-irm" in capsys.readouterr().out


@pytest.mark.parametrize("argv,match", [
    (["eval", "separation", "--reference", "/nope", "--estimates", "/nope"], "no such folder"),
    (["eval", "separation", "--reference", "{root}/test", "--estimates", "{root}", "--protocol", "bogus"],
     "unknown evaluation protocol 'bogus'"),
    (["eval", "msdm", "--data", "{root}", "--split", "nosplit", "--method", "oracle-irm"], "no such split"),
    (["separate", "{root}/test", "--method", "bogus"], "unknown or unavailable separation method 'bogus'"),
    (["separate", "{root}/test", "--method", "oracle-irm", "--stems", "vocals"], "unknown stem"),
])
def test_bad_input_errors(msdm_root, argv, match):
    argv = [a.replace("{root}", str(msdm_root)) for a in argv]
    with pytest.raises(LatentmixError, match=match) as e:
        _run(argv)
    assert "\n" not in str(e.value)


def test_corrupt_estimate_is_one_line(msdm_root, tmp_path):
    est = tmp_path / "est"
    for track in ("Track00001", "Track00002"):
        for s in STEMS:
            (est / track).mkdir(parents=True, exist_ok=True)
            (est / track / f"{s}.wav").write_bytes(b"RIFF not really a wav file")
    with pytest.raises(LatentmixError, match="not a readable audio file") as e:
        _run(["eval", "separation", "--reference", str(msdm_root / "test"), "--estimates", str(est)])
    assert "\n" not in str(e.value)


def _main_or_skip():
    try:
        from latentmix.cli import build_parser, main
        build_parser()
    except ImportError as e:
        pytest.skip(f"not every CLI group exists yet ({e})")
    return main


def test_main_one_line_errors(msdm_root, tmp_path, capsys):
    main = _main_or_skip()
    assert main(["eval", "separation", "--reference", str(tmp_path / "nope"), "--estimates", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert main(["eval", "separation", "--reference", str(msdm_root / "test"), "--estimates", str(tmp_path),
                 "--protocol", "bogus"]) == 2
    assert "unknown evaluation protocol" in capsys.readouterr().err
    assert main(["separate", str(msdm_root / "test"), "-o", str(tmp_path / "o"), "--method", "bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
