"""Shared pieces of the supervised separators: the model-file kind and its config migration, the forward
convention and the named waveform loss terms (their STFT is latentmix.audio's, their multi-resolution STFT loss
latentmix.metrics.spectral's).

Forward convention (every separator, whatever its arch or flags): forward(mix (B, 1, T), targets (B, S, T) | None
= None, terms = None) -> SeparatorOutput(stems (B, S, T), losses, stats). With targets, `losses` holds the loss
terms named in `terms` (None: every term in the model's TERMS) that the model has, each NAMED "sep/<term>" and
UNWEIGHTED; the training config weights them (train.weights, applied by train/tasks/separator.py). Model configs
hold architecture only.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from ... import SAMPLE_RATE, STEMS
from ...checkpoint import ModelIO
from ...metrics.sisdr import si_sdr
from ...metrics.spectral import fits, multi_resolution_stft_distance
from ..apply import segment_length

SILENT_POWER = 1e-8     # mean-square below which a reference stem counts as silent (about -80 dBFS)

WAVE_TERMS = ("l1", "mrstft", "sisdr")
# every term a separator can return, by its weight name (train.weights key): "sep/<name>"
TERMS = WAVE_TERMS + ("latent", "commitment", "codebook", "kl")


class SeparatorOutput(NamedTuple):
    """What every separator's forward returns. stems: (B, S, T) estimates; None only when the caller asked for
    loss terms alone and none of them needs the waveform (the latent separator then skips its codec decoder).
    losses: {"sep/<term>": unweighted scalar tensor}, empty without targets. stats: {name: float or 0-dim}."""
    stems: torch.Tensor | None
    losses: dict
    stats: dict


def legacy_weights(config: dict) -> tuple[dict, dict]:
    """Split a config-version-1 model config into (architecture-only config, {term: weight}).

    Version 1 kept loss weights in the model config: loss {wave_l1, mrstft, sisdr}, latent_weight (latent arch),
    bottleneck_weight {commitment, codebook, kl} (codec arch); version 2 keeps them in train.weights only.
    """
    config = dict(config)
    weights = {}
    loss = config.pop("loss", None) or {}
    for old, new in (("wave_l1", "l1"), ("mrstft", "mrstft"), ("sisdr", "sisdr")):
        if old in loss:
            weights[new] = float(loss[old])
    if "latent_weight" in config:
        weights["latent"] = float(config.pop("latent_weight"))
    for k, v in (config.pop("bottleneck_weight", None) or {}).items():
        weights[k] = float(v)
    return config, weights


class SeparatorBase(ModelIO):
    """Mixin for every separator: KIND 'separator', the stem names, the inference segment, the config migration
    and the waveform loss terms. Subclasses list the terms their forward can return in TERMS."""

    KIND = "separator"
    CONFIG_VERSION = 2          # 2: loss weights left the model config (now train.weights)
    TERMS = WAVE_TERMS
    hop_multiple = 1            # inference segments start and end on multiples of this many samples

    @classmethod
    def migrate_config(cls, config: dict, version: int) -> dict:
        if version < 2:
            config = legacy_weights(config)[0]
        return config

    @property
    def stems(self) -> tuple[str, ...]:
        return tuple(self.config.get("stems", STEMS))

    @property
    def sample_rate(self) -> int:
        return int(self.config.get("sample_rate", SAMPLE_RATE))

    @property
    def segment_samples(self) -> int:
        """Samples per inference segment: config `segment_seconds` aligned to `hop_multiple` (separation.apply)."""
        return segment_length(float(self.config.get("segment_seconds", 6.0)), self.sample_rate, self.hop_multiple)

    def wanted_terms(self, terms) -> set[str]:
        """The loss terms to compute: those of `terms` (None: all) that this model has."""
        return set(self.TERMS) if terms is None else set(terms) & set(self.TERMS)

    def output(self, stems, targets, terms, losses: dict | None = None, stats: dict | None = None):
        """SeparatorOutput with the waveform terms of `terms` added to the model's own `losses` (given targets)."""
        losses = dict(losses or {})
        if targets is not None and stems is not None:
            losses.update(separation_losses(stems, targets, self.wanted_terms(terms) & set(WAVE_TERMS)))
        return SeparatorOutput(stems, losses, dict(stats or {}))


MRSTFT_FFTS = (256, 512, 1024, 2048)


def mrstft_l1(est: torch.Tensor, ref: torch.Tensor, ffts=MRSTFT_FFTS) -> torch.Tensor:
    """Multi-resolution STFT loss on (batch, ..., time): the mean over resolutions of L1 on the magnitude plus
    0.1 x L1 on the log magnitude (log(|X| + 1e-5)), i.e. metrics.spectral.multi_resolution_stft_distance with
    weights SC 0, log 0.1, linear 1. Resolutions too long for the clip are left out; a clip too short for all of
    them uses the longest power of two that fits."""
    ffts = [n for n in ffts if fits(n, est.shape[-1])] or [2 ** max(1, (est.shape[-1] - 1).bit_length() - 1)]
    return multi_resolution_stft_distance(est, ref, ffts, sc_weight=0.0, log_weight=0.1, lin_weight=1.0)


def separation_losses(est: torch.Tensor, ref: torch.Tensor, terms=WAVE_TERMS) -> dict:
    """Named, unweighted waveform loss terms between estimated and true stems (batch, stems, time).

    terms: any of "l1" (L1 on the waveforms), "mrstft" (`mrstft_l1`) and "sisdr" (the negative zero-mean SI-SDR,
    capped at 60 dB, averaged over the non-silent stems, in dB / 10 so that its scale matches the L1 terms: a
    loss, lower is better) -> {"sep/l1", "sep/mrstft", "sep/sisdr"} for those asked for.
    """
    out = {}
    if "l1" in terms:
        out["sep/l1"] = F.l1_loss(est, ref)
    if "mrstft" in terms:
        out["sep/mrstft"] = mrstft_l1(est, ref)
    if "sisdr" in terms:
        live = (ref.pow(2).mean(-1) > SILENT_POWER).float()      # a silent reference has no SI-SDR
        sdr = si_sdr(est, ref).clamp(max=60.0)
        out["sep/sisdr"] = -(sdr * live).sum() / live.sum().clamp_min(1) / 10
    return out
