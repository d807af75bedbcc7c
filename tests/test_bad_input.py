"""The bad-input battery (issue 20): every bad or unusual input a new user or an attacker may give the CLI.

A refusal is exit status 2 with one stderr line `error: ...` naming the file (or the flag), no traceback, nothing
written and nothing existing changed; an accepted input exits 0 with finite outputs. Most cases call the CLI's
entry function in-process; a handful run real processes. The code-file reader, the model-header reader and the
config parser are fuzzed with hypothesis (derandomized: the same examples every run). With
LATENTMIX_ROBUSTNESS_LOG=FILE every case appends its outcome as a JSON line (benchmarks/robustness.py counts them).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentmix.checkpoint import load_tensors, read_header, save_tensors
from latentmix.cli import main
from latentmix.separation import registry
from latentmix.codec.codefile import read_codes, write_codes
from latentmix.codec.model import Codec
from latentmix.config import apply_overrides, load_yaml
from latentmix.errors import LatentmixError
from latentmix.train.settings import check_config

SR = 22050
ROOT = Path(__file__).resolve().parents[1]
FUZZ = settings(derandomize=True, max_examples=40, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


# ------------------------------------------------------------------------------------------------ the harness

def snapshot(*roots) -> dict:
    """{path: (size, sha1)} of every file under roots (what a refusal must leave exactly as it was)."""
    out = {}
    for root in roots:
        for p in sorted(Path(root).rglob("*")):
            if p.is_file() and not p.is_symlink():
                out[str(p)] = (p.stat().st_size, hashlib.sha1(p.read_bytes()).hexdigest())
            elif p.is_dir():
                out[str(p)] = "dir"
    return out


def record(case: str, **outcome) -> None:
    log = os.environ.get("LATENTMIX_ROBUSTNESS_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"case": case, **outcome}) + "\n")


def cli(argv, capsys):
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return rc, err


def refuse(case, argv, capsys, names, roots):
    """Run argv; assert a clean refusal naming `names`, with nothing under `roots` written or changed."""
    before = snapshot(*roots)
    try:
        rc, err = cli(argv, capsys)
    except BaseException as e:          # a crash: recorded, then failed
        record(case, expect="refuse", rc=None, crash=type(e).__name__)
        raise
    lines = [x for x in err.strip().splitlines() if x.strip()]
    after = snapshot(*roots)
    written = sorted(set(after) - set(before))
    changed = sorted(k for k in before if after.get(k) != before[k])
    record(case, expect="refuse", rc=rc, lines=len(lines), traceback="Traceback" in err, written=len(written),
           changed=len(changed), message=lines[-1] if lines else "")
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert any(str(n) in lines[0] for n in names), (lines[0], names)
    assert not written and not changed, (written, changed)


def accept(case, argv, capsys, outputs):
    rc, err = cli(argv, capsys)
    record(case, expect="accept", rc=rc, traceback="Traceback" in err)
    assert rc == 0, err
    for o in outputs:
        files = [p for p in Path(o).rglob("*") if p.is_file()] if Path(o).is_dir() else [Path(o)]
        assert files, o
        for f in files:
            if f.suffix == ".wav":
                data, _ = sf.read(f)
                assert np.isfinite(data).all() and data.size, f


# ------------------------------------------------------------------------------------------------ fixtures

def _noise(n, ch=1, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal((n, ch))).astype(np.float32)


GOOD_AUDIO = {   # name: (frames, rate, channels, subtype, format)
    "all_zero.wav": (SR, SR, 1, "PCM_16", "WAV"),
    "ten_ms.wav": (SR // 100, SR, 1, "PCM_16", "WAV"),
    "pcm8.wav": (SR, SR, 1, "PCM_U8", "WAV"),
    "pcm16.wav": (SR, SR, 1, "PCM_16", "WAV"),
    "pcm24.wav": (SR, SR, 1, "PCM_24", "WAV"),
    "pcm32.wav": (SR, SR, 1, "PCM_32", "WAV"),
    "float32.wav": (SR, SR, 1, "FLOAT", "WAV"),
    "float64.wav": (SR, SR, 1, "DOUBLE", "WAV"),
    "rate8k.wav": (8000, 8000, 1, "PCM_16", "WAV"),
    "rate96k.wav": (96000, 96000, 1, "PCM_24", "WAV"),
    "six_channels.wav": (SR, SR, 6, "PCM_16", "WAV"),
    "stereo.flac": (SR, 44100, 2, "PCM_16", "FLAC"),
    "vorbis.ogg": (SR, SR, 1, "VORBIS", "OGG"),
    "ünïcødé 音楽 song.wav": (SR, SR, 1, "PCM_16", "WAV"),
}
BAD_AUDIO = ["empty.wav", "text_as.wav", "truncated.wav", "truncated.flac", "nan.wav", "inf.wav", "neg_inf.wav",
             "random_bytes.wav", "header_only.wav", "garbage.mp3", "missing.wav", "dangling_link.wav",
             "folder.wav"]


def _make_audio(d: Path) -> None:
    for name, (n, rate, ch, sub, fmt) in GOOD_AUDIO.items():
        x = np.zeros((n, ch), np.float32) if name.startswith("all_zero") else _noise(n, ch)
        sf.write(d / name, x, rate, subtype=sub, format=fmt)
    (d / "empty.wav").write_bytes(b"")
    (d / "text_as.wav").write_text("this is not audio\n" * 100)
    for ext, fmt in (("wav", "WAV"), ("flac", "FLAC")):
        sf.write(d / f"full.{ext}", _noise(SR * 2), SR, format=fmt, subtype="PCM_16")
        b = (d / f"full.{ext}").read_bytes()
        (d / f"truncated.{ext}").write_bytes(b[: len(b) // 2 + 1])
        (d / f"full.{ext}").unlink()
    for name, value in (("nan.wav", np.nan), ("inf.wav", np.inf), ("neg_inf.wav", -np.inf)):
        x = _noise(SR)
        x[100:110] = value
        sf.write(d / name, x, SR, subtype="FLOAT")
    (d / "random_bytes.wav").write_bytes(np.random.default_rng(1).bytes(5000))
    sf.write(d / "header_only.wav", np.zeros((0, 1), np.float32), SR, subtype="PCM_16")
    (d / "garbage.mp3").write_bytes(b"ID3" + np.random.default_rng(2).bytes(3000))
    os.symlink(d / "nowhere.wav", d / "dangling_link.wav")
    (d / "folder.wav").mkdir()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Inputs shared by every case: audio of every kind, a tiny codec, its codes, the shipped separator."""
    d = tmp_path_factory.mktemp("bad_input")
    (d / "audio").mkdir()
    _make_audio(d / "audio")
    torch.manual_seed(0)
    m = Codec(base_channels=4, strides=[2, 4], latent_dim=8, dilations=[1],
              quantizer={"type": "rvq", "num_codebooks": 4, "codebook_size": 16})
    m.train()(torch.randn(2, 1, 4000) * 0.3)
    m.save(d / "codec.safetensors")
    codes = torch.randint(0, 16, (1, 4, 50))
    write_codes(d / "good.lmxc", codes, m.code_header(400, 64, None, source="x.wav"))
    return d


@pytest.fixture(autouse=True)
def _one_separator_load(monkeypatch):
    """The shipped separator is loaded once for the module, not once per case (each case still runs it)."""
    monkeypatch.setattr(registry, "get_method", _cached_method)     # cli.separate imports it when it runs


_GET_METHOD = registry.get_method


@functools.lru_cache(maxsize=4)
def _cached_method(name, **opts):
    return _GET_METHOD(name, **opts)


# ------------------------------------------------------------------------------------------------ audio inputs

def _command(kind, src, out, world):
    model = ["--model", world / "codec.safetensors"]
    if kind == "separate":
        return ["separate", src, "-o", out, "--quiet"]
    return ["codec", kind, src, "-o", out, "--quiet", "--chunk-seconds", "0.5", *model]


COMMANDS = ["separate", "encode", "roundtrip"]


@pytest.mark.parametrize("kind", COMMANDS)
@pytest.mark.parametrize("name", BAD_AUDIO)
def test_bad_audio_is_refused(world, tmp_path, capsys, kind, name):
    src = world / "audio" / name
    refuse(f"audio/{kind}/{name}", _command(kind, src, tmp_path / "out", world), capsys, [name],
           [world, tmp_path])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", COMMANDS)
@pytest.mark.parametrize("name", sorted(GOOD_AUDIO))
def test_unusual_audio_is_accepted(world, tmp_path, capsys, kind, name):
    out = tmp_path / "out"
    accept(f"audio/{kind}/{name}", _command(kind, world / "audio" / name, out, world), capsys, [out])


@pytest.mark.parametrize("kind", ["separate", "encode"])
def test_fix_nonfinite_replaces_nan_with_silence(world, tmp_path, capsys, kind):
    argv = _command(kind, world / "audio" / "nan.wav", tmp_path / "out", world) + ["--fix-nonfinite"]
    accept(f"audio/{kind}/nan.wav --fix-nonfinite", argv, capsys, [tmp_path / "out"])


# ------------------------------------------------------------------------------------------------ arguments

BAD_ARGS = [
    ("separate", ["--segment", "0"]), ("separate", ["--segment", "-1"]), ("separate", ["--segment", "nan"]),
    ("separate", ["--segment", "inf"]), ("separate", ["--segment", "0.001"]), ("separate", ["--segment", "abc"]),
    ("separate", ["--overlap", "1"]), ("separate", ["--overlap", "-0.1"]), ("separate", ["--overlap", "nan"]),
    ("separate", ["--batch-size", "0"]), ("separate", ["--batch-size", "-1"]), ("separate", ["--batch-size", "1.5"]),
    ("separate", ["--stems", "bass,kazoo"]), ("separate", ["--method", "bogus"]), ("separate", ["--device", "tpu"]),
    ("encode", ["--chunk-seconds", "0"]), ("encode", ["--chunk-seconds", "-2"]), ("encode", ["--chunk-seconds", "nan"]),
    ("encode", ["--chunk-seconds", "inf"]), ("encode", ["--num-codebooks", "0"]),
    ("encode", ["--num-codebooks", "-1"]), ("encode", ["--num-codebooks", "9"]),
    ("roundtrip", ["--num-codebooks", "0"]), ("roundtrip", ["--chunk-seconds", "nan"]),
]


@pytest.mark.parametrize("kind,extra", BAD_ARGS, ids=[f"{k}{' '.join(e)}" for k, e in BAD_ARGS])
def test_bad_arguments_are_refused(world, tmp_path, capsys, kind, extra):
    argv = _command(kind, world / "audio" / "pcm16.wav", tmp_path / "out", world) + extra
    names = [extra[0], extra[1]]
    refuse(f"args/{kind} {' '.join(extra)}", argv, capsys, names, [world, tmp_path])


def test_huge_segment_on_a_short_file_is_bounded(world, tmp_path, capsys):
    """--segment 100000 on 1 s allocated 24 GB; now the segment is capped at the signal (peak RSS stays small)."""
    import resource
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    accept("args/separate --segment 100000", _command("separate", world / "audio" / "pcm16.wav", tmp_path / "o",
                                                      world) + ["--segment", "100000"], capsys, [tmp_path / "o"])
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 1_000_000   # KiB: < 1 GB more


@pytest.mark.parametrize("kind", ["separate", "encode"])
def test_inputs_beyond_the_memory_available_are_refused(world, tmp_path, capsys, monkeypatch, kind):
    """The limits come from the machine (limits.available_memory); a 4 MB machine (separate: the segment does not
    fit) or a 512 KB one (encode: reading the file at its own rate does not fit) is simulated."""
    monkeypatch.setenv("LATENTMIX_MEMORY_LIMIT", str((4 << 20) if kind == "separate" else (512 << 10)))
    argv = _command(kind, world / "audio" / "rate96k.wav", tmp_path / "out", world)
    refuse(f"limits/{kind}", argv, capsys, ["rate96k.wav", "--segment"], [world, tmp_path])


BAD_DATA_ARGS = [["--tracks", "0"], ["--tracks", "-3"], ["--seconds", "0"], ["--seconds", "nan"],
                 ["--seed", "-1"], ["--workers", "0"]]


@pytest.mark.parametrize("extra", BAD_DATA_ARGS, ids=[" ".join(e) for e in BAD_DATA_ARGS])
def test_bad_data_arguments_are_refused(tmp_path, capsys, extra):
    refuse(f"args/data synth {' '.join(extra)}", ["data", "synth", "--out", tmp_path / "d", "--quiet", *extra],
           capsys, [extra[0]], [tmp_path])


def test_debug_after_the_subcommand_shows_the_traceback(world, tmp_path, capsys):
    argv = _command("separate", world / "audio" / "nan.wav", tmp_path / "o", world)
    with pytest.raises(LatentmixError, match="non-finite"):
        main([str(a) for a in argv] + ["--debug"])
    with pytest.raises(LatentmixError, match="non-finite"):
        main(["--debug"] + [str(a) for a in argv])


# ------------------------------------------------------------------------------------------------ code files

def _code_file(path: Path, header: dict, codes: bytes | None = None, version: int = 2, crc=None) -> Path:
    hb = json.dumps(header).encode()
    payload = codes if codes is not None else b"\x00" * 100
    crc = zlib.crc32(payload) if crc is None else crc
    path.write_bytes(struct.pack("<4sHI", b"LMXC", version, len(hb)) + hb + payload + struct.pack("<I", crc))
    return path


def _header(**kw):
    h = {"shape": [1, 4, 50], "dtype": "bits4", "codebook_size": 16, "num_codebooks": 4, "frames": 50,
         "sample_rate": SR, "hop_length": 8, "original_length": 400, "channels": 1}
    h.update(kw)
    return {k: v for k, v in h.items() if v is not None}


BAD_CODES = {
    "codes_out_of_range": lambda p: _code_file(p, _header(codebook_size=10), bytes([0xFF]) * 100),
    "zero_frames": lambda p: _code_file(p, _header(shape=[1, 4, 0], frames=0), b""),
    "zero_codebooks": lambda p: _code_file(p, _header(shape=[1, 0, 50], num_codebooks=0), b""),
    "shape_not_numbers": lambda p: _code_file(p, _header(shape=["a", 4, 50])),
    "shape_overflow": lambda p: _code_file(p, _header(shape=[2**40, 2**40, 2**40])),
    "shape_two_axes": lambda p: _code_file(p, _header(shape=[4, 50])),
    "header_is_list": lambda p: _code_file(p, [1, 2, 3]),
    "header_not_json": lambda p: p.write_bytes(struct.pack("<4sHI", b"LMXC", 2, 5) + b"{{{{{" + b"\0" * 8),
    "header_length_huge": lambda p: p.write_bytes(struct.pack("<4sHI", b"LMXC", 2, 2**31) + b"{}"),
    "codebook_size_string": lambda p: _code_file(p, _header(codebook_size="16")),
    "codebook_size_zero": lambda p: _code_file(p, _header(codebook_size=0)),
    "dtype_wrong": lambda p: _code_file(p, _header(dtype="<u2")),
    "frames_mismatch": lambda p: _code_file(p, _header(frames=51)),
    "sample_rate_negative": lambda p: _code_file(p, _header(sample_rate=-22050)),
    "sample_rate_other": lambda p: _code_file(p, _header(sample_rate=44100)),
    "more_codebooks_than_model": lambda p: _code_file(p, _header(shape=[1, 8, 50], num_codebooks=8), b"\0" * 200),
    "crc_mismatch": lambda p: _code_file(p, _header(), crc=12345),
    "padded": lambda p: _code_file(p, _header(), b"\0" * 101),
    "version_zero": lambda p: _code_file(p, _header(), version=0),
    "version_newer": lambda p: _code_file(p, _header(), version=99),
    "bad_magic": lambda p: p.write_bytes(b"RIFF" + b"\0" * 100),
    "empty": lambda p: p.write_bytes(b""),
    "two_signals": lambda p: _code_file(p, _header(shape=[2, 4, 50]), b"\0" * 200),
}


@pytest.mark.parametrize("kind", ["decode", "info"])
@pytest.mark.parametrize("name", sorted(BAD_CODES))
def test_bad_code_files_are_refused(world, tmp_path, capsys, kind, name):
    src = tmp_path / "in" / f"{name}.lmxc"
    src.parent.mkdir()
    BAD_CODES[name](src)
    argv = (["codec", "info", src] if kind == "info" else
            ["codec", "decode", src, "-o", tmp_path / "out", "--quiet", "--model", world / "codec.safetensors"])
    if kind == "info" and name in ("sample_rate_other", "more_codebooks_than_model", "two_signals"):
        accept(f"codes/info/{name}", argv, capsys, [])      # well-formed files: only decoding them is wrong
        return
    refuse(f"codes/{kind}/{name}", argv, capsys, [src.name], [world, tmp_path])


def test_codes_from_another_model_warn_on_stderr_even_when_quiet(world, tmp_path, capsys):
    h = dict(read_codes(world / "good.lmxc")[1], model_sha256="0" * 64, model="other.safetensors")
    codes = read_codes(world / "good.lmxc")[0]
    write_codes(tmp_path / "other.lmxc", codes, h)
    rc = main(["codec", "decode", str(tmp_path / "other.lmxc"), "-o", str(tmp_path / "o.wav"), "--quiet",
               "--model", str(world / "codec.safetensors")])
    out = capsys.readouterr()
    record("codes/decode/other_model_warning", expect="accept", rc=rc, traceback=False)
    assert rc == 0 and "another model" in out.err and "another model" not in out.out


# ------------------------------------------------------------------------------------------------ model files

def _model_variant(world, tmp_path, name) -> Path:
    header, tensors = load_tensors(world / "codec.safetensors")
    cfg = dict(header["config"])
    path = tmp_path / f"{name}.safetensors"
    edits = {
        "header_is_list": None, "no_config": None, "string_version": dict(header, format_version="1"),
        "bad_activation": dict(header, config=dict(cfg, activation="swish")),
        "negative_channels": dict(header, config=dict(cfg, base_channels=-4)),
        "zero_channels": dict(header, config=dict(cfg, channels=0)),
        "config_is_list": dict(header, config=[1, 2]),
        "unknown_config_key": dict(header, config=dict(cfg, colour="red")),
        "stride_zero": dict(header, config=dict(cfg, strides=[0, 4])),
        "sample_rate_zero": dict(header, config=dict(cfg, sample_rate=0)),
        "codebook_size_negative": dict(header, config=dict(cfg, quantizer=dict(cfg["quantizer"], codebook_size=-1))),
        "num_codebooks_zero": dict(header, config=dict(cfg, quantizer=dict(cfg["quantizer"], num_codebooks=0))),
        "huge_dimension": dict(header, config=dict(cfg, latent_dim=10**9)),
        "config_version_string": dict(header, config_version="2"),
        "config_version_newer": dict(header, config_version=99),
        "format_newer": dict(header, format_version=99),
        "wrong_kind": dict(header, kind="separator"),
    }
    if name in edits:
        h = edits[name]
        if name == "header_is_list":
            from safetensors.torch import save_file
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata={"latentmix": "[1, 2]"})
            return path
        if name == "no_config":
            h = {k: v for k, v in header.items() if k != "config"}
        save_tensors(path, tensors, h)
    elif name == "missing_tensor":
        save_tensors(path, dict(list(tensors.items())[1:]), header)
    elif name == "extra_tensor":
        save_tensors(path, {**tensors, "extra": torch.zeros(2)}, header)
    elif name == "wrong_shape":
        k = next(iter(tensors))
        save_tensors(path, {**tensors, k: torch.zeros(3, 3)}, header)
    elif name == "truncated":
        b = (world / "codec.safetensors").read_bytes()
        path.write_bytes(b[: len(b) // 2])
    elif name == "not_safetensors":
        path.write_bytes(b"PK\x03\x04 not a model" * 20)
    elif name == "empty":
        path.write_bytes(b"")
    elif name == "no_latentmix_header":
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


BAD_MODELS = ["header_is_list", "no_config", "string_version", "bad_activation", "negative_channels",
              "zero_channels", "config_is_list", "unknown_config_key", "stride_zero", "sample_rate_zero",
              "codebook_size_negative", "num_codebooks_zero", "huge_dimension", "config_version_string",
              "config_version_newer", "format_newer", "wrong_kind", "missing_tensor", "extra_tensor", "wrong_shape",
              "truncated", "not_safetensors", "empty", "no_latentmix_header"]


@pytest.mark.parametrize("name", BAD_MODELS)
def test_bad_model_files_are_refused(world, tmp_path, capsys, name):
    model = _model_variant(world, tmp_path, name)
    argv = ["codec", "encode", world / "audio" / "pcm16.wav", "-o", tmp_path / "out", "--quiet", "--model", model]
    refuse(f"models/{name}", argv, capsys, [model.name], [world, tmp_path])


@pytest.mark.parametrize("name", ["negative_channels", "not_safetensors", "header_is_list"])
def test_bad_separator_files_are_refused(world, tmp_path, capsys, name):
    model = _model_variant(world, tmp_path, name)
    argv = ["separate", world / "audio" / "pcm16.wav", "-o", tmp_path / "out", "--quiet", "--model", model]
    refuse(f"models/separate/{name}", argv, capsys, [model.name], [world, tmp_path])


# ------------------------------------------------------------------------------------------------ configs

BAD_CONFIGS = {   # name: (YAML text or None for the preset, --set overrides, extra arguments)
    "empty_yaml": ("", [], []),
    "list_yaml": ("- 1\n- 2\n", [], []),
    "invalid_yaml": ("model: [1, 2\n", [], []),
    "no_model": ("train: {steps: 3}\n", [], []),
    "binary": (b"\xff\xfe\x00garbage\x00", [], []),
    "bad_date": ("model: {}\ntrain: {stamp: 2001-13-45}\n", [], []),
    "number_keys": ("1: 2\nmodel: {}\n", [], []),
    "lr_negative": (None, ["train.lr=-1"], []),
    "lr_word": (None, ["train.lr=fast"], []),
    "lr_nan": (None, ["train.lr=.nan"], []),
    "steps_zero": (None, ["train.steps=0"], []),
    "batch_size_zero": (None, ["train.batch_size=0"], []),
    "batch_size_float": (None, ["train.batch_size=2.5"], []),
    "segment_zero": (None, ["train.segment_seconds=0"], []),
    "segment_negative": (None, ["train.segment_seconds=-1"], []),
    "betas_out_of_range": (None, ["train.betas=[1, 2]"], []),
    "schedule_unknown": (None, ["train.lr_schedule=bogus"], []),
    "weight_negative": (None, ["train.weights.mel=-1"], []),
    "probability_above_one": (None, ["train.isolated_stem_prob=1.5"], []),
    "codebook_size_negative": (None, ["model.quantizer.codebook_size=-4"], []),
    "num_codebooks_zero": (None, ["model.quantizer.num_codebooks=0"], []),
    "channels_zero": (None, ["model.channels=0"], []),
    "latent_dim_word": (None, ["model.latent_dim=big"], []),
    "set_without_equals": (None, ["train.lr"], []),
    "set_unknown_key": (None, ["train.nonsense=1"], []),
    "seed_negative": (None, [], ["--seed", "-1"]),
    "steps_flag_zero": (None, [], ["--steps", "0"]),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_training_configs_are_refused(tiny_dataset, tmp_path, capsys, name):
    text, sets, extra = BAD_CONFIGS[name]
    config = "cpu_small"
    if text is not None:
        config = tmp_path / f"{name}.yaml"
        config.write_bytes(text if isinstance(text, bytes) else text.encode())
    argv = ["train", "codec", "--config", config, "--data", tiny_dataset, "--out", tmp_path / "run", "--quiet",
            *sum((["--set", s] for s in sets), []), *extra]
    names = [f"{name}.yaml"] if text is not None else [".yaml", *sets, *extra[:1], "--set"]
    refuse(f"configs/{name}", argv, capsys, names, [tmp_path])
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------------ checkpoints

@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A toy training stopped at step 3 (a checkpoint to damage and resume from)."""
    from _toy_task import ToyTask, toy_config
    from latentmix.train.loop import train
    d = tmp_path_factory.mktemp("toy_run")
    train(ToyTask, toy_config(steps=6), d, d / "run", seed=1, quiet=True, max_steps=3)
    return d / "run"


def _damage_checkpoint(src: Path, dst: Path, name: str) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file
    with safe_open(str(src), framework="pt") as f:
        header = json.loads(f.metadata()["latentmix"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    rng = next(k for k in tensors if k.endswith("rng/0/torch"))
    if name == "missing_tensor":
        del tensors[next(iter(tensors))]
    elif name == "missing_step":
        del header["meta"]["step"]
    elif name == "step_negative":
        header["meta"]["step"] = -5
    elif name == "seed_string":
        header["meta"]["seed"] = "one"
    elif name == "short_rng":
        tensors[rng] = tensors[rng][:100].clone()
    elif name == "wrong_kind":
        header["kind"] = "codec"
    elif name == "header_is_list":
        header = [header]
    elif name == "model_tensor_wrong_shape":
        k = next(k for k in tensors if "/model/" in k)
        tensors[k] = torch.zeros(1)
    if name == "truncated":
        b = src.read_bytes()
        dst.write_bytes(b[: len(b) // 3])
        return
    save_file(tensors, str(dst), metadata={"latentmix": json.dumps(header)})


BAD_CHECKPOINTS = ["missing_tensor", "missing_step", "step_negative", "seed_string", "short_rng", "wrong_kind",
                   "header_is_list", "model_tensor_wrong_shape", "truncated"]


@pytest.mark.parametrize("name", BAD_CHECKPOINTS)
def test_bad_checkpoints_are_refused(toy_run, tmp_path, name):
    import shutil

    from _toy_task import ToyTask, toy_config
    from latentmix.train.loop import train
    run = tmp_path / "run"
    shutil.copytree(toy_run, run)
    _damage_checkpoint(toy_run / "checkpoint.safetensors", run / "checkpoint.safetensors", name)
    before = snapshot(run)
    with pytest.raises(LatentmixError) as e:
        train(ToyTask, toy_config(steps=6), tmp_path, run, seed=1, quiet=True, resume=True)
    msg = str(e.value)
    record(f"checkpoints/{name}", expect="refuse", rc=2, lines=len(msg.splitlines()), traceback=False,
           written=len(set(snapshot(run)) - set(before)), changed=int(snapshot(run) != before), message=msg)
    assert "checkpoint.safetensors" in msg and len(msg.splitlines()) == 1
    assert snapshot(run) == before


# ------------------------------------------------------------------------------------------------ the run lock

HOLD = """import fcntl, json, os, socket, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}).encode())
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_writer_is_refused_and_a_stale_lock_taken_over(toy_run, tmp_path, capsys):
    import shutil

    from _toy_task import ToyTask, toy_config
    from latentmix.train.loop import train
    run = tmp_path / "run"
    shutil.copytree(toy_run, run)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = snapshot(run)
        with pytest.raises(LatentmixError, match=f"another training .*pid {holder.pid}"):
            train(ToyTask, toy_config(steps=6), tmp_path, run, seed=1, quiet=True, resume=True)
        assert snapshot(run) == before
        record("lock/second_writer", expect="refuse", rc=2, lines=1, traceback=False, written=0, changed=0)
    finally:
        holder.kill()
        holder.wait()
    # the holder died holding the lock: its record is stale and the next run takes over
    r = train(ToyTask, toy_config(steps=6), tmp_path, run, seed=1, quiet=True, resume=True)
    assert r["step"] == 6 and f"took over the lock left by pid {holder.pid}" in capsys.readouterr().err
    record("lock/stale_taken_over", expect="accept", rc=0, traceback=False)


# ------------------------------------------------------------------------------------------------ outputs (#21)

def test_a_dotted_song_name_does_not_escape_the_output_folder(world, tmp_path, capsys):
    src = tmp_path / "in" / "...wav"
    src.parent.mkdir()
    sf.write(src, _noise(SR), SR, format="WAV")
    out = tmp_path / "out"
    rc, _ = cli(["separate", src, "-o", out, "--quiet"], capsys)
    escaped = [p for p in tmp_path.rglob("*.wav") if out not in p.parents and p != src]
    record("outputs/dotted_name", expect="contain", rc=rc, escaped=len(escaped))
    assert not escaped
    assert rc in (0, 2)


def test_roundtrip_onto_its_input_is_refused(world, tmp_path, capsys):
    src = tmp_path / "a.wav"
    sf.write(src, _noise(SR), SR, subtype="PCM_16")
    before = snapshot(tmp_path)
    rc, err = cli(["codec", "roundtrip", src, "-o", src, "--quiet", "--model", world / "codec.safetensors"], capsys)
    lost = snapshot(tmp_path) != before
    record("outputs/roundtrip_onto_input", expect="refuse", rc=rc, data_lost=int(lost), lines=1, traceback=False,
           written=0, changed=int(lost))
    assert not lost
    assert rc == 2


def test_roundtrip_into_the_input_folder_keeps_the_input(world, tmp_path, capsys):
    src = tmp_path / "a.wav"
    sf.write(src, _noise(SR), SR, subtype="PCM_16")
    digest = hashlib.sha1(src.read_bytes()).hexdigest()
    rc, _ = cli(["codec", "roundtrip", src, "-o", tmp_path, "--quiet", "--model", world / "codec.safetensors"], capsys)
    lost = hashlib.sha1(src.read_bytes()).hexdigest() != digest
    record("outputs/roundtrip_into_input_folder", expect="keep", rc=rc, data_lost=int(lost))
    assert not lost


def test_inputs_with_the_same_name_do_not_overwrite_each_other(world, tmp_path, capsys):
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        sf.write(tmp_path / sub / "song.wav", _noise(SR, seed=ord(sub)), SR)
    out = tmp_path / "out"
    rc, _ = cli(["separate", tmp_path / "x" / "song.wav", tmp_path / "y" / "song.wav", "-o", out, "--quiet"], capsys)
    stems = sorted(out.rglob("bass.wav"))
    record("outputs/same_name_collision", expect="distinct", rc=rc, data_lost=int(rc == 0 and len(stems) < 2))
    assert rc == 0 and len(stems) == 2


def test_out_naming_an_existing_file_is_refused(world, tmp_path, capsys):
    target = tmp_path / "exists.txt"
    target.write_text("keep me")
    refuse("outputs/out_is_a_file", ["separate", world / "audio" / "pcm16.wav", "-o", target, "--quiet"], capsys,
           ["exists.txt"], [tmp_path])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_refused(world, tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    refuse("outputs/read_only", ["separate", world / "audio" / "pcm16.wav", "-o", out, "--quiet"], capsys,
           [str(out)], [tmp_path])


# ------------------------------------------------------------------------------------------------ fuzzing

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_subnormal=False) | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
                    max_leaves=12)


@pytest.fixture(scope="module")
def valid_codes(world):
    return (world / "good.lmxc").read_bytes()


@FUZZ
@given(data=st.binary(max_size=300) | st.binary(max_size=300).map(lambda b: b"LMXC" + b))
def test_fuzz_code_reader_random_bytes(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("fz") / "x.lmxc"
    p.write_bytes(data)
    _only_our_errors(lambda: read_codes(p))


@FUZZ
@given(pos=st.integers(0, 10_000), value=st.integers(0, 255), cut=st.integers(0, 10_000), key=st.text(max_size=12),
       new=JSON)
def test_fuzz_code_reader_mutated_files(world, tmp_path_factory, pos, value, cut, key, new):
    good = (world / "good.lmxc").read_bytes()
    flipped = bytearray(good)
    flipped[pos % len(good)] = value
    hlen = struct.unpack_from("<I", good, 6)[0]
    header = json.loads(good[10:10 + hlen])
    header[key if key else "shape"] = new
    d = tmp_path_factory.mktemp("fz")
    (d / "a.lmxc").write_bytes(bytes(flipped))
    (d / "b.lmxc").write_bytes(good[: cut % len(good)])
    codes = good[10 + hlen:-4]
    _code_file(d / "c.lmxc", header, codes)       # a valid CRC over a mutated header
    for name in ("a", "b", "c"):
        _only_our_errors(lambda n=name: read_codes(d / f"{n}.lmxc"))


@FUZZ
@given(meta=st.text(max_size=200) | JSON.map(json.dumps), key=st.text(max_size=10), new=JSON)
def test_fuzz_model_header_reader(world, tmp_path_factory, meta, key, new):
    from safetensors.torch import save_file
    header, tensors = load_tensors(world / "codec.safetensors")
    d = tmp_path_factory.mktemp("fz")
    save_file({"x": torch.zeros(2)}, str(d / "a.safetensors"), metadata={"latentmix": meta})
    _only_our_errors(lambda: read_header(d / "a.safetensors"))
    mutated = dict(header)
    if key in ("", "config"):
        mutated["config"] = dict(header["config"], **({key or "latent_dim": new}))
    else:
        mutated[key] = new
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(d / "b.safetensors"),
              metadata={"latentmix": json.dumps(mutated)})
    _only_our_errors(lambda: Codec.load(d / "b.safetensors"))


@FUZZ
@given(text=st.text(max_size=200), section=st.sampled_from(["train", "model"]), key=st.text(max_size=10), new=JSON)
def test_fuzz_config_parser(tmp_path_factory, text, section, key, new):
    d = tmp_path_factory.mktemp("fz")
    (d / "a.yaml").write_text(text)
    _only_our_errors(lambda: check_config(load_yaml(d / "a.yaml"), "a.yaml"))
    base = load_yaml(ROOT / "configs" / "codec" / "cpu_small.yaml")
    base["train"] = dict(base.get("train") or {}, **{key or "lr": new}) if section == "train" else base["train"]
    if section == "model":
        base["model"] = dict(base["model"], **{key or "channels": new})
    _only_our_errors(lambda: check_config(base, "cpu_small.yaml"))
    _only_our_errors(lambda: apply_overrides(base, [f"{section}.{key}={json.dumps(new)}"]))


def _only_our_errors(fn) -> None:
    try:
        fn()
    except LatentmixError as e:
        assert len(str(e).splitlines()) == 1, str(e)


# ------------------------------------------------------------------------------------------------ real processes

def _latentmix(*argv, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "latentmix", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.mark.parametrize("case", ["nan_audio", "bad_code_file", "bad_model", "bad_flag"])
def test_real_processes_refuse_with_one_line(world, tmp_path, case):
    argv = {"nan_audio": ["separate", world / "audio" / "nan.wav", "-o", tmp_path / "o", "--quiet"],
            "bad_code_file": ["codec", "info", world / "audio" / "text_as.wav"],
            "bad_model": ["codec", "encode", world / "audio" / "pcm16.wav", "-o", tmp_path / "o", "--model",
                          world / "audio" / "random_bytes.wav"],
            "bad_flag": ["separate", world / "audio" / "pcm16.wav", "-o", tmp_path / "o", "--segment", "nan",
                         "--quiet"]}[case]
    r = _latentmix(*argv)
    lines = r.stderr.strip().splitlines()
    record(f"process/{case}", expect="refuse", rc=r.returncode, lines=len(lines), traceback="Traceback" in r.stderr,
           written=int((tmp_path / "o").exists()), changed=0)
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------------ eval inputs

STEMS = ("bass", "drums", "guitar", "piano")
BAD_ESTIMATES = {
    "one_short_stem": lambda d: sf.write(d / "bass.wav", _noise(100), SR, subtype="FLOAT"),
    "nan_stem": lambda d: sf.write(d / "drums.wav", np.full((SR, 1), np.nan, np.float32), SR, subtype="FLOAT"),
    "missing_stem": lambda d: (d / "piano.wav").unlink(),
    "text_stem": lambda d: (d / "guitar.wav").write_text("not audio"),
    "truncated_stem": lambda d: (d / "bass.wav").write_bytes((d / "bass.wav").read_bytes()[:3000]),
}


@pytest.mark.parametrize("name", sorted(BAD_ESTIMATES))
def test_bad_estimates_are_refused_by_eval(tmp_path, capsys, name):
    for root in ("ref", "est"):
        d = tmp_path / root / "Track00001"
        d.mkdir(parents=True)
        for i, s in enumerate(STEMS):
            sf.write(d / f"{s}.wav", _noise(SR, seed=i), SR, subtype="FLOAT")
    BAD_ESTIMATES[name](tmp_path / "est" / "Track00001")
    argv = ["eval", "separation", "--reference", tmp_path / "ref", "--estimates", tmp_path / "est",
            "--json", tmp_path / "scores.json"]
    refuse(f"eval/{name}", argv, capsys, ["Track00001"], [tmp_path])
