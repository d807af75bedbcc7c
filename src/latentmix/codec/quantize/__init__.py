"""Bottlenecks of the codec: VQ, residual VQ, SOM codebooks, a continuous VAE and a continuous energy-transformer
bottleneck, behind one interface.

`build_quantizer(dim, config)` turns the codec config's `quantizer` dict into a module.
"""
from __future__ import annotations

from ...errors import ConfigError
from .base import Quantizer, QuantizerOutput, no_codebook_update
from .energy import EnergyBottleneck
from .rvq import ResidualVectorQuantizer
from .som import SOMQuantizer
from .vae import VAEBottleneck
from .vq import VectorQuantizer, kmeans

__all__ = ["EnergyBottleneck", "Quantizer", "QuantizerOutput", "no_codebook_update", "ResidualVectorQuantizer",
           "SOMQuantizer",
           "VAEBottleneck", "VectorQuantizer", "kmeans", "build_quantizer"]

_LEVEL_KEYS = {"codebook_dim", "l2_normalize", "ema", "decay", "kmeans_init", "kmeans_iters", "dead_threshold",
               "dead_fraction", "kmeans_min_vectors", "eps"}
_SOM_KEYS = {"som_grid", "som_radius", "som_kernel", "som_radius_end", "som_radius_steps", "som_init"}
_ENERGY_KEYS = {"energy_steps", "energy_step_size", "energy_heads", "energy_head_dim", "energy_memories",
                "energy_window", "energy_beta"}


def build_quantizer(dim: int, config: dict | None) -> Quantizer:
    """config: {type: rvq|vq|som|vae|energy, num_codebooks, codebook_size, quantizer_dropout, codebook_dim,
    shared_codebook, som_*, energy_*, ...} (every key: docs/codec_config.md)."""
    cfg = dict(config or {"type": "rvq"})
    kind = cfg.pop("type", "rvq")
    allowed = {"num_codebooks", "codebook_size", "quantizer_dropout", "shared_codebook"} | _LEVEL_KEYS \
        | _SOM_KEYS | _ENERGY_KEYS
    unknown = set(cfg) - allowed
    if unknown:
        raise ConfigError(f"unknown quantizer option(s) {sorted(unknown)}")
    if kind == "vae":
        return VAEBottleneck(dim)
    if kind == "energy":
        return EnergyBottleneck(dim, **{k[len("energy_"):]: cfg[k] for k in _ENERGY_KEYS if k in cfg})
    if kind not in ("rvq", "vq", "som"):
        raise ConfigError(f"unknown quantizer type '{kind}' (rvq, vq, som, vae or energy)")
    level_kwargs = {k: cfg[k] for k in _LEVEL_KEYS if k in cfg}
    level_cls = VectorQuantizer
    if kind == "som":
        level_cls = SOMQuantizer
        level_kwargs.update({k: cfg[k] for k in _SOM_KEYS if k in cfg})
    n = 1 if kind == "vq" else int(cfg.get("num_codebooks", 8))
    return ResidualVectorQuantizer(dim, n, int(cfg.get("codebook_size", 1024)),
                                   float(cfg.get("quantizer_dropout", 0.0 if n == 1 else 0.5)),
                                   level_cls=level_cls, shared_codebook=bool(cfg.get("shared_codebook", False)),
                                   **level_kwargs)
