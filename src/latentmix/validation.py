"""The one validation layer: every value that crosses a boundary (command-line arguments, YAML configs, model
and code-file headers, model configs, checkpoints) is checked here, with pydantic, into typed, range-checked
values; a failure is one LatentmixError line naming the file (or flag) and the field.

pydantic is used rather than hand-written checks: it gives the types, ranges, unknown-key refusal and nested
locations (`model.quantizer.codebook_size`) of every schema for free. Schemas are strict (no "3" for 3, no
True for 1, no NaN or inf); the common value types are defined once below.

- `validate(schema, data, where, error)`: data -> schema instance, or `error("<where>: <field>: <problem>")`.
- `kwargs_schema(cls)`: the schema of a class's constructor keywords (types from its annotations or
  defaults, ranges from `RANGES` by parameter name), used for every model config (`check_kwargs`).
- `arg(kind)`: an argparse `type=` for the numeric options (`--segment`, `--batch-size`, `--seed`, ...).

Ground floor: it imports pydantic and latentmix.errors only; the schemas of a room's own settings live in that room
(train/settings.py) and are built from the types here.
"""
from __future__ import annotations

import argparse
import functools
import inspect
import math
import typing
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from .errors import ConfigError, LatentmixError

# ------------------------------------------------------------------------------------------------ value types

PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]      # [0, 1): dropouts, overlaps, decays
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Seed = Annotated[int, Field(ge=0, lt=2**63)]
SampleRate = Annotated[int, Field(ge=1000, le=768_000)]
Size = Annotated[int, Field(ge=1, le=1 << 20)]     # a model dimension: 0, -3 or 10**9 is a typo or a corrupt file

STRICT = ConfigDict(strict=True, extra="forbid")   # every schema is strict; most refuse unknown keys
OPEN = ConfigDict(strict=True, extra="allow")      # unknown keys kept (a task's own settings, a header's extras)


# ------------------------------------------------------------------------------------------------ errors

def _where(loc) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_SHORT = {   # pydantic's error types in the project's words
    "greater_than_equal": lambda c: f"must be >= {c['ge']}", "greater_than": lambda c: f"must be > {c['gt']}",
    "less_than_equal": lambda c: f"must be <= {c['le']}", "less_than": lambda c: f"must be < {c['lt']}",
    "int_type": lambda c: "expected an integer", "float_type": lambda c: "expected a number",
    "finite_number": lambda c: "expected a finite number", "bool_type": lambda c: "expected true or false",
    "string_type": lambda c: "expected text", "dict_type": lambda c: "expected a mapping",
    "list_type": lambda c: "expected a list",
}


def describe(e: ValidationError, prefix: str = "") -> str:
    """The first problem of a ValidationError as `field: problem (got value)`, one line."""
    err = e.errors(include_url=False)[0]
    loc = _where(((prefix,) if prefix else ()) + tuple(err["loc"]))
    msg = _SHORT.get(err["type"], lambda c: None)(err.get("ctx") or {}) \
        or err["msg"].replace("Input should be", "must be").replace("Value error, ", "")
    got = "" if err["type"] in ("missing", "extra_forbidden") else f" (got {_short(err.get('input'))})"
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    more = len(e.errors()) - 1
    return f"{loc}: {msg}{got}" + (f" (and {more} more problem{'s' * (more > 1)})" if more > 0 else "")


def validate(schema, data, where: str, error: type[LatentmixError] = ConfigError, prefix: str = ""):
    """`data` validated into `schema` (a pydantic model or any type TypeAdapter takes); `error` naming `where`
    and the first bad field otherwise."""
    try:
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            return schema.model_validate(plain(data))
        return _adapter(schema).validate_python(plain(data))
    except ValidationError as e:
        raise error(f"{where}: {describe(e, prefix)}") from None
    except (RecursionError, OverflowError) as e:   # absurdly nested or huge values in a hostile file
        raise error(f"{where}: unreadable value ({type(e).__name__})") from None


@functools.lru_cache(maxsize=None)
def _adapter(schema) -> TypeAdapter:
    return TypeAdapter(schema, config=ConfigDict(strict=True))


def plain(x):
    """Tuples as lists, recursively: configs built in Python use tuples where YAML and JSON give lists."""
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    return x


# ------------------------------------------------------------------------------------------------ model configs

class QuantizerConfig(BaseModel):
    """A codec's `quantizer` section (codec.quantize.build_quantizer)."""
    model_config = STRICT
    type: Literal["rvq", "vq", "som", "vae", "energy"] = "rvq"
    num_codebooks: Annotated[int, Field(ge=1, le=256)] = 8
    codebook_size: Annotated[int, Field(ge=1, le=1 << 24)] = 1024
    quantizer_dropout: Probability = 0.5
    codebook_dim: Size | None = None
    l2_normalize: bool = False
    ema: bool = True
    decay: Fraction = 0.99
    kmeans_init: bool = True
    kmeans_iters: Annotated[int, Field(ge=0, le=1000)] = 10
    dead_threshold: NonNegFloat | None = None
    dead_fraction: NonNegFloat = 0.1
    kmeans_min_vectors: NonNegInt = 0
    eps: PosFloat = 1e-5
    som_grid: Annotated[list[Size], Field(min_length=2, max_length=2)] | None = None
    som_radius: PosFloat = 1.0
    som_kernel: Literal["gaussian", "box"] = "gaussian"
    som_radius_end: NonNegFloat | None = None
    som_radius_steps: NonNegInt = 0
    som_init: Literal["kmeans", "ordered"] = "kmeans"
    shared_codebook: bool = False
    energy_steps: Size = 10
    energy_step_size: PosFloat = 0.1
    energy_heads: Size = 4
    energy_head_dim: Size = 16
    energy_memories: Size = 256
    energy_window: Size = 8
    energy_beta: PosFloat | None = None


class SpectralConfig(BaseModel):
    """A spectral codec's `spectral` section (codec/model.py, codec/spectral.py)."""
    model_config = STRICT
    dim: Size | None = None
    encoder_depth: Size | None = None
    decoder_depth: Size | None = None
    mult: Size | None = None
    n_fft: Size | None = None
    multires: NonNegInt = 0
    encoder_input: Literal["complex", "magnitude"] = "complex"


Ints = list[Size]
RANGES: dict[str, Any] = {
    # counts and sizes: a model with 0 or -3 of them is a corrupt file or a typo, never a choice
    **{k: Size for k in (
        "channels", "base_channels", "latent_dim", "max_channels", "dim", "hidden", "layers", "n_fft", "hop",
        "codebook_size", "num_codebooks", "codebook_dim", "heads", "depth", "kernel", "mult", "encoder_depth",
        "decoder_depth", "n_mels", "vocab_size", "max_len", "levels", "width", "kmeans_iters", "num_heads",
        "text_dim", "head_dim", "ff_mult", "context", "residual_kernel", "depth_layers", "cond_tokens")},
    **{k: Annotated[int, Field(ge=0, le=1 << 20)] for k in ("kmeans_min_vectors", "cond_dim")},
    "quantizer": Optional[QuantizerConfig],
    "spectral": Optional[SpectralConfig],
    "sample_rate": SampleRate,
    "strides": Ints,
    "dilations": list[Union[PosInt, list[PosInt]]],
    "segment_seconds": PosFloat,
    **{k: Fraction for k in ("dropout", "quantizer_dropout", "decay", "dead_fraction", "cond_dropout",
                             "attn_dropout")},
    "activation": Literal["snake", "elu"],
    "stems": Annotated[list[Literal["bass", "drums", "guitar", "piano", "other"]], Field(min_length=1)],
}


def _from_default(default) -> Any:
    if default is inspect.Parameter.empty or default is None:
        return Any
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return Finite
    if isinstance(default, str):
        return str
    if isinstance(default, (list, tuple)):
        return list
    if isinstance(default, dict):
        return dict
    return Any


def _annotation(name: str, param: inspect.Parameter, hints: dict) -> Any:
    if name in RANGES:
        t = RANGES[name]
    else:
        t = hints.get(name, _from_default(param.default))
        if t is float:
            t = Finite
        if typing.get_origin(t) is Union and float in typing.get_args(t):
            t = Optional[Finite]
        if t is inspect.Parameter.empty:
            t = Any
    if param.default is None:
        t = Optional[t]
    return t


@functools.lru_cache(maxsize=None)
def kwargs_schema(cls) -> type[BaseModel] | None:
    """A pydantic model of `cls(**kwargs)`'s keyword arguments (None when it takes **kwargs it forwards).
    Types come from the annotations (or the defaults' types), ranges from RANGES by parameter name; ints are
    accepted where a float is expected, nothing else is coerced."""
    sig = inspect.signature(cls.__init__)
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # an annotation that does not resolve: types from the defaults
        hints = {}
    fields = {}
    for name, p in list(sig.parameters.items())[1:]:
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):   # forwards what it is given: its callee checks
            return None
        default = ... if p.default is inspect.Parameter.empty else plain(p.default)
        fields[name] = (_annotation(name, p, hints), default)
    return create_model(f"{cls.__name__}Config", __config__=STRICT, **fields)


def check_kwargs(cls, config, what: str, error: type[LatentmixError] = ConfigError) -> dict:
    """`config` checked against `cls`'s constructor: a mapping with known keys of the right types and ranges.
    Returns it unchanged (defaults are the constructor's business); `error` naming `what` otherwise."""
    if not isinstance(config, dict):
        raise error(f"{what}: config must be a mapping, got {type(config).__name__}")
    schema = kwargs_schema(cls)
    if schema is not None:
        validate(schema, config, what, error)
    return config


# ------------------------------------------------------------------------------------------------ file headers

class ModelHeader(BaseModel):
    """The JSON header of a model file (checkpoint.py); `config` is checked by the model class."""
    model_config = OPEN
    kind: str
    format_version: NonNegInt
    config: dict
    config_version: PosInt = 1
    latentmix_version: str = "0"
    provenance: dict = {}


MAX_CODES = 2**34          # 16 G codes: far beyond any song; a larger shape is a corrupt or hostile header


class CodeHeader(BaseModel):
    """The JSON header of a .lmxc code file (codec/codefile.py); codec-specific keys are kept."""
    model_config = OPEN
    shape: Annotated[list[PosInt], Field(min_length=3, max_length=3)]
    dtype: str
    codebook_size: Annotated[int, Field(ge=1, le=2**32)] = 65536
    sample_rate: SampleRate | None = None
    hop_length: PosInt | None = None
    original_length: NonNegInt | None = None
    channels: PosInt | None = None
    num_codebooks: PosInt | None = None
    frames: PosInt | None = None

    def count(self) -> int:
        return math.prod(self.shape)


class CheckpointMeta(BaseModel):
    """The `meta` of a training checkpoint (train/state.py)."""
    model_config = OPEN
    step: NonNegInt
    seed: Seed
    config: dict
    elapsed: NonNegFloat = 0.0
    best_score: Finite | None = None


class CheckpointHeader(BaseModel):
    model_config = OPEN
    kind: Literal["training_checkpoint"]
    format_version: NonNegInt
    meta: CheckpointMeta
    structure: dict


# ------------------------------------------------------------------------------------------------ CLI arguments

ARG_KINDS = {"count": PosInt, "seed": Seed, "seconds": PosFloat, "fraction": Fraction, "steps": PosInt,
             "non_negative": NonNegFloat, "probability": Probability}


def arg(kind: str):
    """An argparse `type=` that parses a number and checks it against ARG_KINDS[kind]; the parser reports a
    failure as one line naming the option."""
    schema = ARG_KINDS[kind]
    base = int if kind in ("count", "seed", "steps") else float

    def parse(text: str):
        try:
            value = base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if base is int else 'a number'}, "
                                             f"got '{text}'") from None
        try:
            return _adapter(schema).validate_python(value)
        except ValidationError as e:
            raise argparse.ArgumentTypeError(f"{describe(e).split(': ', 1)[1]}") from None

    parse.__name__ = kind          # argparse names the type in its messages
    return parse
