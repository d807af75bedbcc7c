"""The base of every evaluation record: a dataclass of plain values (str, int, float, None, lists and dicts of
them, nested records) that goes to JSON with `to_json()` and comes back with `Cls.from_json(d)`.

NaN and infinity stay floats: `json.dumps` writes them as NaN / Infinity (allow_nan, Python's default) and
`json.loads` reads them back, so a record survives a round trip through a .json file unchanged.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing


def _plain(v):
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "item") and callable(v.item):          # numpy / torch scalars
        return v.item()
    return v


class Record:
    """Mixin for the result dataclasses: `to_json()` (plain dict), `dumps()` (JSON text), `from_json(d)`.

    `from_json` rebuilds nested records from the field types: a field typed `SomeRecord`, `list[SomeRecord]`
    or `dict[str, SomeRecord]` is rebuilt; every other field is taken as it is."""

    def to_json(self) -> dict:
        return _plain(self)

    def dumps(self, **kw) -> str:
        return json.dumps(self.to_json(), **kw)

    @classmethod
    def from_json(cls, d: dict):
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in d:
                kwargs[f.name] = _rebuild(hints.get(f.name), d[f.name])
        return cls(**kwargs)


def _rebuild(tp, v):
    if v is None or tp is None:
        return v
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        inner = [a for a in args if a is not type(None)]
        return _rebuild(inner[0], v) if len(inner) == 1 else v
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp.from_json(v)
    if origin is list and args:
        return [_rebuild(args[0], x) for x in v]
    if origin is tuple:
        return tuple(v)
    if origin is dict and len(args) == 2:
        return {k: _rebuild(args[1], x) for k, x in v.items()}
    return v


def same(a, b, rel: float = 0.0) -> bool:
    """Equality of two plain values (to_json output) where NaN equals NaN; `rel` allows a relative tolerance."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], rel) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            return False
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or abs(a - b) <= rel * max(abs(a), abs(b))
    return a == b
