"""What a web-demo job does: separate an upload with a registered method, round-trip it through the codec at a
chosen number of codebooks, or generate from a text prompt when a prior is shipped. Each writes its results
into the job's `out/` folder (WAV files, spectrogram PNGs on one colour scale, a zip of the stems) and returns
the plain dict the page renders. Models are loaded once per process and shared by the workers.
"""
from __future__ import annotations

import threading
import zipfile
from pathlib import Path

import numpy as np
import torch

from .. import SAMPLE_RATE
from ..errors import ConfigError, InputError

_MODELS: dict = {}
_LOCK = threading.Lock()


def _cached(key, make):
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = make()
        return _MODELS[key]


def web_methods() -> list[str]:
    """Separation methods the page offers: registered ones that need no reference stems."""
    from ..separation.registry import available_methods, get_method
    out = []
    for name in available_methods():
        try:
            m = _cached(("sep", name), lambda n=name: get_method(n))
        except Exception:       # a method whose model is not installed is not offered
            continue
        if not getattr(m, "needs_references", False):
            out.append(name)
    return out


def codec_levels() -> list[int]:
    try:
        c = _codec()
    except Exception:
        return []
    return [] if c.is_continuous else list(range(1, c.num_codebooks + 1))


def _codec():
    from ..codec import Codec
    from ..pretrained.registry import resolve_model
    return _cached(("codec",), lambda: Codec.load(resolve_model(None, "codec")))


def generation_status() -> tuple[bool, str]:
    """(available, why not): latentmix.generation imports and a shipped prior exists."""
    try:
        from .. import generation  # noqa: F401
    except Exception as e:
        return False, f"latentmix.generation is not available ({type(e).__name__})"
    try:
        from ..pretrained.registry import resolve_model
        resolve_model(None, "prior")
    except Exception as e:
        return False, f"no shipped prior ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
    return True, ""


def _url(job, name: str) -> str:
    return f"/jobs/{job.id}/files/{name}"


def _spectrograms(job, signals: dict, sr: int) -> dict:
    """{name: audio (T,)} -> {name: png file name}, one colour scale."""
    from ..report import plots
    specs = {k: plots.spectrogram_db(v, sr) for k, v in signals.items()}
    vmin, vmax = plots.db_range(specs.values())
    out = {}
    for k, s in specs.items():
        plots.spectrogram_png(job.folder / "out" / f"{k}.png", s, sr, len(signals[k]) / sr, vmin, vmax,
                              size=(7, 2.2))
        out[k] = f"{k}.png"
    return out


def _read_upload(job, max_seconds: float) -> torch.Tensor:
    from ..audio import read_audio
    x = read_audio(job.folder / "upload", SAMPLE_RATE)                      # (1, T) mono at the model rate
    if x.shape[-1] > max_seconds * SAMPLE_RATE:
        raise InputError(f"the upload is {x.shape[-1] / SAMPLE_RATE:.0f} s long; this server takes at most "
                         f"{max_seconds:g} s")
    return x


def run_separate(job, max_seconds: float) -> dict:
    from ..audio import write_audio
    from ..separation.apply import separate_long
    from ..separation.registry import get_method
    name = job.options.get("method") or "supervised"
    if name not in web_methods():
        raise ConfigError(f"unknown separation method '{name}'")
    job.report(0.05, "reading the upload")
    x = _read_upload(job, max_seconds)
    method = _cached(("sep", name), lambda: get_method(name))
    job.report(0.15, f"separating with '{name}'")
    with torch.inference_mode():
        est = separate_long(method, x[None], None, None, 0.25, SAMPLE_RATE, 4)[0]     # (S, T)
    job.report(0.75, "drawing spectrograms")
    out = job.folder / "out"
    signals = {"mixture": x[0].numpy()}
    signals.update({s: est[i].numpy() for i, s in enumerate(method.stems)})
    for k, v in signals.items():
        write_audio(out / f"{k}.wav", v[None], SAMPLE_RATE)
    pngs = _spectrograms(job, signals, SAMPLE_RATE)
    job.report(0.92, "zipping the stems")
    with zipfile.ZipFile(out / "stems.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for s in method.stems:
            z.write(out / f"{s}.wav", f"{s}.wav")
    return {"kind": "separate", "method": name, "seconds": round(x.shape[-1] / SAMPLE_RATE, 2),
            "items": [{"label": k, "audio": _url(job, f"{k}.wav"), "image": _url(job, pngs[k])} for k in signals],
            "zip": _url(job, "stems.zip")}


def run_codec(job, max_seconds: float) -> dict:
    from ..audio import read_audio, write_audio
    from ..metrics.codec import mel_distance
    from ..metrics.sisdr import si_sdr
    codec = _codec()
    try:
        level = int(job.options.get("level") or codec.num_codebooks)
    except ValueError:
        raise ConfigError("the number of codebooks must be an integer") from None
    if not 1 <= level <= codec.num_codebooks:
        raise ConfigError(f"the number of codebooks must be in 1..{codec.num_codebooks}")
    job.report(0.05, "reading the upload")
    x = read_audio(job.folder / "upload", codec.sample_rate)
    if x.shape[-1] > max_seconds * codec.sample_rate:
        raise InputError(f"the upload is longer than {max_seconds:g} s")
    job.report(0.2, f"encoding with {level} codebook(s)")
    with torch.inference_mode():
        codes = codec.encode_chunked(x[None], level, 2048)
        job.report(0.5, "decoding")
        y = codec.decode_chunked(codes, 2048)[0][..., :x.shape[-1]]
    job.report(0.7, "scoring and drawing")
    sdr = float(si_sdr(y, x).mean())
    mel = float(mel_distance(y, x, sr=codec.sample_rate))
    out = job.folder / "out"
    signals = {"original": x[0].numpy(), "decoded": y[0].numpy(), "difference": (y[0] - x[0]).numpy()}
    for k, v in signals.items():
        write_audio(out / f"{k}.wav", np.clip(v, -1, 1)[None], codec.sample_rate)
    pngs = _spectrograms(job, signals, codec.sample_rate)
    return {"kind": "codec", "level": level, "kbps": round(codec.bitrate(level) / 1000, 3),
            "si_sdr": round(sdr, 2), "mel_distance": round(mel, 3),
            "items": [{"label": k, "audio": _url(job, f"{k}.wav"), "image": _url(job, pngs[k])} for k in signals]}


def run_generate(job, max_seconds: float) -> dict:
    ok, why = generation_status()
    if not ok:
        raise ConfigError(f"text-to-music is not available here: {why}")
    from ..audio import write_audio
    from ..generation import Generator
    prompt = str(job.options.get("prompt") or "")[:300]
    seconds = min(float(job.options.get("seconds") or 8.0), 30.0, max_seconds)
    gen = _cached(("gen",), Generator.from_pretrained)
    job.report(0.05, "generating")
    total, done = max(1.0, seconds * float(getattr(gen.codec, "frame_rate", 70.0))), [0]

    def step(n=1):
        done[0] += n
        job.report(0.05 + 0.85 * min(1.0, done[0] / total), "generating")

    # latentmix.generation.Generator.generate(prompts, seconds, ...) -> (B, 1, T) at the codec's rate
    audio = gen.generate(prompt or None, seconds=seconds, progress=step)
    audio = torch.as_tensor(audio).float()[0].mean(0)
    sr = int(gen.sample_rate)
    write_audio(job.folder / "out" / "generated.wav", audio[None].numpy(), sr)
    pngs = _spectrograms(job, {"generated": audio.numpy()}, sr)
    return {"kind": "generate", "prompt": prompt, "seconds": round(len(audio) / sr, 2),
            "items": [{"label": "generated", "audio": _url(job, "generated.wav"),
                       "image": _url(job, pngs["generated"])}]}


TASKS = {"separate": run_separate, "codec": run_codec, "generate": run_generate}


def runner(max_seconds: float):
    def run(job) -> dict:
        return TASKS[job.task](job, max_seconds)
    return run


def sniff(path: Path) -> str:
    """The audio format of a file from its first bytes (never its name): wav, flac, ogg, mp3 or aiff, and
    readable by soundfile with at least one frame; InputError otherwise."""
    import soundfile as sf
    with open(path, "rb") as f:
        head = f.read(12)
    if len(head) == 0:
        raise InputError("the upload is empty")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        fmt = "wav"
    elif head[:4] == b"fLaC":
        fmt = "flac"
    elif head[:4] == b"OggS":
        fmt = "ogg"
    elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        fmt = "aiff"
    elif head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        fmt = "mp3"
    else:
        raise InputError("the upload is not a WAV, FLAC, Ogg, AIFF or MP3 file (its content says so, whatever "
                         "its name)")
    try:
        info = sf.info(str(path))
    except Exception:
        raise InputError(f"the upload looks like {fmt.upper()} but cannot be decoded") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise InputError("the upload holds no audio samples")
    return fmt
