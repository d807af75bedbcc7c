"""The codec contract: what every codec (latentmix's `Codec`, the EnCodec peer, ...) provides, and the maths they
share, written once here.

A codec maps audio (B, channels, T) at `sample_rate` to integer codes (B, n, F), n <= num_codebooks residual
levels of `codebook_size` codes each, F = ceil(T / hop_length) frames, and back to audio (B, channels, F * hop).
A subclass sets the attributes `sample_rate`, `channels`, `hop_length`, `num_codebooks`, `codebook_size` (plain
attributes or properties) and `KIND` (its model-file kind), and implements `encode`, `from_codes`, `decode` and
`context_frames`. The base gives it `frame_rate`, `bitrate`, `pad`, chunked inference and the .lmxc header.

Chunked inference: `context_frames()` returns the margins (encode, decode), in frames, that make a window's
central frames independent of what lies outside the window; `encode_chunked` / `decode_chunked` then process
`chunk_frames` frames at a time with those margins and return exactly what `encode` / `decode` return on the whole
signal (bounded memory). A codec whose context is unbounded (a recurrent layer) returns None: its chunked calls
process the whole signal as one window (still exact, memory not bounded).
"""
from __future__ import annotations

import abc
import contextlib
import hashlib
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import ModelFileError


def bits_per_second(sample_rate: float, hop_length: float, num_codebooks: int, codebook_size: int) -> float:
    """The bitrate of n codebooks of `codebook_size` codes at sample_rate / hop_length frames per second:
    frame_rate * n * log2(codebook_size). The one bitrate formula (models and code-file headers both use it)."""
    return sample_rate / hop_length * num_codebooks * math.log2(max(codebook_size, 1))


def model_file_id(path) -> dict:
    """{"model": file name, "model_sha256": first 16 hex digits of its SHA-256}: a code file's model identity."""
    path = Path(path)
    return {"model": path.name, "model_sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16]}


def _device_of(model) -> torch.device:
    p = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    return p.device if p is not None else torch.device("cpu")


class CodecModel(abc.ABC):
    """The codec contract (see the module docstring). Mixed into a torch module next to `ModelIO`."""

    KIND: str
    sample_rate: int
    channels: int
    hop_length: int
    num_codebooks: int
    codebook_size: int
    is_continuous: bool = False       # True: continuous latents only (VAE, energy), no discrete codes

    # ------------------------------------------------------------------ to implement
    @abc.abstractmethod
    def encode(self, wav: torch.Tensor, num_codebooks: int | None = None) -> torch.Tensor:
        """wav (B, channels, T) -> codes (B, n, ceil(T / hop)) int64 in [0, codebook_size); n = num_codebooks
        (all levels by default). Inference only: never updates codebooks."""

    @abc.abstractmethod
    def from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, K, F), K <= num_codebooks -> the decoder's input latents (B, D, F)."""

    @abc.abstractmethod
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, K, F), K <= num_codebooks -> wav (B, channels, F * hop); the decoder applied to from_codes."""

    @abc.abstractmethod
    def context_frames(self) -> tuple[int, int] | None:
        """Margins in frames (encode, decode) that make chunked results equal whole-signal results; None when the
        context is unbounded (chunked calls then take the whole signal as one window)."""

    # ------------------------------------------------------------------ shared maths
    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def bitrate(self, num_codebooks: int | None = None) -> float:
        """Bits per second at `num_codebooks` levels (all by default)."""
        n = self.num_codebooks if num_codebooks is None else int(num_codebooks)
        return bits_per_second(self.sample_rate, self.hop_length, n, self.codebook_size)

    def num_frames(self, length: int) -> int:
        """Frames (codes per level) for `length` samples: ceil(length / hop)."""
        return -(-int(length) // self.hop_length)

    def levels(self, num_codebooks: int | None) -> int:
        """The number of levels an encode at `num_codebooks` uses (ValueError outside 1..num_codebooks)."""
        if num_codebooks is None:
            return self.num_codebooks
        if not 1 <= int(num_codebooks) <= self.num_codebooks:
            raise ValueError(f"num_codebooks must be in 1..{self.num_codebooks}, got {num_codebooks}")
        return int(num_codebooks)

    def pad(self, wav: torch.Tensor) -> torch.Tensor:
        """Check wav is (B, channels, T) and zero-pad T up to a multiple of hop_length."""
        if wav.dim() != 3 or wav.shape[1] != self.channels:
            raise ValueError(f"expected audio (batch, {self.channels}, time), got {tuple(wav.shape)}")
        rest = (-wav.shape[-1]) % self.hop_length
        return F.pad(wav, (0, rest)) if rest else wav

    def inference_context(self):
        """A context entered around chunked inference (a codec may cache weights there); nothing by default."""
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ chunked inference
    def encode_chunked(self, wav: torch.Tensor, num_codebooks: int | None = None, chunk_frames: int = 2048,
                       progress=None) -> torch.Tensor:
        """wav (B, C, T) -> codes (B, n, ceil(T / hop)) computed window by window (bounded memory).

        Each chunk of `chunk_frames` frames is encoded with a margin of `context_frames()[0]` frames (>= the
        receptive field) on both sides and only its central frames are kept, so the codes equal `encode(wav)`.
        `progress(frames)` is called after each chunk.
        """
        hop, ctx = self.hop_length, self.context_frames()
        wav = self.pad(wav)
        frames = wav.shape[-1] // hop
        chunk, margin = (max(frames, 1), 0) if ctx is None else (int(chunk_frames), ctx[0])
        out = []
        with self.inference_context():
            for f0 in range(0, frames, chunk):
                f1 = min(frames, f0 + chunk)
                w0, w1 = max(0, f0 - margin), min(frames, f1 + margin)
                codes = self.encode(wav[..., w0 * hop:w1 * hop], num_codebooks)
                out.append(codes[..., f0 - w0:f1 - w0])
                if progress is not None:
                    progress(f1 - f0)
        return torch.cat(out, -1)

    def decode_chunked(self, codes: torch.Tensor, chunk_frames: int = 2048, progress=None) -> torch.Tensor:
        """codes (B, K, F) -> wav (B, C, F * hop), decoded window by window with `context_frames()[1]` margins;
        equal to `decode(codes)`."""
        hop, ctx = self.hop_length, self.context_frames()
        frames = codes.shape[-1]
        chunk, margin = (max(frames, 1), 0) if ctx is None else (int(chunk_frames), ctx[1])
        out = []
        with self.inference_context():
            for f0 in range(0, frames, chunk):
                f1 = min(frames, f0 + chunk)
                w0, w1 = max(0, f0 - margin), min(frames, f1 + margin)
                wav = self.decode(codes[..., w0:w1])
                out.append(wav[..., (f0 - w0) * hop:(f1 - w0) * hop])
                if progress is not None:
                    progress(f1 - f0)
        return torch.cat(out, -1)

    # ------------------------------------------------------------------ audio in its own format
    def compress(self, wav: torch.Tensor, sample_rate: int | None = None, num_codebooks: int | None = None,
                 chunk_frames: int = 2048) -> dict:
        """wav (channels, T) at `sample_rate` (default: the codec's) -> {"codes": (C, n, F) int64, "sample_rate",
        "channels", "length"}: each channel encoded on its own at the codec's rate (a mono codec), in inference
        mode and in chunks (codes equal to whole-signal codes). `decompress` gives the audio back."""
        from ..audio import to_rate
        sr = int(sample_rate or self.sample_rate)
        if wav.dim() != 2:
            raise ValueError(f"compress: expected audio (channels, time), got {tuple(wav.shape)}")
        Tm = int(round(wav.shape[-1] * self.sample_rate / sr))
        x = torch.from_numpy(to_rate(wav.detach().cpu().float().numpy(), sr, self.sample_rate, Tm))
        x = x[:, None] if self.channels == 1 else x[None]
        with torch.inference_mode():
            codes = self.encode_chunked(x.to(_device_of(self)), num_codebooks, chunk_frames)
        return {"codes": codes, "sample_rate": sr, "channels": int(wav.shape[0]), "length": int(wav.shape[-1]),
                "model_length": Tm}

    def decompress(self, compressed: dict, chunk_frames: int = 2048) -> torch.Tensor:
        """The inverse of `compress`: (channels, length) at its sample_rate, exactly the input's length."""
        from ..audio import to_rate
        with torch.inference_mode():
            wav = self.decode_chunked(compressed["codes"], chunk_frames)[..., :compressed["model_length"]]
        x = wav.reshape(-1, wav.shape[-1]) if self.channels == 1 else wav[0]
        return torch.from_numpy(to_rate(x.cpu().numpy(), self.sample_rate, compressed["sample_rate"],
                                        compressed["length"]))

    # ------------------------------------------------------------------ the .lmxc header
    def code_header(self, original_length: int, chunk_frames: int | None = None, model_id: dict | None = None,
                    **extra) -> dict:
        """The .lmxc header for codes of a signal of `original_length` samples made by this codec: model
        identity (`model_id`, e.g. model_file_id(path)), model_kind, sample_rate, hop_length, channels,
        codebook_size, original_length and chunking {chunk_frames, margin_frames} (both None when the codec's
        context is unbounded and the whole signal was one window), plus `extra` (e.g. source=...).
        `write_codes` adds shape, dtype, num_codebooks and frames."""
        ctx = self.context_frames()
        chunking = {"chunk_frames": None if ctx is None or chunk_frames is None else int(chunk_frames),
                    "margin_frames": None if ctx is None else int(ctx[0])}
        return {**(model_id or {}), "model_kind": self.KIND, "sample_rate": int(self.sample_rate),
                "hop_length": int(self.hop_length), "channels": int(self.channels),
                "codebook_size": int(self.codebook_size), "original_length": int(original_length),
                "chunking": chunking, **extra}

    def check_code_header(self, header: dict, codes: torch.Tensor, model_id: dict | None = None,
                          source: str = "codes") -> list[str]:
        """Refuse (ModelFileError naming `source`) codes (B, K, F) with their header that this codec cannot decode:
        another sample rate, hop, channel count or codebook size, or more levels than it has. Returns warnings
        (codes made by another model file than `model_id`'s)."""
        for key in ("sample_rate", "hop_length", "channels", "codebook_size"):
            have = int(getattr(self, key))
            if int(header.get(key, have)) != have:
                raise ModelFileError(f"{source}: {key} {header.get(key)} does not match the model's {have}")
        if codes.dim() != 3:
            raise ModelFileError(f"{source}: codes must be (batch, codebooks, frames), got {tuple(codes.shape)}")
        if codes.shape[1] > self.num_codebooks:
            raise ModelFileError(f"{source}: {codes.shape[1]} codebooks, the model has {self.num_codebooks}")
        sha = (model_id or {}).get("model_sha256")
        if sha is not None and header.get("model_sha256") not in (None, sha):
            return [f"{source} was encoded with another model ({header.get('model')})"]
        return []
