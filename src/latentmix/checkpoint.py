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
from .errors import ModelFileError
from .fileio import atomic_path

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
        return json.loads(meta["latentmix"])
    except json.JSONDecodeError:
        raise ModelFileError(f"{path}: corrupt latentmix header") from None


def load_tensors(path, kind: str | None = None) -> tuple[dict, dict[str, torch.Tensor]]:
    """(header, tensors) of a model file, checking its kind and format version."""
    path = Path(path)
    header = read_header(path)
    if kind is not None and header.get("kind") != kind:
        raise ModelFileError(f"{path}: is a '{header.get('kind')}' file, expected '{kind}'")
    if int(header.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {header.get('format_version')} is newer than this "
                             f"latentmix supports ({FORMAT_VERSION}); upgrade latentmix")
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
        try:
            return cls(**config)
        except TypeError as e:
            from .errors import ConfigError
            raise ConfigError(f"invalid {cls.KIND} config: {e}") from None

    def save(self, path, provenance: dict | None = None) -> None:
        header = {"kind": self.KIND, "format_version": FORMAT_VERSION, "config": self.config,
                  "config_version": self.CONFIG_VERSION, "latentmix_version": __version__,
                  "provenance": provenance or {}}
        save_tensors(path, self.state_dict(), header)

    @classmethod
    def load(cls, path, device="cpu"):
        header, tensors = load_tensors(path, cls.KIND)
        version = int(header.get("config_version", 1))
        if version > cls.CONFIG_VERSION:
            raise ModelFileError(f"{path}: {cls.KIND} config version {version} is newer than this latentmix "
                                 f"supports ({cls.CONFIG_VERSION}); upgrade latentmix")
        config = dict(header["config"])
        if version < cls.CONFIG_VERSION:
            config = cls.migrate_config(config, version)
        model = cls.from_config(config)
        own = model.state_dict()
        missing = sorted(set(own) - set(tensors))
        extra = sorted(set(tensors) - set(own))
        if missing or extra:
            raise ModelFileError(f"{path}: tensors do not match the {cls.KIND} config "
                                 f"(missing {missing[:3]}, unexpected {extra[:3]})")
        for k, v in tensors.items():
            if own[k].shape != v.shape:
                raise ModelFileError(f"{path}: tensor '{k}' has shape {tuple(v.shape)}, "
                                     f"expected {tuple(own[k].shape)}")
        model.load_state_dict(tensors, strict=True)
        model.header = header
        return model.to(device).eval()
