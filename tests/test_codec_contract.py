"""The codec contract (latentmix.codec.base.CodecModel), one suite for every implementation: latentmix's Codec
(conv and spectral) and the EnCodec peer (benchmarks/peer_models/codecs.py; skipped when `encodec` is not installed).

Shapes, dtypes and ranges; the one bitrate formula; encode / from_codes / decode consistency; chunked == whole;
the .lmxc header from code_header round-tripping through write_codes / read_codes and checked by
check_code_header; the model file round trip."""
import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from latentmix.codec.base import CodecModel, bits_per_second, model_file_id
from latentmix.codec.codefile import read_code_header, read_codes, write_codes
from latentmix.codec.model import Codec
from latentmix.errors import ModelFileError

NO_ENCODEC = importlib.util.find_spec("encodec") is None
_peer = pytest.mark.skipif(NO_ENCODEC, reason="encodec is not installed (make peers): the EnCodec peer is not tested")


def _conv():
    return Codec(base_channels=4, strides=[2, 4], latent_dim=8, dilations=[1, 3],
                 quantizer={"type": "rvq", "num_codebooks": 4, "codebook_size": 16, "quantizer_dropout": 0.5})


def _spectral():
    return Codec(strides=[32], latent_dim=8, architecture="spectral",
                 quantizer={"type": "rvq", "num_codebooks": 3, "codebook_size": 16, "codebook_dim": 4},
                 spectral={"dim": 16, "encoder_depth": 1, "decoder_depth": 2})


def _peer_codec(lstm: int):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from peer_models.codecs import PeerCodec
    return PeerCodec(n_filters=4, dimension=16, ratios=[4, 2], n_q=4, bins=16, lstm=lstm)


BUILDERS = {"codec-conv": _conv, "codec-spectral": _spectral,
            "peer-encodec": lambda: _peer_codec(0), "peer-encodec-lstm": lambda: _peer_codec(1)}
CASES = ["codec-conv", "codec-spectral", pytest.param("peer-encodec", marks=_peer),
         pytest.param("peer-encodec-lstm", marks=_peer)]


@pytest.fixture(params=CASES)
def codec(request):
    """A tiny codec of each implementation, codebooks initialised by one training forward, in eval mode."""
    torch.manual_seed(0)
    m = BUILDERS[request.param]()
    with torch.no_grad():
        m.train()(torch.randn(2, m.channels, 64 * m.hop_length) * 0.3)
    return m.eval()


def _audio(m, frames: float, batch: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, m.channels, int(frames * m.hop_length), generator=g) * 0.3


def test_implements_the_contract(codec):
    assert isinstance(codec, CodecModel)
    for name in ("sample_rate", "channels", "hop_length", "num_codebooks", "codebook_size"):
        assert isinstance(getattr(codec, name), int) and getattr(codec, name) > 0, name
    assert codec.frame_rate == codec.sample_rate / codec.hop_length
    assert codec.KIND and not codec.is_continuous
    ctx = codec.context_frames()
    assert ctx is None or (len(ctx) == 2 and min(ctx) >= 1)


def test_an_incomplete_codec_cannot_be_built():
    class Half(CodecModel):
        def encode(self, wav, num_codebooks=None):
            return wav
    with pytest.raises(TypeError):
        Half()


def test_shapes_dtypes_and_ranges(codec):
    x = _audio(codec, 20.4)                                     # not a multiple of the hop
    frames = math.ceil(x.shape[-1] / codec.hop_length)
    assert codec.num_frames(x.shape[-1]) == frames
    with torch.inference_mode():
        full = codec.encode(x)
        codes = codec.encode(x, 2)
        z = codec.from_codes(codes)
        y = codec.decode(codes)
    assert full.shape == (2, codec.num_codebooks, frames) and codes.shape == (2, 2, frames)
    assert codes.dtype == torch.int64 and 0 <= int(full.min()) and int(full.max()) < codec.codebook_size
    assert z.dim() == 3 and z.shape[0] == 2 and z.shape[-1] == frames and z.is_floating_point()
    assert y.shape == (2, codec.channels, frames * codec.hop_length) and torch.isfinite(y).all()
    for bad in (0, codec.num_codebooks + 1):
        with pytest.raises(ValueError, match="num_codebooks"):
            codec.encode(x, bad)
    with pytest.raises(ValueError, match="expected audio"):
        codec.encode(torch.zeros(1, codec.channels + 1, 64))
    with pytest.raises(ValueError):
        codec.from_codes(torch.zeros(1, codec.num_codebooks + 1, 4, dtype=torch.int64))


def test_bitrate_is_the_one_formula(codec):
    for n in range(1, codec.num_codebooks + 1):
        expect = codec.sample_rate / codec.hop_length * n * math.log2(codec.codebook_size)
        assert codec.bitrate(n) == pytest.approx(expect)
        assert codec.bitrate(n) == bits_per_second(codec.sample_rate, codec.hop_length, n, codec.codebook_size)
    assert codec.bitrate() == codec.bitrate(codec.num_codebooks)


def test_encode_from_codes_decode_agree(codec):
    """Lower bitrates are prefixes of the full codes; decode is a function of the codes alone (batch items
    independent, deterministic); inference never changes the model's state (no codebook updates)."""
    x = _audio(codec, 16, batch=3)
    state = {k: v.clone() for k, v in codec.state_dict().items()}
    with torch.inference_mode():
        full = codec.encode(x)
        for n in range(1, codec.num_codebooks + 1):
            assert torch.equal(codec.encode(x, n), full[:, :n])
        assert torch.equal(codec.encode(x[1:]), full[1:])
        y = codec.decode(full)
        assert torch.allclose(codec.decode(full[1:]), y[1:], atol=1e-5)
        assert torch.equal(codec.decode(full), y)
        assert torch.equal(codec.from_codes(full), codec.from_codes(full))
        assert not torch.equal(codec.from_codes(full[:, :1]), codec.from_codes(full))
    codec.train()
    with torch.no_grad():
        codec.encode(x)
        codec.decode(full)
    codec.eval()
    assert all(torch.equal(v, state[k]) for k, v in codec.state_dict().items())


def test_chunked_equals_whole(codec):
    x = _audio(codec, 90.5, batch=1)
    seen = []
    with torch.inference_mode():
        whole = codec.encode(x, 3 if codec.num_codebooks >= 3 else None)
        dec = codec.decode(whole)
        for chunk in (1, 7, 40, 1000):
            seen.clear()
            got = codec.encode_chunked(x, whole.shape[1], chunk_frames=chunk, progress=seen.append)
            assert torch.equal(got, whole), chunk
            assert sum(seen) == whole.shape[-1]
            assert torch.allclose(codec.decode_chunked(whole, chunk_frames=chunk), dec, atol=1e-5), chunk
    if codec.context_frames() is None:
        assert seen == [whole.shape[-1]]                         # unbounded context: one window


def test_header_round_trip(codec, tmp_path):
    path = tmp_path / "model.safetensors"
    codec.save(path)
    model_id = model_file_id(path)
    x = _audio(codec, 30.2, batch=1)
    with torch.inference_mode():
        codes = codec.encode_chunked(x, 2, chunk_frames=8)
    header = codec.code_header(x.shape[-1], 8, model_id, source="song.wav")
    assert header["model_kind"] == codec.KIND and header["model_sha256"] == model_id["model_sha256"]
    assert {k: header[k] for k in ("sample_rate", "hop_length", "channels", "codebook_size", "original_length")} \
        == {"sample_rate": codec.sample_rate, "hop_length": codec.hop_length, "channels": codec.channels,
            "codebook_size": codec.codebook_size, "original_length": x.shape[-1]}
    ctx = codec.context_frames()
    assert header["chunking"] == ({"chunk_frames": None, "margin_frames": None} if ctx is None
                                  else {"chunk_frames": 8, "margin_frames": ctx[0]})
    write_codes(tmp_path / "a.lmxc", codes, header)
    back, h = read_codes(tmp_path / "a.lmxc")
    assert back.shape == codes.shape == (1, 2, codec.num_frames(x.shape[-1])) and torch.equal(back, codes)
    assert {k: h[k] for k in header} == header and read_code_header(tmp_path / "a.lmxc") == h
    assert h["num_codebooks"] == 2 and h["frames"] == codes.shape[-1]
    assert bits_per_second(h["sample_rate"], h["hop_length"], h["num_codebooks"], h["codebook_size"]) \
        == codec.bitrate(2)
    # the codec accepts its own codes, warns for another model file's, refuses what it cannot decode
    assert codec.check_code_header(h, back, model_id, source="a.lmxc") == []
    warn = codec.check_code_header(h, back, dict(model_id, model_sha256="0" * 16), source="a.lmxc")
    assert len(warn) == 1 and "another model" in warn[0]
    for key in ("sample_rate", "hop_length", "channels", "codebook_size"):
        with pytest.raises(ModelFileError, match=key):
            codec.check_code_header(dict(h, **{key: h[key] + 1}), back, source="a.lmxc")
    with pytest.raises(ModelFileError, match="codebooks"):
        codec.check_code_header(h, torch.zeros(1, codec.num_codebooks + 1, 3, dtype=torch.int64))
    # and decodes them back to the original length's worth of audio
    with torch.inference_mode():
        y = codec.decode_chunked(back, chunk_frames=8)[..., :h["original_length"]]
    assert y.shape == x.shape


def test_model_file_round_trip(codec, tmp_path):
    codec.save(tmp_path / "m.safetensors")
    again = type(codec).load(tmp_path / "m.safetensors")
    x = _audio(codec, 12)
    with torch.inference_mode():
        assert torch.equal(again.encode(x), codec.encode(x))
        assert torch.allclose(again.decode(codec.encode(x)), codec.decode(codec.encode(x)), atol=1e-6)
