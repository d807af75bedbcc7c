"""The codec's training task for the one training loop (train/loop.py): model, data, losses, validation.

Batches are (B, 1, T) mono windows: the mixture of the four stems, or sometimes a random subset of them.
"""
from __future__ import annotations

import random

import torch
from torch.utils.data import ConcatDataset, Dataset

from ...codec.discriminators import (CodecDiscriminator, discriminator_loss, feature_matching_loss,
                                     generator_adv_loss, schedule_part)
from ...codec.linearity import code_sum_agreement, linearity_loss
from ...codec.losses import reconstruction_losses
from ...metrics.codec import mel_distance
from ...metrics.sisdr import si_sdr
from ...codec.model import Codec
from ...errors import ConfigError
from .base import Task

_QUANT = {"commitment": "/commitment", "codebook": "/codebook", "kl": "vae/kl"}


class MixtureWindows(Dataset):
    """Wraps StemWindows items (4, T) into (1, T) mixtures; with prob p a random non-empty stem subset."""

    def __init__(self, stems, isolated_prob: float = 0.0, seed: int = 0):
        self.stems, self.p, self.seed = stems, isolated_prob, seed

    def __len__(self):
        return len(self.stems)

    def __getitem__(self, i):
        x = self.stems[i]
        x = torch.as_tensor(x, dtype=torch.float32)
        rng = random.Random(self.seed * 1_000_003 + i)
        if self.p > 0 and rng.random() < self.p:
            keep = [k for k in range(x.shape[0]) if rng.random() < 0.5] or [rng.randrange(x.shape[0])]
            x = x[keep]
        return x.sum(0, keepdim=True)


class CodecTask(Task):
    """config: {model: Codec kwargs, train: {...}} (configs/codec/*.yaml).

    train.extra_data: more data roots (MSDM layout) whose train splits join --data's (validation stays on
    --data); train.adversarial_start: the step from which the adversary trains and its losses count;
    train.disc_schedule: all (every discriminator every step) or alternate (MS-STFT on even steps, MPD on odd
    ones: seed 002's one discriminator per step); train.down_factors: the factors of the rec/down term (on when
    train.weights.down is non-zero). Every key: docs/codec_config.md.
    """

    kind = "codec"

    def __init__(self, config: dict, data_root: str, seed: int = 0):
        self.config, self.data_root, self.seed = config, data_root, seed
        self.tc = config.get("train", {})
        self.weights = dict(self.tc.get("weights", {}))
        # the linearity loss runs the bare Codec a second time: not inside a DDP wrapper's one forward
        self.ddp_wrap_safe = not (self.tc.get("linearity", False) and self.weights.get("linearity", 0.0))
        self.disc_schedule = str(self.tc.get("disc_schedule", "all"))
        if self.disc_schedule not in ("all", "alternate"):
            raise ConfigError(f"train.disc_schedule: '{self.disc_schedule}' is not all or alternate")
        self.down_factors = tuple(self.tc.get("down_factors") or (2, 4))
        if not all(isinstance(f, int) and not isinstance(f, bool) and f >= 2 for f in self.down_factors):
            raise ConfigError(f"train.down_factors: expected integers >= 2, got {self.down_factors}")

    def build_model(self) -> Codec:
        return Codec.from_config(self.config["model"])

    def build_discriminator(self):
        return CodecDiscriminator() if self.tc.get("adversarial", False) else None

    def _windows(self, split: str, seconds: float, seed: int, root=None, **kw):
        from ...data.datasets import StemWindows  # lazy: the data package is heavier than the codec
        return StemWindows(root or self.data_root, split, seconds, seed=seed, **kw)

    def train_dataset(self) -> Dataset:
        seconds, p = float(self.tc.get("segment_seconds", 1.0)), float(self.tc.get("isolated_stem_prob", 0.3))
        roots = [self.data_root] + [str(r) for r in (self.tc.get("extra_data") or [])]
        from ...data.fresh import check_extra_roots
        check_extra_roots(roots[1:])
        parts = []
        for k, root in enumerate(roots):
            parts.append(MixtureWindows(self._windows("train", seconds, self.seed + 7919 * k, root=root),
                                        p, self.seed + k))
        return parts[0] if len(parts) == 1 else ConcatDataset(parts)

    def training_step(self, model: Codec, batch: torch.Tensor, step: int, disc=None) -> dict:
        """batch (B, 1, T) -> {'loss': weighted sum, 'rec/...', 'vq/...', 'adv/...', 'lin/loss', stats,
        'out': the reconstruction (B, 1, T) for discriminator_step}."""
        w = self.weights
        core = getattr(model, "module", model)  # the Codec inside a DistributedDataParallel wrapper
        out = model(batch)
        parts = reconstruction_losses(out["audio"], batch, w, core.sample_rate, self.down_factors)
        total = sum(float(w.get(k.split("/")[1], 1.0)) * v for k, v in parts.items())
        for k, v in out["losses"].items():
            name = next((n for n, suffix in _QUANT.items() if k.endswith(suffix)), None)
            total = total + float(w.get(name, 1.0)) * v
            parts[k] = v
        if self.tc.get("linearity", False) and w.get("linearity", 0.0):
            lin = linearity_loss(core, batch, random_alpha=self.tc.get("linearity_random_alpha", False))
            parts.update(lin)
            total = total + float(w["linearity"]) * lin["lin/loss"] \
                + float(w.get("commitment", 1.0)) * lin["lin/commitment"]
        if disc is not None and step < int(self.tc.get("adversarial_start", 0) or 0):
            disc = None
        if disc is not None:
            for p in disc.parameters():
                p.requires_grad_(False)
            part = schedule_part(self.disc_schedule, step)
            fake, real = disc(out["audio"], part), disc(batch, part)
            for p in disc.parameters():
                p.requires_grad_(True)
            parts["adv/gen"] = generator_adv_loss(fake)
            parts["adv/feature"] = feature_matching_loss(real, fake)
            total = total + float(w.get("adversarial", 1.0)) * parts["adv/gen"] \
                + float(w.get("feature", 2.0)) * parts["adv/feature"]
        result = {"loss": total, **parts, "out": out["audio"]}
        result.update({k: v.detach() for k, v in out["stats"].items()})
        return result

    def discriminator_step(self, disc, model_out, batch: torch.Tensor, step: int = 0) -> dict | None:
        """One D loss on real `batch` vs the generator output (detached: D never steps the generator);
        None before train.adversarial_start."""
        if step < int(self.tc.get("adversarial_start", 0) or 0):
            return None
        fake = (model_out["audio"] if isinstance(model_out, dict) else model_out).detach()
        part = schedule_part(self.disc_schedule, step)
        loss = discriminator_loss(disc(batch, part), disc(fake, part))
        return {"loss": loss, "adv/disc": loss.detach()}

    @torch.no_grad()
    def validate(self, model: Codec, max_items: int = 16) -> dict:
        """SI-SDR (dB), mel distance, per-level code usage on validation mixtures at full bitrate, and
        'score' = -mel distance (higher is better; picks best.safetensors)."""
        model = getattr(model, "module", model)
        was = model.training
        model.eval()
        ds = MixtureWindows(self._windows("validation", float(self.tc.get("val_seconds", 4.0)), 0, shift=False,
                                          gain_db=(0.0, 0.0)), 0.0, 0)
        sdr, mel, used, n = 0.0, 0.0, None, 0
        for i in range(min(max_items, len(ds))):
            x = ds[i][None]
            if model.is_continuous:
                y = model.decode_latents(model.encode_latents(x))[..., :x.shape[-1]]
            else:
                codes = model.encode(x)
                y = model.decode(codes)[..., :x.shape[-1]]
                hits = torch.zeros(codes.shape[1], model.codebook_size).scatter_(1, codes[0], 1.0)
                used = hits if used is None else torch.maximum(used, hits)
            sdr += float(si_sdr(y, x).mean())
            mel += float(mel_distance(y, x, sr=model.sample_rate))
            n += 1
        if n and not model.is_continuous:
            res_pairs = self._code_sum(model, max_items)
        model.train(was)
        if n == 0:
            return {}
        res = {"val/si_sdr": sdr / n, "val/mel_distance": mel / n, "score": -mel / n}
        if used is not None:
            res.update({f"val/usage_l{k}": float(u) for k, u in enumerate(used.mean(1))})
            res["val/code_sum_l0"] = res_pairs
        return res

    def _code_sum(self, model: Codec, max_items: int) -> float:
        """Level-0 code-sum agreement on validation (bass, drums) pairs (codec/linearity.py)."""
        from ... import STEMS
        stems = self._windows("validation", float(self.tc.get("val_seconds", 4.0)), 1, shift=False,
                              gain_db=(0.0, 0.0))
        items = torch.stack([torch.as_tensor(stems[i]) for i in range(min(max_items, len(stems)))])
        a, b = items[:, STEMS.index("bass")][:, None], items[:, STEMS.index("drums")][:, None]
        return code_sum_agreement(model, a, b)

    def export(self, model: Codec, path, provenance: dict | None = None) -> None:
        model.save(path, provenance or {})
