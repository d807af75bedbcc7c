"""Named separation methods for `latentmix separate` / `latentmix eval`: a registry of factories.

A method object has `name`, `stems`, `needs_references`, `segment_seconds` and
`separate(mix (n, 1, T), refs (n, S, T) | None) -> (n, S, T)`; the CLI stitches long files with apply_chunked.
"""
from __future__ import annotations

import importlib

import torch

from .. import STEMS
from ..errors import ConfigError
from .oracle import irm

_FACTORIES: dict = {}
# modules that register methods when imported; tried lazily so that they may appear later
_PLUGIN_MODULES = ("latentmix.separation.supervised",)


def register_method(name: str, factory) -> None:
    """Register `factory(**opts) -> method object` under `name` (a later registration replaces it)."""
    _FACTORIES[name] = factory


def _load_plugins() -> None:
    for mod in _PLUGIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:     # the module exists but one of its own imports is missing: say so
                raise


def available_methods() -> list[str]:
    """Sorted names of every registered method (importing the optional method modules first)."""
    _load_plugins()
    return sorted(_FACTORIES)


def get_method(name: str, **opts):
    """Build the method `name` with keyword options (None values are dropped); ConfigError if unknown."""
    if name not in _FACTORIES:
        _load_plugins()
    if name not in _FACTORIES:
        raise ConfigError(f"unknown or unavailable separation method '{name}' "
                          f"(known: {', '.join(sorted(_FACTORIES)) or 'none'})")
    return _FACTORIES[name](**{k: v for k, v in opts.items() if v is not None})


class OracleIRM:
    """Ideal ratio mask from the true stems (an upper bound, not a separator): needs the references."""
    name = "oracle-irm"
    needs_references = True

    def __init__(self, stems=STEMS, n_fft: int = 2048, hop: int = 512, power: float = 2.0,
                 device: str = "cpu", segment_seconds: float = 30.0, **_ignored):
        self.stems = tuple(stems)
        self.n_fft, self.hop, self.power = n_fft, hop, power
        self.device = torch.device(device)
        self.segment_seconds = segment_seconds

    def separate(self, mix: torch.Tensor, refs: torch.Tensor | None) -> torch.Tensor:
        """mix (n, 1, T), refs (n, S, T) -> (n, S, T) on the input's device."""
        if refs is None:
            raise ConfigError("method 'oracle-irm' needs the reference stems")
        dev = mix.device
        return irm(mix.to(self.device), refs.to(self.device), self.n_fft, self.hop, self.power).to(dev)


register_method("oracle-irm", OracleIRM)


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when available else 'cpu'; ConfigError for an unavailable or unknown device."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(f"unknown device '{device}' (use auto, cpu or cuda)")
    return device


def separate_long(method, mix: torch.Tensor, refs: torch.Tensor | None = None, segment_seconds: float | None = None,
                  overlap: float = 0.25, sr: int = 22050, batch_size: int = 4, progress: bool = False) -> torch.Tensor:
    """Separate a whole track with `method`, segment by segment: mix (B, 1, T), refs (B, S, T) -> (B, S, T).

    Segments of `segment_seconds` (default: the method's own) are stitched by apply_chunked; a method that
    needs references gets the matching slices of refs.
    """
    from .stitch import apply_chunked

    seconds = segment_seconds or getattr(method, "segment_seconds", 10.0)
    segment = max(1, int(round(seconds * sr)))
    S = len(method.stems)
    if method.needs_references:
        if refs is None:
            raise ConfigError(f"method '{method.name}' needs the reference stems")
        x = torch.cat([mix, refs.to(mix.dtype)], dim=1)

        def fn(chunk):
            return method.separate(chunk[:, :1], chunk[:, 1:])
    else:
        x = mix

        def fn(chunk):
            return method.separate(chunk, None)
    with torch.inference_mode():
        return apply_chunked(fn, x, segment, overlap, num_outputs=S, batch_size=batch_size, progress=progress)
