"""The separator's training task for the one loop: data (stem windows, mixture = their sum), the weighted loss,
validation (per-stem zero-mean SI-SDRi on fixed validation windows) and export. Used by `latentmix train separator`.

Loss: the model returns named, unweighted terms ("sep/l1", "sep/mrstft", "sep/sisdr", "sep/latent",
"sep/commitment", "sep/codebook", "sep/kl": separation/models/base.py); train.weights {term: weight} weights them
here and nowhere else (as train/tasks/codec.py weights the codec's), a term missing from it taking DEFAULT_WEIGHTS.
Terms of weight 0 are not computed (a latent separator without waveform terms then skips its decoder).
"""
from __future__ import annotations


import torch

from ... import STEMS
from ...errors import ConfigError
from ...metrics.sisdr import si_sdr
from ...separation.models import TERMS, build_separator, legacy_weights
from .base import Task

SILENCE = 1.5e-5     # msdm protocol: a stem is silent in a window if ||s||_2 / length < 1.5e-5
# the weight of a term that train.weights does not list
DEFAULT_WEIGHTS = {"l1": 1.0, "mrstft": 1.0, "sisdr": 1.0, "latent": 1.0, "commitment": 0.25, "codebook": 1.0,
                   "kl": 1e-3}


def loss_weights(config: dict) -> tuple[dict, dict]:
    """(architecture-only model config, {term: weight}) of a training config.

    Weights: DEFAULT_WEIGHTS, then any a config-version-1 model section still holds (loss, latent_weight,
    bottleneck_weight: old configs and the runs made with them), then train.weights. ConfigError for a name that
    is not a separator loss term.
    """
    model, legacy = legacy_weights(config.get("model") or {})
    given = dict((config.get("train") or {}).get("weights") or {})
    unknown = sorted(set(given) - set(TERMS))
    if unknown:
        raise ConfigError(f"train.weights: unknown separator loss term(s) {', '.join(unknown)} "
                          f"(known: {', '.join(TERMS)})")
    return model, {**DEFAULT_WEIGHTS, **legacy, **{k: float(v) for k, v in given.items()}}


def _windows(root, split, seconds, seed, augment, length=None, remix_p=0.0, stems=STEMS, effects_p=0.0,
             drive_p=0.0):
    """StemWindows items (S, window) of `stems` (a track lacking one gives silence there); augment: per-stem
    gains, shifts, cross-song remixes and random effects (train only)."""
    from ...data.datasets import StemWindows
    if augment:
        return StemWindows(root, split, seconds, seed=seed, length=length, remix_p=remix_p, stems=stems,
                           effects_p=effects_p, drive_p=drive_p)
    return StemWindows(root, split, seconds, seed=seed, gain_db=(0.0, 0.0), shift=False, remix_p=0.0,
                       length=length, stems=stems)


class SeparatorTask(Task):
    """config = {'model': {arch, stems, ...}, 'train': {segment_seconds, weights, ...}}; batches are stems (B, S, T)
    in the order of model.stems (default bass, drums, guitar, piano).

    The mixture is the plain sum of the stems (MSDM convention): no peak normalisation, no DC manipulation.
    """

    def __init__(self, config: dict, data_root: str, seed: int):
        super().__init__(config, data_root, seed)
        # softmax masks and their gradients underflow into denormals on quiet passages, which makes CPU
        # kernels (GRU, FFT, abs) 3-10x slower; flushing them to zero changes no result that matters.
        torch.set_flush_denormal(True)
        self.model_config, self.weights = loss_weights(config)
        self.stems = tuple(self.model_config.get("stems") or STEMS)
        self.terms = tuple(k for k in TERMS if self.weights[k] != 0)     # the terms to compute
        t = config.get("train") or {}
        self.segment_seconds = float(t.get("segment_seconds", 3.0))
        self.val_seconds = float(t.get("val_segment_seconds", 4.0))
        self._val = None

    def build_model(self):
        return self.checked(build_separator(self.model_config))

    def checked(self, model):
        """`model`, or ConfigError when no term it returns has a nonzero weight (nothing to train on)."""
        if not set(self.terms) & set(model.TERMS):
            raise ConfigError(f"train.weights: every loss term of this separator ({', '.join(model.TERMS)}) "
                              f"has weight 0")
        return model

    def build_discriminator(self):
        return None

    def train_dataset(self):
        """Random windows, one distinct window per sample the run draws (steps x batch), so that a short
        dataset still gives fresh excerpts, gains, cross-song remixes (train.remix_p) and, with train.effects_p,
        per-stem random EQ / reverb / compression every step (train.drive_p: an amp drive on the guitar stem).
        train.extra_data: more MSDM-layout roots whose train splits join --data's, each an equal share of the
        windows (remixes stay within a root), or `synth:procedural` / `synth:soundfont=PATH`: songs composed and
        rendered for each window (data/fresh.py; train.zone_shift N plays their SoundFont notes from sample zones
        up to N keys away, bent back to pitch); validation stays on --data."""
        t = self.config.get("train") or {}
        from ...data.fresh import FreshSongs, check_extra_roots, is_fresh
        from ..ddp import world_size
        n = max(1000, int(t.get("steps", 1000)) * int(t.get("batch_size", 8)) * world_size())   # every rank's draws
        roots = [self.data_root] + [str(r) for r in (t.get("extra_data") or [])]
        check_extra_roots(roots[1:], fresh_ok=True)
        share, fx, dp = -(-n // len(roots)), float(t.get("effects_p", 0.0)), float(t.get("drive_p", 0.0))
        parts = [FreshSongs(root, self.segment_seconds, self.seed + 7919 * k, share, self.stems, effects_p=fx,
                            other_prob=0.5 if "other" in self.stems else 0.0, drive_p=dp,
                            zone_shift=int(t.get("zone_shift", 0))) if is_fresh(root) else
                 _windows(root, "train", self.segment_seconds, self.seed + 7919 * k, True, length=share,
                          remix_p=float(t.get("remix_p", 0.3)), stems=self.stems, effects_p=fx, drive_p=dp)
                 for k, root in enumerate(roots)]                 # each root an equal share of the draws
        if len(parts) == 1:
            return parts[0]
        from torch.utils.data import ConcatDataset
        return ConcatDataset(parts)

    def training_step(self, model, batch, step: int, disc=None) -> dict:
        """batch: stems (B, S, T) -> {'loss': the weighted sum, each unweighted term, model stats}."""
        stems = batch[0] if isinstance(batch, (list, tuple)) else batch
        mix = stems.sum(1, keepdim=True)
        out = model(mix, stems, terms=self.terms)
        loss = sum(self.weights[k.split("/", 1)[1]] * v for k, v in out.losses.items())
        res = {"loss": loss}
        res.update({k: v.detach() for k, v in out.losses.items()})
        res.update(out.stats)
        return res

    def _val_items(self, max_items: int) -> torch.Tensor:
        """Up to max_items fixed validation windows (n, S, T), evenly spread over the split; cached."""
        if self._val is None or self._val.shape[0] != max_items:
            ds = _windows(self.data_root, "validation", self.val_seconds, 0, False, length=max_items,
                          stems=self.stems)
            n = len(ds)
            idx = sorted({int(i * n / max_items) for i in range(min(max_items, n))})
            self._val = torch.stack([torch.as_tensor(ds[i]) for i in idx]) if idx else \
                torch.zeros(0, len(self.stems), 1)
        return self._val

    def validate(self, model, max_items: int) -> dict:
        """Per-stem SI-SDRi (zero-mean SI-SDR, eps 1e-8) over validation windows, silent stems skipped;
        'score' = mean over stems of the per-stem means."""
        stems = self._val_items(max_items)
        if stems.shape[0] == 0:
            return {}
        dev = next(model.parameters()).device
        sums = torch.zeros(stems.shape[1])
        counts = torch.zeros(stems.shape[1])
        for i in range(0, stems.shape[0], 4):
            ref = stems[i:i + 4].to(dev)
            mix = ref.sum(1, keepdim=True)
            est = model(mix).stems
            imp = (si_sdr(est, ref) - si_sdr(mix.expand_as(ref), ref)).cpu()
            live = (ref.norm(dim=-1) / ref.shape[-1] >= SILENCE).cpu()
            sums += (imp * live).sum(0)
            counts += live.sum(0)
        names = getattr(model, "stems", STEMS)
        per = {f"sisdri_{n}": float(sums[k] / counts[k]) for k, n in enumerate(names) if counts[k] > 0}
        out = dict(per)
        out["score"] = float(sum(per.values()) / max(len(per), 1))
        return out

    def export(self, model, path, provenance: dict) -> None:
        model.save(path, provenance)
