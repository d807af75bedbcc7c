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


# ------------------------------------------------------------------ issue 21: the encodec-like CLI, safe outputs


def stereo(path, sr=44100, n=9000):
    rng = np.random.default_rng(1)
    x = (0.2 * rng.standard_normal((n, 2))).astype(np.float32)
    sf.write(path, x, sr, subtype="FLOAT")
    return x


def test_codes_keep_the_sources_rate_and_channels(setup):
    model, _, tmp = setup
    stereo(tmp / "st.wav")
    assert run(["codec", "encode", str(tmp / "st.wav"), "-o", str(tmp / "st.lmxc"), "--model", str(model),
                "--quiet"]) == 0
    codes, h = read_codes(tmp / "st.lmxc")
    assert codes.shape[0] == 2 and (h["source_sample_rate"], h["source_channels"], h["source_length"]) == (44100, 2,
                                                                                                            9000)
    assert run(["codec", "decode", str(tmp / "st.lmxc"), "-o", str(tmp / "st_dec.wav"), "--model", str(model),
                "--quiet"]) == 0
    i = sf.info(tmp / "st_dec.wav")
    assert (i.samplerate, i.channels, i.frames) == (44100, 2, 9000)
    assert run(["codec", "roundtrip", str(tmp / "st.wav"), "-o", str(tmp / "rt.flac"), "--model", str(model),
                "--quiet", "--sr", "22050", "--mono"]) == 0
    i = sf.info(tmp / "rt.flac")
    assert (i.samplerate, i.channels, i.frames, i.format) == (22050, 1, 4500, "FLAC")


def test_bandwidth_maps_to_levels(setup):
    model, audio, tmp = setup
    m = Codec.load(model)                                      # 4 levels of 16 codes at 2756 frames/s: 11.0 kbps each
    per = m.bitrate(1) / 1000
    for kbps, levels in ((per * 2.5, 2), (per * 4, 4), (100.0, 4)):
        out = tmp / f"b{kbps:.0f}.lmxc"
        assert run(["codec", "encode", str(audio / "a.wav"), "-o", str(out), "-b", str(kbps), "--model", str(model),
                    "--quiet"]) == 0
        assert read_codes(out)[0].shape[1] == levels
    with pytest.raises(LatentmixError, match="below the lowest bitrate"):
        run(["codec", "encode", str(audio / "a.wav"), "-o", str(tmp / "low.lmxc"), "-b", "1", "--model", str(model)])


def test_action_from_the_extensions():
    from latentmix.cli.codec import infer_action
    assert infer_action(["codec", "x.lmxc", "-o", "y.wav"])[:2] == ["codec", "decode"]
    assert infer_action(["--debug", "codec", "x.wav", "-o", "y.lmxc"])[:3] == ["--debug", "codec", "encode"]
    assert infer_action(["codec", "x.wav", "-o", "y.wav", "-b", "6"])[1] == "roundtrip"
    assert infer_action(["codec", "encode", "x.wav", "-o", "y"]) == ["codec", "encode", "x.wav", "-o", "y"]
    assert infer_action(["separate", "x.lmxc"]) == ["separate", "x.lmxc"]


def test_decode_by_extension_through_main(setup):
    from latentmix.cli import main
    model, audio, tmp = setup
    assert main(["codec", str(audio / "a.wav"), "-o", str(tmp / "a.lmxc"), "--model", str(model), "--quiet"]) == 0
    assert main(["codec", str(tmp / "a.lmxc"), "-o", str(tmp / "a_dec.wav"), "--model", str(model), "--quiet"]) == 0
    assert sf.info(tmp / "a_dec.wav").frames == 5000


def test_roundtrip_json(setup, capsys):
    model, audio, tmp = setup
    assert run(["codec", "roundtrip", str(audio), "-o", str(tmp / "rt"), "--model", str(model), "--quiet",
                "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and {"si_sdr_db", "mel_distance", "bitrate_kbps", "num_codebooks"} <= set(rows[0])


def test_o_file_is_never_a_folder_and_outputs_never_clobber(setup, capsys):
    from latentmix.cli import main
    model, audio, tmp = setup
    # `encode song.wav -o x.wav` names a file, and codes do not go into a .wav: refused, no folder x.wav
    assert main(["codec", "encode", str(audio / "a.wav"), "-o", str(tmp / "x.wav"), "--model", str(model)]) == 2
    assert "writes a .lmxc code file" in capsys.readouterr().err and not (tmp / "x.wav").exists()
    # roundtrip onto its own input: refused, input unchanged
    before = (audio / "a.wav").read_bytes()
    assert main(["codec", "roundtrip", str(audio / "a.wav"), "-o", str(audio / "a.wav"), "--model", str(model),
                 "--force"]) == 2
    assert "output is one of the inputs" in capsys.readouterr().err and (audio / "a.wav").read_bytes() == before
    assert main(["codec", "roundtrip", str(audio / "a.wav"), "-o", str(audio), "--model", str(model)]) == 2
    assert (audio / "a.wav").read_bytes() == before
    # an existing output needs --force
    out = tmp / "c.lmxc"
    out.write_bytes(b"keep")
    assert main(["codec", "encode", str(audio / "a.wav"), "-o", str(out), "--model", str(model), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == b"keep"
    assert main(["codec", "encode", str(audio / "a.wav"), "-o", str(out), "--model", str(model), "--quiet",
                 "--force"]) == 0
    assert read_codes(out)[0].shape[0] == 1


def test_same_names_and_bad_files_in_a_batch(setup, capsys):
    from latentmix.cli import main
    model, audio, tmp = setup
    (tmp / "x").mkdir()
    sf.write(tmp / "x" / "a.wav", np.zeros(3000, np.float32), 22050)
    (tmp / "bad.wav").write_bytes(b"RIFF nope")
    assert main(["codec", "encode", str(audio / "a.wav"), str(tmp / "x" / "a.wav"), str(tmp / "bad.wav"), "-o",
                 str(tmp / "codes"), "--model", str(model), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bad.wav: not a readable audio file" in err and "1 of 3 file(s) failed" in err
    assert sorted(p.name for p in (tmp / "codes").iterdir()) == ["a.lmxc", "a_2.lmxc"]


def test_codec_help_has_descriptions_and_examples(capsys):
    from latentmix.cli import main
    for action in ("encode", "decode", "roundtrip", "info"):
        with pytest.raises(SystemExit):
            main(["codec", action, "--help"])
        out = capsys.readouterr().out
        assert "example" in out and "latentmix codec" in out
    with pytest.raises(SystemExit):
        main(["eval", "separation", "--help"])
    assert "msdm, lass" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["eval", "msdm", "--help"])
    assert "oracle-irm, supervised" in " ".join(capsys.readouterr().out.split())


def test_action_skips_option_values():
    from latentmix.cli.codec import infer_action
    argv = ["codec", "x.lmxc", "--model", "m.safetensors", "-o", "y.wav", "--quiet", "--chunk-seconds", "5"]
    assert infer_action(argv)[1] == "decode"
    assert infer_action(["codec", "x.wav", "--model", "m.safetensors", "-o", "y"])[1] == "encode"


def test_action_inferred_when_options_come_first():
    from latentmix.cli.codec import infer_action
    assert infer_action(["codec", "-o", "z.wav", "x.lmxc"])[1] == "decode"
    assert infer_action(["codec", "--quiet", "x.lmxc", "-o", "z.wav"])[1] == "decode"
    assert infer_action(["codec", "--model", "m.safetensors", "song.wav", "-o", "rt.wav"])[1] == "roundtrip"
    for unchanged in (["codec", "--help"], ["codec", "--quiet", "encode", "a.wav", "-o", "c"], ["codec"]):
        assert infer_action(unchanged) == unchanged
