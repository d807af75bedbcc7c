"""The supervised separator architectures ('spec', 'codec', 'latent') behind one build/load entry point.

Every model's forward maps a mixture (batch, 1, time) to a SeparatorOutput: stems (batch, S, time) for the
config's `stems` (default the four), named unweighted loss terms (given targets) and stats; see base.py.
"""
from __future__ import annotations

from pathlib import Path

from ...checkpoint import read_header
from ...errors import ConfigError, ModelFileError
from .base import TERMS, SeparatorBase, SeparatorOutput, legacy_weights, separation_losses

ARCHS = ("spec", "codec", "latent")


def separator_class(arch: str):
    """The class implementing `arch` (imported lazily: the latent arch needs the codec package)."""
    if arch == "spec":
        from .spec_sep import SpecSeparator
        return SpecSeparator
    if arch == "codec":
        from .codec_sep import CodecSeparator
        return CodecSeparator
    if arch == "latent":
        from .latent_sep import LatentSeparator
        return LatentSeparator
    raise ConfigError(f"unknown separator arch '{arch}' (known: {', '.join(ARCHS)})")


def build_separator(config: dict):
    """A fresh separator from a model config {arch: spec|codec|latent, stems: [...] (default the four), ...
    constructor kwargs}; the model has one output per stem, in that order."""
    config = dict(config or {})
    stems = config.get("stems")
    if isinstance(stems, list) and len(set(stems)) != len(stems):
        raise ConfigError(f"model.stems: each stem at most once, got {', '.join(map(str, stems))}")
    arch = config.get("arch", "spec")
    config["arch"] = arch
    return separator_class(arch).from_config(config)


def load_separator(path, device="cpu"):
    """Load any separator file (kind 'separator'), dispatching on its config's arch; strict, eval mode."""
    header = read_header(path)
    if header.get("kind") != SeparatorBase.KIND:
        raise ModelFileError(f"{path}: is a '{header.get('kind')}' file, expected 'separator'")
    arch = (header.get("config") or {}).get("arch")
    if arch not in ARCHS:
        raise ModelFileError(f"{Path(path)}: separator file with unknown arch '{arch}'")
    return separator_class(arch).load(path, device=device)


__all__ = ["ARCHS", "TERMS", "SeparatorBase", "SeparatorOutput", "build_separator", "legacy_weights",
           "load_separator", "separation_losses", "separator_class"]
