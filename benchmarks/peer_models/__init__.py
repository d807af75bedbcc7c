"""Same-budget peers: HTDemucs / Demucs separators and an EnCodec codec, trained by latentmix's one loop.

Install with `make peers` (demucs and encodec with --no-deps, plus the `[peers]` extra); `benchmarks/peers.py`
trains and scores them beside latentmix's models. Nothing in the latentmix package imports this folder.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util  # find_spec (a bare `import importlib` does not load .util)
import sys
import types

PINS = {"demucs": "4.1.0", "encodec": "0.1.1"}


class PeersMissing(ImportError):
    """A peer package is not installed (run `make peers`)."""


def _torchaudio_guard() -> None:
    """encodec imports torchaudio at module level for its file helpers (save_audio, convert_audio), which the
    model classes never call. Installing torchaudio would replace the pinned CPU torch, so when it is absent
    an empty placeholder module stands in; any attribute use raises, so nothing can silently depend on it."""
    if "torchaudio" in sys.modules or importlib.util.find_spec("torchaudio") is not None:
        return
    mod = types.ModuleType("torchaudio")

    def __getattr__(name):
        if name.startswith("__"):         # introspection (hasattr(mod, '__file__'), ...) sees a bare module
            raise AttributeError(name)
        raise ImportError(f"torchaudio.{name} is not available: the peers run without torchaudio")

    mod.__getattr__ = __getattr__
    # a spec with no loader: importlib.util.find_spec (transformers asks it) answers instead of raising, and
    # no installed distribution backs it, so libraries that check the version see torchaudio as absent
    mod.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
    sys.modules["torchaudio"] = mod


def require(name: str):
    """Import a peer package (demucs or encodec) or raise PeersMissing with the install command."""
    if name == "encodec":
        _torchaudio_guard()
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise PeersMissing(f"the peer package '{name}' is not importable ({e}); run `make peers`") from None


def available() -> dict[str, bool]:
    """{package: importable} for the peer packages, without raising."""
    out = {}
    for name in PINS:
        try:
            require(name)
            out[name] = True
        except PeersMissing:
            out[name] = False
    return out
