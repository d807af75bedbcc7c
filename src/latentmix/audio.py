"""Audio I/O, resampling, mono downmix and the STFT/mel helpers shared by losses and metrics.

Reading uses soundfile and resampling uses soxr (band-limited, high quality); both are maintained libraries,
so nothing here re-implements them. Tensors are float32 in [-1, 1], shaped (channels, time) for one file.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

from . import SAMPLE_RATE
from .errors import InputError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample `x` (time,) or (time, channels) from sr_in to sr_out with soxr's high-quality filter."""
    if sr_in == sr_out:
        return x
    return soxr.resample(x, sr_in, sr_out, quality="HQ").astype(np.float32)


def read_audio(path, sr: int = SAMPLE_RATE, mono: bool = True) -> torch.Tensor:
    """Read an audio file as a float32 tensor (channels, time) at `sr`, downmixed to mono by default.

    Raises InputError naming the file for a missing, empty, truncated or unreadable file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an audio file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises LibsndfileError/RuntimeError with a multi-line message
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"{path}: not a readable audio file ({msg})") from None
    if data.shape[0] == 0:
        raise InputError(f"{path}: contains no audio samples")
    if mono and data.shape[1] > 1:
        data = data.mean(axis=1, keepdims=True)
    data = resample(data, file_sr, sr)
    if data.ndim == 1:
        data = data[:, None]
    return torch.from_numpy(np.ascontiguousarray(data.T))


def info(path) -> tuple[int, int]:
    """(frames, samplerate) of an audio file without reading it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        i = sf.info(str(path))
    except Exception as e:
        raise InputError(f"{path}: not a readable audio file ({str(e).splitlines()[0]})") from None
    return i.frames, i.samplerate


def write_audio(path, wav, sr: int = SAMPLE_RATE, subtype: str = "PCM_16") -> None:
    """Write (channels, time) or (time,) audio atomically: a temporary file in the same folder, then rename.

    Values are clipped to [-1, 1]; nothing half-written is left behind on failure.
    """
    path = Path(path)
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().float().numpy()
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 2:
        wav = wav.T
    wav = np.clip(wav, -1.0, 1.0)
    fmt = "FLAC" if path.suffix.lower() == ".flac" else "WAV"
    from .fileio import atomic_path
    with atomic_path(path) as tmp:
        sf.write(str(tmp), wav, sr, subtype=subtype, format=fmt)


def find_audio(paths) -> list[Path]:
    """Expand files and folders (recursively) into a sorted list of audio files; InputError if none."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix.lower() in AUDIO_EXTENSIONS and q.is_file())
            if not found:
                raise InputError(f"{p}: folder contains no audio files")
            out.extend(found)
        else:
            out.append(p)
    return out


# ---------------------------------------------------------------- spectral helpers

@functools.lru_cache(maxsize=32)
def _window(n_fft: int, device: str) -> torch.Tensor:
    with torch.inference_mode(False):  # cached: must stay usable by autograd after an inference-mode caller
        return torch.hann_window(n_fft, device=device)


def stft(x: torch.Tensor, n_fft: int = 1024, hop: int | None = None) -> torch.Tensor:
    """Complex STFT of (..., time) audio -> (..., freq, frames), Hann window, centred."""
    hop = hop or n_fft // 4
    shape = x.shape
    spec = torch.stft(x.reshape(-1, shape[-1]), n_fft, hop, window=_window(n_fft, str(x.device)),
                      return_complex=True, center=True)
    return spec.reshape(*shape[:-1], *spec.shape[-2:])


def istft(spec: torch.Tensor, length: int, n_fft: int = 1024, hop: int | None = None) -> torch.Tensor:
    """Inverse of `stft`: (..., freq, frames) -> (..., length)."""
    hop = hop or n_fft // 4
    shape = spec.shape
    y = torch.istft(spec.reshape(-1, *shape[-2:]), n_fft, hop, window=_window(n_fft, str(spec.device)),
                    length=length, center=True)
    return y.reshape(*shape[:-2], length)


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=32)
def mel_filterbank(n_fft: int, n_mels: int, sr: int = SAMPLE_RATE, fmin: float = 0.0,
                   fmax: float | None = None) -> torch.Tensor:
    """Triangular HTK mel filterbank (n_mels, n_fft//2+1), area-normalised (Slaney style)."""
    fmax = fmax or sr / 2
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_pts = np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2)
    hz = _mel_to_hz(mel_pts)
    fb = np.zeros((n_mels, len(freqs)), dtype=np.float32)
    for i in range(n_mels):
        lo, c, hi = hz[i], hz[i + 1], hz[i + 2]
        up = (freqs - lo) / max(c - lo, 1e-9)
        down = (hi - freqs) / max(hi - c, 1e-9)
        fb[i] = np.maximum(0, np.minimum(up, down)) * (2.0 / max(hi - lo, 1e-9))
    with torch.inference_mode(False):  # cached: must stay usable by autograd after an inference-mode caller
        return torch.from_numpy(fb)


def mel_spectrogram(x: torch.Tensor, n_fft: int = 1024, hop: int | None = None, n_mels: int = 80,
                    sr: int = SAMPLE_RATE) -> torch.Tensor:
    """Magnitude mel spectrogram of (..., time) audio -> (..., n_mels, frames)."""
    mag = stft(x, n_fft, hop).abs()
    fb = mel_filterbank(n_fft, n_mels, sr).to(x.device)
    return torch.matmul(fb, mag)
