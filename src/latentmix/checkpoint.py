"""The one model-file format: safetensors tensors plus a JSON header, for every model kind.

The header (safetensors metadata key "latentmix") holds kind, format_version, config, config_version,
latentmix_version and training provenance. format_version is the file layout (all kinds); config_version is the
version of one kind's config (ModelIO.migrate_config upgrades an older one at load). Loading is strict: wrong
kind, newer format or config version, missing/extra/mis-shaped tensors, truncated or non-safetensors files all
raise ModelFileError naming the file. No pickle is ever loaded.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from . import __version__
from .errors import ConfigError, ModelFileError
from .fileio import atomic_path
from .validation import ModelHeader, check_kwargs, validate

FORMAT_VERSION = 1


def save_tensors(path, tensors: dict[str, torch.Tensor], header: dict) -> None:
    """Write tensors and a JSON header atomically to a safetensors file."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"latentmix": json.dumps(header)})


def export_half(src, dst) -> Path:
    """A shipped copy of a model file with its float32 tensors stored as float16 (half the bytes; loading casts
    them back to the model's float32). The header records it as `stored_dtype`; everything else is kept."""
    header, tensors = load_tensors(src)
    half = {k: v.half() if v.dtype == torch.float32 else v for k, v in tensors.items()}
    save_tensors(dst, half, {**header, "stored_dtype": "float16"})
    return Path(dst)


def average_models(paths, out, weights=None) -> Path:
    """A weight average ("model soup") of model files that share kind, config and tensors: fine-tunes of one
    model, whose average often generalises better than each. Float tensors are averaged (by `weights`, default
    equal); any other tensor must be equal in every file. ModelFileError names the first file that differs."""
    import hashlib
    import math
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise ConfigError("averaging needs at least two model files")
    weights = [1.0 / len(paths)] * len(paths) if weights is None else [float(w) for w in weights]
    if len(weights) != len(paths) or not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise ConfigError(f"averaging: {len(paths)} files need as many non-negative weights, got {weights}")
    weights = [w / sum(weights) for w in weights]
    header, first = load_tensors(paths[0])
    acc = {k: v.double() * weights[0] if v.is_floating_point() else v for k, v in first.items()}
    for path, w in zip(paths[1:], weights[1:]):
        h, tensors = load_tensors(path)
        if h.get("kind") != header.get("kind") or h.get("config") != header.get("config"):
            raise ModelFileError(f"{path}: another kind or config than {paths[0]}: only fine-tunes of one model "
                                 f"can be averaged")
        if set(tensors) != set(first) or any(tensors[k].shape != first[k].shape or tensors[k].dtype != first[k].dtype
                                             for k in first):
            raise ModelFileError(f"{path}: its tensors differ in names, shapes or types from {paths[0]}'s")
        for k, v in tensors.items():
            if v.is_floating_point():
                acc[k] += v.double() * w
            elif not torch.equal(v, first[k]):
                raise ModelFileError(f"{path}: non-float tensor {k} differs from {paths[0]}'s")
    out_tensors = {k: v.to(first[k].dtype) for k, v in acc.items()}
    sources = [{"file": str(p), "sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "weight": round(w, 6)}
               for p, w in zip(paths, weights)]
    save_tensors(out, out_tensors, {**header, "provenance": {"average_of": sources,
                                                             "first_provenance": header.get("provenance", {})}})
    return Path(out)


def read_header(path) -> dict:
    """The JSON header of a latentmix safetensors file (ModelFileError if it is not one)."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file")
    if path.stat().st_size == 0:
        raise ModelFileError(f"{path}: empty model file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:
        reason = str(e).splitlines()[0][:120]
        raise ModelFileError(f"{path}: not a safetensors model file or truncated ({reason})") from None
    if "latentmix" not in meta:
        raise ModelFileError(f"{path}: safetensors file without a latentmix header")
    try:
        header = json.loads(meta["latentmix"])
    except (json.JSONDecodeError, RecursionError):
        raise ModelFileError(f"{path}: corrupt latentmix header") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: corrupt latentmix header (a {type(header).__name__}, not a mapping)")
    version = header.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {version} is newer than this latentmix supports "
                             f"({FORMAT_VERSION}); upgrade latentmix")   # before the layout check: it may differ
    validate(ModelHeader, header, f"{path}: model header", ModelFileError)
    return header


def load_tensors(path, kind: str | None = None) -> tuple[dict, dict[str, torch.Tensor]]:
    """(header, tensors) of a model file, checking its kind and format version."""
    path = Path(path)
    header = read_header(path)
    if kind is not None and header.get("kind") != kind:
        raise ModelFileError(f"{path}: is a '{header.get('kind')}' file, expected '{kind}'")
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise ModelFileError(f"{path}: truncated or corrupt tensor data ({str(e).splitlines()[0][:120]})") from None
    return header, tensors


class ModelIO:
    """Mixin giving a torch module `from_config`, `save` and a strict `load` in the one model format.

    Subclasses set KIND and keep their constructor keyword arguments in `self.config` (JSON-serialisable). A
    change to what a kind's config holds bumps CONFIG_VERSION and teaches `migrate_config` the older version, so
    that files written before the change keep loading (a header without config_version is version 1).
    """

    KIND = "model"
    CONFIG_VERSION = 1

    @classmethod
    def migrate_config(cls, config: dict, version: int) -> dict:
        """A config saved at `version` (below CONFIG_VERSION), upgraded to CONFIG_VERSION; default: unchanged."""
        return config

    @classmethod
    def from_config(cls, config: dict):
        """A fresh model from its config, checked first (validation.check_kwargs: keys, types, ranges); a config
        the constructor still refuses is a ConfigError too."""
        check_kwargs(cls, config, f"invalid {cls.KIND} config")
        try:
            return cls(**config)
        except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, OverflowError) as e:
            raise ConfigError(f"invalid {cls.KIND} config: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                              ) from None
        except RuntimeError as e:      # torch refusing a shape the ranges let through (e.g. too large)
            raise ConfigError(f"invalid {cls.KIND} config: {str(e).splitlines()[0][:160]}") from None

    def save(self, path, provenance: dict | None = None) -> None:
        header = {"kind": self.KIND, "format_version": FORMAT_VERSION, "config": self.config,
                  "config_version": self.CONFIG_VERSION, "latentmix_version": __version__,
                  "provenance": provenance or {}}
        save_tensors(path, self.state_dict(), header)

    @classmethod
    def load(cls, path, device="cpu"):
        header, tensors = load_tensors(path, cls.KIND)
        version = header.get("config_version", 1)
        if version > cls.CONFIG_VERSION:
            raise ModelFileError(f"{path}: {cls.KIND} config version {version} is newer than this latentmix "
                                 f"supports ({cls.CONFIG_VERSION}); upgrade latentmix")
        config = dict(header["config"])
        try:
            if version < cls.CONFIG_VERSION:
                config = cls.migrate_config(config, version)
            model = cls.from_config(config)
        except ConfigError as e:
            raise ModelFileError(f"{path}: {e}") from None
        _check_tensors(path, cls.KIND, model.state_dict(), tensors)
        try:
            model.load_state_dict(tensors, strict=True)
        except RuntimeError as e:
            raise ModelFileError(f"{path}: cannot load its tensors ({str(e).splitlines()[0][:120]})") from None
        model.header = header
        return model.to(device).eval()


def _check_tensors(path, kind: str, own: dict, tensors: dict) -> None:
    """ModelFileError unless the file's tensors are exactly the model's, with the same shapes."""
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    if missing or extra:
        raise ModelFileError(f"{path}: tensors do not match the {kind} config "
                             f"(missing {missing[:3]}, unexpected {extra[:3]})")
    for k, v in tensors.items():
        if own[k].shape != v.shape:
            raise ModelFileError(f"{path}: tensor '{k}' has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
