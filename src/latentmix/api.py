"""The Python API: what `latentmix separate` and `latentmix codec` do, in a few lines.

    from latentmix import Codec, Separator
    from latentmix.audio import read_audio, info

    wav = read_audio("song.mp3", sr=None, mono=False)       # (channels, T) at the file's own rate
    sr = info("song.mp3")[1]
    sep = Separator.from_pretrained()                       # the shipped separator (`latentmix models`)
    stems = sep.separate(wav, sr)                           # {"bass": (channels, T), ...}: same rate, channels,
                                                            # length; they sum to `wav`
    codec = Codec.from_pretrained()
    c = codec.compress(wav, sr, num_codebooks=8)            # {"codes": (channels, 8, frames), ...}
    y = codec.decompress(c)                                 # (channels, T) at sr

Everything runs in inference mode: no result requires grad, and lengths are the input's.
"""
from __future__ import annotations

import torch

from .codec.model import Codec


class Separator:
    """A separation method with the input's format kept (separation.fullband.separate_audio)."""

    def __init__(self, method, segment_seconds: float | None = None, overlap: float = 0.25, batch_size: int = 4):
        self.method = method
        self.segment_seconds, self.overlap, self.batch_size = segment_seconds, overlap, batch_size

    @classmethod
    def from_pretrained(cls, name: str = "separator", device: str = "auto", **options) -> Separator:
        """The shipped separator by name (`latentmix models`) or a separator model file; `options`:
        segment_seconds, overlap, batch_size."""
        from .device import resolve_device
        from .pretrained.registry import resolve_model, resolve_name
        from .separation.registry import get_method
        path = resolve_name(name, "separator") if name in ("separator", "default") else resolve_model(name,
                                                                                                     "separator")
        return cls(get_method("supervised", model=str(path), device=resolve_device(device)), **options)

    @property
    def stems(self) -> tuple[str, ...]:
        return tuple(self.method.stems)

    @property
    def sample_rate(self) -> int:
        """The model's own rate (inputs of any rate are resampled for it and back)."""
        return int(self.method.sample_rate)

    def separate(self, wav: torch.Tensor, sample_rate: int, mono: bool = False) -> dict[str, torch.Tensor]:
        """wav (channels, T) or (T,) at `sample_rate` -> {stem: (channels, T)} at that rate: mono and stereo as
        given (more channels: stereo), exactly T samples, summing to the input (see separation.fullband)."""
        from .separation.fullband import separate_audio
        wav = torch.as_tensor(wav).detach().float().cpu()
        wav = wav[None] if wav.dim() == 1 else wav
        with torch.inference_mode():
            stems, _, _ = separate_audio(self.method, wav, int(sample_rate), None, mono, self.segment_seconds,
                                         self.overlap, self.batch_size)
        return {s: stems[:, i].clone() for i, s in enumerate(self.method.stems)}


__all__ = ["Codec", "Separator"]
