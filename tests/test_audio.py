"""Audio I/O: mono downmix, resampling, atomic writes and one-line errors for bad files."""
import numpy as np
import pytest
import soundfile as sf
import torch

from latentmix import audio
from latentmix.errors import InputError


def test_stereo_44k_comes_back_mono_22k(tmp_path):
    t = np.arange(44100) / 44100
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    right = 0.25 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "s.wav", np.stack([left, right], 1), 44100)
    x = audio.read_audio(tmp_path / "s.wav")
    assert x.shape == (1, 22050) and x.dtype == torch.float32
    # mono downmix is the channel mean: amplitude 0.375, away from the resampler's edges
    assert abs(x[0, 1000:-1000].abs().max().item() - 0.375) < 0.01


def test_resampler_is_band_limited():
    sr = 44100
    t = np.arange(sr) / sr
    x = np.sin(2 * np.pi * 15000 * t).astype(np.float32)  # above the 11025 Hz Nyquist of 22050
    y = audio.resample(x, sr, 22050)
    assert np.abs(y[500:-500]).max() < 0.01


def test_write_read_roundtrip_and_atomic(tmp_path):
    x = torch.rand(1, 2205) * 0.5
    audio.write_audio(tmp_path / "a" / "x.wav", x, subtype="FLOAT")
    y = audio.read_audio(tmp_path / "a" / "x.wav")
    assert torch.allclose(x, y)
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.wav"]


@pytest.mark.parametrize("content,what", [(b"", "empty"), (b"RIFF\x10\x00\x00\x00WAVEfmt ", "not a readable"),
                                          (b"hello world, not audio at all", "not a readable")])
def test_bad_files_give_one_line_errors(tmp_path, content, what):
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(InputError) as e:
        audio.read_audio(p)
    msg = str(e.value)
    assert str(p) in msg and what in msg and "\n" not in msg


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        audio.read_audio(tmp_path / "nope.wav")      # an empty folder given to the CLI: test_cli_separate


def test_stft_istft_inverse_and_mel_shape():
    x = torch.randn(2, 1, 4096)
    spec = audio.stft(x, 512)
    y = audio.istft(spec, 4096, 512)
    assert torch.allclose(x, y, atol=1e-5)
    m = audio.mel_spectrogram(x, 512, n_mels=40)
    assert m.shape[:3] == (2, 1, 40)


def test_written_files_are_readable_by_others(tmp_path):
    import os
    old = os.umask(0o022)
    try:
        audio.write_audio(tmp_path / "x.wav", torch.zeros(1, 100))
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "x.wav").st_mode & 0o777 == 0o644


def test_cached_spectral_constants_survive_inference_mode():
    """The window and mel filterbank are cached: a first call under inference_mode must not poison autograd."""
    audio._window.cache_clear()
    audio.mel_filterbank.cache_clear()
    with torch.inference_mode():
        audio.mel_spectrogram(torch.randn(1, 1, 4096), 256, n_mels=20)
    x = torch.randn(1, 1, 4096, requires_grad=True)
    audio.mel_spectrogram(x, 256, n_mels=20).sum().backward()
    assert x.grad is not None


def test_an_mp3_estimated_length_is_not_a_truncation(tmp_path):
    """libsndfile estimates an MP3's frame count (tonejs-instruments' A1.mp3 declares 58 more than it decodes):
    part of an MPEG frame short is complete, more is still a truncated file."""
    from types import SimpleNamespace

    from latentmix.audio import _check_complete
    mp3 = SimpleNamespace(format="MP3", frames=703930)
    _check_complete(tmp_path / "A1.mp3", mp3, 703872)
    with pytest.raises(InputError, match="A1.mp3: truncated audio file"):
        _check_complete(tmp_path / "A1.mp3", mp3, 600000)
    with pytest.raises(InputError, match="truncated"):
        _check_complete(tmp_path / "a.flac", SimpleNamespace(format="FLAC", frames=1000), 999)
