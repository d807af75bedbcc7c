"""`latentmix codec` CLI on a tiny random codec: encode folders, info, decode, roundtrip, chunking, errors."""
import argparse

import numpy as np
import pytest
import soundfile as sf
import torch

from latentmix.audio import read_audio
from latentmix.cli import codec as cli_codec
from latentmix.codec.codefile import read_codes
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
    assert codes.shape == (4, 417) and h["original_length"] == 3333 and h["sample_rate"] == 22050
    m = Codec.load(model)
    whole = m.encode(read_audio(audio / "sub" / "b.wav")[None])[0]
    assert torch.equal(codes, whole)  # chunked (many chunks) == whole-file codes
    assert run(["codec", "info", str(tmp / "codes" / "a.lmxc")]) == 0
    assert '"original_length": 5000' in capsys.readouterr().out
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
    assert codes.shape[0] == 2 and h["num_codebooks"] == 2
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
