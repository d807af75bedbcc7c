"""The `train:` section of a training config: its defaults and its schema (validation.py's types), checked once
when a run starts, with errors naming the config file and the key.

Unknown keys are kept for the task; the tasks' own keys (segment lengths, probabilities, loss weights) are typed
here too, so that `segment_seconds: 0` or `weights: {mel: -1}` is refused instead of training on nothing.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from ..errors import ConfigError
from ..validation import OPEN, NonNegFloat, NonNegInt, PosFloat, PosInt, Probability, Seed, validate

DEFAULTS = dict(steps=1000, batch_size=8, lr=3e-4, betas=[0.9, 0.99], weight_decay=0.0, grad_clip=1.0,
                lr_schedule="constant", warmup_steps=0, lr_decay=0.9999, lr_min_ratio=0.0, num_workers=0,
                log_every=50, val_every=0, val_items=8, ckpt_every=500, adversarial=False, disc_lr=None,
                seed=None, ddp_wrap=True, find_unused_parameters=False, broadcast_buffers=True, tensorboard=True,
                init=None, max_seconds=None, adversarial_start=0)   # init: a model file to fine-tune from

Beta = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]


class TrainSettings(BaseModel):
    """config['train'] after DEFAULTS: the loop's keys and the tasks' common ones; others are kept untyped."""
    model_config = OPEN
    steps: PosInt
    batch_size: PosInt
    lr: NonNegFloat                        # 0: a frozen fine-tune
    betas: Annotated[list[Beta], Field(min_length=2, max_length=2)]
    weight_decay: NonNegFloat
    grad_clip: NonNegFloat
    lr_schedule: Literal["constant", "cosine", "exponential"]
    warmup_steps: NonNegInt
    lr_decay: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
    lr_min_ratio: Probability
    num_workers: NonNegInt
    log_every: NonNegInt
    val_every: NonNegInt
    val_items: NonNegInt
    ckpt_every: NonNegInt
    adversarial: bool
    disc_lr: NonNegFloat | None
    seed: Seed | None
    ddp_wrap: bool
    find_unused_parameters: bool
    broadcast_buffers: bool
    tensorboard: bool
    init: str | None
    max_seconds: PosFloat | None
    adversarial_start: NonNegInt
    # the tasks' keys (absent: the task's default)
    segment_seconds: PosFloat | None = None
    val_seconds: PosFloat | None = None
    val_segment_seconds: PosFloat | None = None
    window_seconds: PosFloat | None = None
    isolated_stem_prob: Probability | None = None
    remix_p: Probability | None = None
    effects_p: Probability = 0.0
    drive_p: Probability = 0.0
    zone_shift: Annotated[int, Field(ge=0, le=12)] = 0
    weights: dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = None
    linearity: bool | None = None
    linearity_random_alpha: bool | None = None
    extra_data: list[str] | None = None
    stem: str | None = None


def train_settings(config: dict, source: str = "config") -> dict:
    """config['train'] merged over DEFAULTS and checked (ConfigError naming `source` and the key); unknown keys
    are kept for the task."""
    section = (config or {}).get("train") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: train: must be a mapping, got {type(section).__name__}")
    s = {**DEFAULTS, **section}
    validate(TrainSettings, s, source, prefix="train")
    if s.get("zone_shift") and not any(str(r).startswith("synth:soundfont=") for r in s.get("extra_data") or []):
        raise ConfigError(f"{source}: train.zone_shift {s['zone_shift']} shifts the notes of synth:soundfont=PATH "
                          f"songs, and train.extra_data names none (add one, or leave zone_shift at 0)")
    return s


def check_config(config, source: str) -> None:
    """The top level of a training config: a mapping with a `model:` mapping and a valid `train:` section."""
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise ConfigError(f"{source}: not a training config (it needs a 'model:' mapping)")
    train_settings(config, source)
