"""Named separation methods for `latentmix separate` / `latentmix eval`: names -> method factories, nothing else.

A method object has `name`, `stems`, `needs_references`, `segment_seconds`, optionally `hop` (its segments start
on multiples of it; default 1) and `separate(mix (n, 1, T), refs (n, S, T) | None) -> (n, S, T)`;
separation.apply.separate_long runs one over long audio. The built-in methods are imported only when asked for.
"""
from __future__ import annotations

import importlib

from ..errors import ConfigError

_BUILTIN = {"oracle-irm": "latentmix.separation.oracle:OracleIRM",
            "supervised": "latentmix.separation.supervised:SupervisedSeparator",
            "lq-vae": "latentmix.separation.bayesian.method:lq_vae",
            "lass": "latentmix.separation.bayesian.method:lass",
            "hybrid": "latentmix.separation.bayesian.method:hybrid"}
_FACTORIES: dict = {}


def register_method(name: str, factory) -> None:
    """Register `factory(**opts) -> method object` under `name` (replacing a built-in or earlier one)."""
    _FACTORIES[name] = factory


def _factory(name: str):
    """The factory registered as `name`, or None when unknown or its module is not part of this build."""
    if name in _FACTORIES:
        return _FACTORIES[name]
    if name not in _BUILTIN:
        return None
    module, attr = _BUILTIN[name].split(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as e:
        if e.name != module:      # the module exists but one of its own imports is missing: say so
            raise
        return None


def available_methods() -> list[str]:
    """Sorted names of every method that can be built here."""
    return sorted(n for n in set(_BUILTIN) | set(_FACTORIES) if _factory(n) is not None)


def get_method(name: str, **opts):
    """Build the method `name` with keyword options (None values are dropped); ConfigError if unknown."""
    factory = _factory(name)
    if factory is None:
        raise ConfigError(f"unknown or unavailable separation method '{name}' "
                          f"(known: {', '.join(available_methods()) or 'none'})")
    return factory(**{k: v for k, v in opts.items() if v is not None})
