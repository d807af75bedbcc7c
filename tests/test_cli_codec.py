"""`latentmix codec` CLI on a tiny random codec: encode folders, info, decode, roundtrip, chunking, errors."""
import argparse
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from latentmix.audio import read_audio
from latentmix.cli import codec as cli_codec
from latentmix.codec.base import model_file_id
from latentmix.codec.codefile import read_codes, write_codes
from latentmix.codec.model import Codec
from latentmix.errors import LatentmixError, ModelFileError


def run(argv):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command")
    cli_codec.register(sub)
    args = p.parse_args(argv)
    return args.func(args)


@pytest.fixture()
def setup(tmp_path):
    torch.manual_seed(0)
    m = Codec(base_channels=4, strides=[2, 4], latent_dim=8, dilations=[1],
              quantizer={"type": "rvq", "num_codebooks": 4, "codebook_size": 16})
    m.train()(torch.randn(2, 1, 4000) * 0.3)  # initialise codebooks
    model = tmp_path / "tiny.safetensors"
    m.save(model)
    audio = tmp_path / "in"
    (audio / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in (("a.wav", 5000), ("sub/b.wav", 3333)):
        sf.write(audio / name, (0.3 * rng.standard_normal(n)).astype(np.float32), 22050, subtype="FLOAT")
    return model, audio, tmp_path


def test_encode_info_decode_folder(setup, capsys):
    model, audio, tmp = setup
    assert run(["codec", "encode", str(audio), "-o", str(tmp / "codes"), "--model", str(model), "--quiet",
                "--chunk-seconds", "0.02"]) == 0
    codes, h = read_codes(tmp / "codes" / "sub" / "b.lmxc")
    assert codes.shape == (1, 4, 417) and h["original_length"] == 3333 and h["sample_rate"] == 22050
    m = Codec.load(model)
    whole = m.encode(read_audio(audio / "sub" / "b.wav")[None])
    assert torch.equal(codes, whole)  # chunked (many chunks) == whole-file codes
    # the header is the contract's (codec/base.py), with the model file's identity and the source name
    expect = m.code_header(3333, 56, model_file_id(model), source="b.wav")   # 0.02 s = 55.1 frames
    assert {k: h[k] for k in expect} == expect and h["model_kind"] == "codec"
    assert run(["codec", "info", str(tmp / "codes" / "a.lmxc")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["original_length"] == 5000 and info["duration_seconds"] == round(5000 / 22050, 3)
    assert info["bitrate_bps"] == round(m.bitrate(4), 1) == round(22050 / 8 * 4 * 4, 1)
    assert run(["codec", "decode", str(tmp / "codes"), "-o", str(tmp / "wav"), "--model", str(model),
                "--quiet"]) == 0
    assert sf.info(tmp / "wav" / "sub" / "b.wav").frames == 3333
    assert sf.info(tmp / "wav" / "a.wav").frames == 5000


def test_num_codebooks_and_single_file(setup):
    model, audio, tmp = setup
    out = tmp / "one.lmxc"
    run(["codec", "encode", str(audio / "a.wav"), "-o", str(out), "--model", str(model), "--quiet",
         "--num-codebooks", "2"])
    codes, h = read_codes(out)
    assert codes.shape[:2] == (1, 2) and h["num_codebooks"] == 2
    run(["codec", "decode", str(out), "-o", str(tmp / "one.wav"), "--model", str(model), "--quiet"])
    assert sf.info(tmp / "one.wav").frames == 5000
    with pytest.raises(LatentmixError):
        run(["codec", "encode", str(audio / "a.wav"), "-o", str(out), "--model", str(model), "--quiet",
             "--num-codebooks", "9"])


def test_roundtrip_prints_metrics(setup, capsys):
    model, audio, tmp = setup
    run(["codec", "roundtrip", str(audio / "a.wav"), "-o", str(tmp / "rt"), "--model", str(model), "--quiet"])
    line = capsys.readouterr().out
    assert "si_sdr=" in line and "mel_distance=" in line and "kbps" in line
    assert (tmp / "rt" / "a.wav").exists()


def test_errors_are_clear(setup, tmp_path):
    model, audio, tmp = setup
    with pytest.raises(ModelFileError, match="no such model file"):
        run(["codec", "encode", str(audio), "-o", str(tmp / "x"), "--model", str(tmp / "nope.safetensors")])
    bad = tmp / "bad.lmxc"
    bad.write_bytes(b"garbage!")
    with pytest.raises(ModelFileError, match="bad magic"):
        run(["codec", "decode", str(bad), "-o", str(tmp / "y"), "--model", str(model), "--quiet"])


def test_decode_checks_the_header_with_the_contract(setup, capsys):
    model, audio, tmp = setup
    out = tmp / "one.lmxc"
    run(["codec", "encode", str(audio / "a.wav"), "-o", str(out), "--model", str(model), "--quiet"])
    codes, h = read_codes(out)
    write_codes(tmp / "sr.lmxc", codes, dict(h, sample_rate=44100))
    with pytest.raises(ModelFileError, match="sample_rate 44100 does not match"):
        run(["codec", "decode", str(tmp / "sr.lmxc"), "-o", str(tmp / "x.wav"), "--model", str(model), "--quiet"])
    write_codes(tmp / "two.lmxc", codes.expand(2, -1, -1), h)
    with pytest.raises(ModelFileError, match="holds 2 signals"):
        run(["codec", "decode", str(tmp / "two.lmxc"), "-o", str(tmp / "x.wav"), "--model", str(model), "--quiet"])
    write_codes(tmp / "other.lmxc", codes, dict(h, model_sha256="0" * 16, model="other.safetensors"))
    run(["codec", "decode", str(tmp / "other.lmxc"), "-o", str(tmp / "o.wav"), "--model", str(model)])
    assert "encoded with another model (other.safetensors)" in capsys.readouterr().err
    assert sf.info(tmp / "o.wav").frames == 5000
