"""Audio I/O, resampling, mono downmix and THE STFT / inverse STFT / mel spectrogram of the package.

Reading uses soundfile and resampling uses soxr (band-limited, high quality); both are maintained libraries,
so nothing here re-implements them. Tensors are float32 in [-1, 1], shaped (channels, time) for one file.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
import torch.nn.functional as F

from . import SAMPLE_RATE
from .errors import InputError
from .limits import check_memory
from .outputs import AUDIO_EXTENSIONS  # noqa: F401  (the one list of audio extensions; re-exported)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample `x` (time,) or (time, channels) from sr_in to sr_out with soxr's high-quality filter."""
    if sr_in == sr_out:
        return x
    return soxr.resample(x, sr_in, sr_out, quality="HQ").astype(np.float32)


def read_audio(path, sr: int | None = SAMPLE_RATE, mono: bool = True, fix_nonfinite: bool = False) -> torch.Tensor:
    """Read an audio file as a float32 tensor (channels, time) at `sr` (None: the file's own rate), downmixed to
    mono by default.

    Raises InputError naming the file for a missing, empty, truncated (fewer frames than its header declares) or
    unreadable file, one too large for the memory available, and NaN/inf samples (replaced by 0, with a warning
    on stderr, when `fix_nonfinite`).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an audio file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    try:
        meta = sf.info(str(path))
        check_memory(meta.frames * meta.channels * 4 * (3 if sr and meta.samplerate != sr else 2),
                     f"{path}: reading {meta.frames / max(meta.samplerate, 1):.0f} s of audio", "split the file",
                     InputError)
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except InputError:
        raise
    except Exception as e:  # soundfile raises LibsndfileError/RuntimeError with a multi-line message
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"{path}: not a readable audio file ({msg})") from None
    if data.shape[0] == 0:
        raise InputError(f"{path}: contains no audio samples")
    _check_complete(path, meta, data.shape[0])
    data = _finite(path, data, fix_nonfinite)
    if mono and data.shape[1] > 1:
        data = data.mean(axis=1, keepdims=True)
    data = resample(data, file_sr, sr or file_sr)
    if data.ndim == 1:
        data = data[:, None]
    return torch.from_numpy(np.ascontiguousarray(data.T))


def _check_complete(path: Path, meta, frames: int) -> None:
    """InputError when fewer frames were read than the file declares (libsndfile shortens a cut WAV silently).
    An MP3's count is an estimate that can overshoot by part of an MPEG frame: up to 2 x 1152 short is complete."""
    declared = meta.frames
    if meta.format in ("WAV", "WAVEX"):
        declared = max(declared, _wav_declared_frames(path) or 0)
    if frames < declared - (2 * 1152 if meta.format in ("MP3", "MPEG") else 0):
        raise InputError(f"{path}: truncated audio file ({frames} of the {declared} frames its header declares)")


def _wav_declared_frames(path: Path) -> int | None:
    """Frames the RIFF header's data chunk declares (None for a streamed size or an unusual layout)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        align = None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if cid == b"fmt ":
                fmt = f.read(size)
                align = int.from_bytes(fmt[12:14], "little") if len(fmt) >= 14 else None
                size = 0
            elif cid == b"data":
                if not align or size in (0, 0xFFFFFFFF):
                    return None
                return size // align
            f.seek(size + (size & 1), 1)


def _finite(path: Path, data: np.ndarray, fix: bool) -> np.ndarray:
    """`data`, refusing NaN/inf samples (InputError) or, with `fix`, setting them to 0 with a warning."""
    bad = ~np.isfinite(data)
    count = int(bad.sum())
    if not count:
        return data
    if not fix:
        raise InputError(f"{path}: {count} non-finite sample(s) (NaN or inf); repair the file or pass "
                         f"--fix-nonfinite to replace them with silence")
    print(f"warning: {path}: replaced {count} non-finite sample(s) with 0", file=sys.stderr)
    data[bad] = 0.0
    return data


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


def write_audio(path, wav, sr: int = SAMPLE_RATE, subtype: str = "PCM_16", format: str | None = None) -> None:
    """Write (channels, time) or (time,) audio atomically: a temporary file in the same folder, then rename.

    Values are clipped to [-1, 1]; nothing half-written is left behind on failure. `format` (WAV, FLAC) defaults
    to the one `path`'s extension names (for a temporary path of another name, give it).
    """
    path = Path(path)
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().float().numpy()
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 2:
        wav = wav.T
    wav = np.clip(wav, -1.0, 1.0)
    fmt = format or ("FLAC" if path.suffix.lower() == ".flac" else "WAV")
    from .fileio import atomic_path
    with atomic_path(path) as tmp:
        sf.write(str(tmp), wav, sr, subtype=subtype, format=fmt)


def layout(wav: torch.Tensor, mono: bool = False) -> tuple[torch.Tensor, str | None]:
    """(channels, T) -> (1 or 2 channels, T) and a note when channels were folded: mono stays mono, stereo stays
    stereo, more channels go to stereo (even-numbered channels to the left, odd to the right, each side the mean
    of its channels); `mono` averages everything."""
    c = wav.shape[0]
    if mono and c > 1:
        return wav.mean(0, keepdim=True), None
    if c <= 2:
        return wav, None
    return torch.stack([wav[0::2].mean(0), wav[1::2].mean(0)]), f"{c} channels downmixed to stereo"


def to_rate(x: np.ndarray, sr_in: int, sr_out: int, length: int) -> np.ndarray:
    """x (rows, T) resampled along time from sr_in to sr_out, then cut or zero-padded to `length` samples."""
    x = np.asarray(x, np.float32)
    if sr_in != sr_out:
        x = np.ascontiguousarray(resample(np.ascontiguousarray(x.T), sr_in, sr_out).T)
        if x.ndim == 1:
            x = x[None]
    if x.shape[-1] >= length:
        return x[..., :length]
    return np.pad(x, ((0, 0), (0, length - x.shape[-1])))


# ---------------------------------------------------------------- spectral helpers
#
# THE STFT of the package: losses, metrics, separators, oracle masks, discriminators and the codec v2's front and
# back ends all frame audio here, with a periodic Hann window of n_fft samples and one of two frame alignments:
#   center=True    torch.stft's centred frames: frame f is centred on sample f·hop (reflect padding of n_fft // 2
#                  each side), T // hop + 1 frames; the inverse is torch.istft.
#   center="same"  frame f covers samples [f·hop - pad, f·hop - pad + n_fft) with pad = (n_fft - hop) / 2 zeros:
#                  T samples give T // hop frames (exactly T / hop when hop divides T), and F frames invert to
#                  exactly F · hop samples, sample-aligned with the analysis (the codec v2's frame grid).

def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype.to_real() if dtype.is_complex else dtype


@functools.lru_cache(maxsize=64)
def _window(n_fft: int, device: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    with torch.inference_mode(False):  # cached: must stay usable by autograd after an inference-mode caller
        return torch.hann_window(n_fft, device=device, dtype=dtype)


def _same_pad(n_fft: int, hop: int) -> int:
    if n_fft < hop or (n_fft - hop) % 2:
        raise ValueError(f"center='same' needs n_fft ({n_fft}) >= hop ({hop}) with an even difference")
    return (n_fft - hop) // 2


def _check_center(center) -> None:
    if center is not True and center != "same":
        raise ValueError(f"center must be True or 'same', not {center!r}")


def stft(x: torch.Tensor, n_fft: int = 1024, hop: int | None = None, center: bool | str = True) -> torch.Tensor:
    """Complex STFT of (..., time) audio -> (..., n_fft // 2 + 1, frames), Hann window; hop defaults to n_fft / 4.
    center: True (centred, reflect-padded frames) or "same" (the zero-padded "same" frame grid above)."""
    _check_center(center)
    hop = hop or n_fft // 4
    shape = x.shape
    x = x.reshape(-1, shape[-1])
    if center == "same":
        pad = _same_pad(n_fft, hop)
        x = F.pad(x, (pad, pad))
    spec = torch.stft(x, n_fft, hop, window=_window(n_fft, str(x.device), x.dtype), return_complex=True,
                      center=center is True)
    return spec.reshape(*shape[:-1], *spec.shape[-2:])


def overlap_add(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """frames (N, F, n_fft) -> (N, (F - 1) · hop + n_fft), frame f added at f · hop. With n_fft a multiple of hop
    this is n_fft / hop slice additions (several times faster than F.fold on CPUs)."""
    n, f, n_fft = frames.shape
    total = (f - 1) * hop + n_fft
    if n_fft % hop:
        fold = dict(output_size=(1, total), kernel_size=(1, n_fft), stride=(1, hop))
        return F.fold(frames.transpose(1, 2), **fold).view(n, total)
    r = n_fft // hop
    out = frames.new_zeros(n, f + r - 1, hop)
    parts = frames.view(n, f, r, hop)
    for j in range(r):
        out[:, j:j + f] += parts[:, :, j]
    return out.view(n, total)


def istft(spec: torch.Tensor, length: int, n_fft: int = 1024, hop: int | None = None,
          center: bool | str = True) -> torch.Tensor:
    """Inverse of `stft` with the same n_fft, hop and center: (..., freq, frames) -> (..., length).

    center="same": windowed overlap-add of the frames' inverse FFTs divided by the window-power envelope
    (torch.istft cannot do it: the envelope is zero at the first sample of the padded grid); its natural length
    is frames · hop, cut or zero-padded to `length`."""
    _check_center(center)
    hop = hop or n_fft // 4
    shape = spec.shape
    window = _window(n_fft, str(spec.device), _real_dtype(spec.dtype))
    if center is True:
        y = torch.istft(spec.reshape(-1, *shape[-2:]), n_fft, hop, window=window, length=length, center=True)
        return y.reshape(*shape[:-2], length)
    pad, f = _same_pad(n_fft, hop), shape[-1]
    frames = torch.fft.irfft(spec.transpose(-1, -2), n=n_fft, dim=-1) * window          # (..., F, n_fft)
    y = overlap_add(frames.reshape(-1, f, n_fft), hop)
    env = overlap_add((window ** 2).expand(1, f, n_fft), hop)
    y = (y / env.clamp(min=1e-8))[:, pad:pad + length]
    if y.shape[-1] < length:
        y = F.pad(y, (0, length - y.shape[-1]))
    return y.reshape(*shape[:-2], length)


def fft_convolve(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Linear convolution of (..., time) signals x and h (broadcast) through the FFT, cut to x's length."""
    n = x.shape[-1] + h.shape[-1] - 1
    m = 1 << (n - 1).bit_length()
    return torch.fft.irfft(torch.fft.rfft(x, m) * torch.fft.rfft(h, m), m)[..., :x.shape[-1]]


def zero_phase_filter(x: torch.Tensor, sr: int, gain_of_hz) -> torch.Tensor:
    """x (..., time) filtered by a real, zero-phase frequency response gain_of_hz(frequencies in Hz, float64) applied
    to its whole-signal spectrum (circular: meant for smooth responses, whose impulse responses are short)."""
    n = x.shape[-1]
    g = gain_of_hz(torch.fft.rfftfreq(n, 1.0 / sr, dtype=torch.float64)).to(x.dtype)
    return torch.fft.irfft(torch.fft.rfft(x) * g, n=n)


def magnitude(spec: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """|spec| of a complex spectrum as sqrt(re² + im² + eps): finite gradients at exact zeros (silence)."""
    return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + eps)


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
                    sr: int = SAMPLE_RATE, power: float = 1.0) -> torch.Tensor:
    """Mel spectrogram of (..., time) audio -> (..., n_mels, frames): `mel_filterbank` applied to the centred
    STFT's `magnitude` raised to `power` (1: magnitude, 2: power)."""
    mag = magnitude(stft(x, n_fft, hop))
    if power != 1:
        mag = mag.pow(power)
    return torch.matmul(mel_filterbank(n_fft, n_mels, sr).to(mag.device, mag.dtype), mag)
