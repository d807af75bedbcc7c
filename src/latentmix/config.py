"""YAML configs with `--set key=value` overrides (dotted keys), validated into plain dicts.

Every run saves its resolved config next to its outputs, so a result can be reproduced from its folder.
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

from .errors import ConfigError

CONFIG_ROOT = Path(__file__).resolve().parent / "configs"     # package data (the repository's configs/ links here)


def presets(group: str) -> list[str]:
    """The names of the shipped presets of `group` (codec, separator, prior)."""
    return sorted(p.stem for p in (CONFIG_ROOT / group).glob("*.yaml"))


def resolve_config_path(name_or_path: str, group: str) -> Path:
    """A config path, or a preset name looked up in the packaged configs/<group>/<name>.yaml."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise ConfigError(f"{p}: no such config file")
        return p
    q = CONFIG_ROOT / group / f"{name_or_path}.yaml"
    if q.exists():
        return q
    raise ConfigError(f"unknown {group} preset '{name_or_path}' (known: {', '.join(presets(group)) or 'none'}; "
                      f"or give a .yaml path)")


def load_yaml(path, _chain: tuple = ()) -> dict:
    """A YAML config file as a dict (ConfigError naming the file for anything that is not a YAML mapping). A top-level
    `base: NAME` key starts from NAME.yaml beside the file (a preset that differs from another in a few values, e.g.
    spec_wide from spec): this file's values replace the base's, section by section."""
    path = Path(path)
    if path.resolve() in _chain:
        raise ConfigError(f"{path}: its `base:` chain comes back to itself")
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:   # unreadable, not text, bad dates
        raise ConfigError(f"{path}: not a readable YAML file ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"{path}: section names must be text, got {bad[0]!r}")
    if "base" in data:
        base = data.pop("base")
        if not isinstance(base, str) or not base or "/" in base:
            raise ConfigError(f"{path}: `base:` must name a config beside it, got {base!r}")
        data = _merged(load_yaml(path.parent / f"{base.removesuffix('.yaml')}.yaml", _chain + (path.resolve(),)),
                       data)
    return _fix_floats(data, {})


def _merged(base: dict, over: dict) -> dict:
    """`base` with `over`'s values in place of its own, mappings merged key by key (lists and scalars replaced)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _fix_floats(node, seen: dict):
    """YAML 1.1 leaves `3e-4` (no dot) as a string; configs mean the number. `seen` maps id(node) to its result,
    so YAML aliases (shared nodes, however many) are converted once."""
    if id(node) in seen:
        return seen[id(node)]
    if isinstance(node, dict):
        out = seen[id(node)] = {}
        out.update((k, _fix_floats(v, seen)) for k, v in node.items())
        return out
    if isinstance(node, list):
        out = seen[id(node)] = []
        out.extend(_fix_floats(v, seen) for v in node)
        return out
    if isinstance(node, str):
        try:
            return float(node) if any(c in node.lower() for c in "e.") and not node.isalpha() else node
        except ValueError:
            return node
    return node


def parse_value(text: str):
    """Parse an override value with YAML rules (numbers, booleans, lists), falling back to the string."""
    for cast in (int, float):  # YAML 1.1 reads "3e-4" as a string
        try:
            return cast(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(config: dict, overrides: list[str] | None) -> dict:
    """Return a copy of `config` with `key.sub=value` overrides applied; unknown top-level sections are errors."""
    config = copy.deepcopy(config)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = config
        for part in parts[:-1]:
            if part not in node or not isinstance(node[part], dict):
                raise ConfigError(f"--set {key}: unknown config section '{part}'")
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(f"--set {key}: unknown config key '{parts[-1]}'")
        node[parts[-1]] = parse_value(value)
    return config


def load_config(name_or_path: str, group: str, overrides: list[str] | None = None) -> dict:
    return apply_overrides(load_yaml(resolve_config_path(name_or_path, group)), overrides)


def save_config(config: dict, path) -> None:
    from .fileio import atomic_path
    with atomic_path(path) as tmp:
        Path(tmp).write_text(yaml.safe_dump(config, sort_keys=False))
