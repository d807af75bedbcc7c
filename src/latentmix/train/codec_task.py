"""The codec's training task for the one training loop (train/loop.py): model, data, losses, validation.

Batches are (B, 1, T) mono windows: the mixture of the four stems, or sometimes a random subset of them.
"""
from __future__ import annotations

import random

import torch
from torch.utils.data import Dataset

from ..codec.discriminators import (CodecDiscriminator, discriminator_loss, feature_matching_loss,
                                    generator_adv_loss)
from ..codec.linearity import linearity_loss
from ..codec.losses import reconstruction_losses
from ..metrics.codec import mel_distance
from ..metrics.sisdr import si_sdr
from ..codec.model import Codec

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


class CodecTask:
    """config: {model: Codec kwargs, train: {...}} (configs/codec/*.yaml)."""

    kind = "codec"

    def __init__(self, config: dict, data_root: str, seed: int = 0):
        self.config, self.data_root, self.seed = config, data_root, seed
        self.tc = config.get("train", {})
        self.weights = dict(self.tc.get("weights", {}))

    def build_model(self) -> Codec:
        return Codec.from_config(self.config["model"])

    def build_discriminator(self):
        return CodecDiscriminator() if self.tc.get("adversarial", False) else None

    def _windows(self, split: str, seconds: float, seed: int, **kw):
        from ..data.datasets import StemWindows  # lazy: the data package is heavier than the codec
        return StemWindows(self.data_root, split, seconds, seed=seed, **kw)

    def train_dataset(self) -> Dataset:
        stems = self._windows("train", float(self.tc.get("segment_seconds", 1.0)), self.seed)
        return MixtureWindows(stems, float(self.tc.get("isolated_stem_prob", 0.3)), self.seed)

    def training_step(self, model: Codec, batch: torch.Tensor, step: int, disc=None) -> dict:
        """batch (B, 1, T) -> {'loss': weighted sum, 'rec/...', 'vq/...', 'adv/...', 'lin/loss', stats,
        'out': the reconstruction (B, 1, T) for discriminator_step}."""
        w = self.weights
        core = getattr(model, "module", model)  # the Codec inside a DistributedDataParallel wrapper
        out = model(batch)
        parts = reconstruction_losses(out["audio"], batch, w, core.sample_rate)
        total = sum(float(w.get(k.split("/")[1], 1.0)) * v for k, v in parts.items())
        for k, v in out["losses"].items():
            name = next((n for n, suffix in _QUANT.items() if k.endswith(suffix)), None)
            total = total + float(w.get(name, 1.0)) * v
            parts[k] = v
        if self.tc.get("linearity", False) and w.get("linearity", 0.0):
            parts["lin/loss"] = linearity_loss(core, batch, random_alpha=self.tc.get("linearity_random_alpha", False))
            total = total + float(w["linearity"]) * parts["lin/loss"]
        if disc is not None:
            for p in disc.parameters():
                p.requires_grad_(False)
            fake, real = disc(out["audio"]), disc(batch)
            for p in disc.parameters():
                p.requires_grad_(True)
            parts["adv/gen"] = generator_adv_loss(fake)
            parts["adv/feature"] = feature_matching_loss(real, fake)
            total = total + float(w.get("adversarial", 1.0)) * parts["adv/gen"] \
                + float(w.get("feature", 2.0)) * parts["adv/feature"]
        result = {"loss": total, **parts, "out": out["audio"]}
        result.update({k: v.detach() for k, v in out["stats"].items()})
        return result

    def discriminator_step(self, disc, model_out, batch: torch.Tensor) -> dict:
        """One D loss on real `batch` vs the generator output (detached: D never steps the generator)."""
        fake = (model_out["audio"] if isinstance(model_out, dict) else model_out).detach()
        loss = discriminator_loss(disc(batch), disc(fake))
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
        model.train(was)
        if n == 0:
            return {}
        res = {"val/si_sdr": sdr / n, "val/mel_distance": mel / n, "score": -mel / n}
        if used is not None:
            res.update({f"val/usage_l{k}": float(u) for k, u in enumerate(used.mean(1))})
        return res

    def export(self, model: Codec, path, provenance: dict | None = None) -> None:
        model.save(path, provenance or {})
