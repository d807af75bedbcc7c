"""The prior's training task for the one loop: a code prior (CodeTransformer or RQTransformer) over a frozen
codec's codes, read from code shards that are encoded once per codec (priors/shards.py).

config: {model: prior kwargs (+ architecture: pattern | rq; text: true conditions on captions), train: {codec:
model file or "default", stem, shards, extra_data, window_seconds, cond_dropout, ...}}. Validation reports the
NLL per level in bits per token (and, for a text prior, the NLL without its caption).
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from ...errors import InputError
from .base import Task


def _codec(path):
    from ...codec.model import Codec
    from ...pretrained.registry import resolve_model
    return Codec.load(resolve_model(path, "codec")).eval()


class PriorTask(Task):
    """Trains `latentmix.priors` models on (B, K, frames) code windows of one stem or of the mixture."""

    def __init__(self, config: dict, data_root: str, seed: int):
        super().__init__(config, data_root, seed)
        self.tc = config.get("train", {})
        self.codec = _codec(self.tc.get("codec"))
        self.stem = self.tc.get("stem")
        self.shards = Path(self.tc.get("shards") or Path.home() / ".cache" / "latentmix" / "codes")
        self.frames = max(1, int(round(float(self.tc.get("window_seconds", 6.0)) * self.codec.frame_rate)))

    def build_model(self):
        from ...priors import CodeTransformer, RQTransformer
        from ...priors.shards import codec_hash
        from ...priors.text import TextEncoder
        cfg = dict(self.config["model"])
        arch = cfg.pop("architecture", "pattern")
        if cfg.pop("text", False):
            cfg["cond_dim"], cfg["cond_tokens"] = TextEncoder.dim, 1
            cfg["text_encoder"] = TextEncoder.name
        cfg.setdefault("num_codebooks", self.codec.num_codebooks)
        cfg["codebook_size"] = self.codec.codebook_size
        cfg["codec"] = {"hash": codec_hash(self.codec), "frame_rate": self.codec.frame_rate,
                        "sample_rate": self.codec.sample_rate, "stem": self.stem}
        return RQTransformer.from_config(cfg) if arch == "rq" else CodeTransformer.from_config(cfg)

    @property
    def text(self) -> bool:
        return bool(self.config["model"].get("text", False))

    def _windows(self, split: str, seed: int, length=None, extra: bool = False):
        """Code windows of `split` over --data (and train.extra_data's roots when `extra`); for a text prior,
        the captions' embeddings (N, 1, 384) are computed once here."""
        from ...priors.shards import CodeWindows, encode_dataset
        roots = [self.data_root] + ([str(r) for r in (self.tc.get("extra_data") or [])] if extra else [])
        from ...data.fresh import check_extra_roots
        check_extra_roots(roots[1:])
        folders = [encode_dataset(self.codec, r, split, self.shards, self.stem) for r in roots]
        ds = CodeWindows(folders, self.frames, seed=seed, length=length)
        if self.text:
            from ...priors.text import TextEncoder
            if not all(c.strip() for c in ds.captions):
                raise InputError(f"{self.data_root}: a text prior needs a caption (metadata.json) for every track")
            ds.embeddings = TextEncoder().encode(ds.captions)
        return ds

    def train_dataset(self):
        self.train_set = self._windows("train", self.seed, extra=True)
        return self.train_set

    def _cond(self, ds, tracks: torch.Tensor, step: int, p: float):
        """(condition (B, 1, 384), dropped (B,) bool with probability p, seeded by the step) or (None, None)."""
        if not self.text:
            return None, None
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        drop = torch.rand(len(tracks), generator=g) < p
        return ds.embeddings[tracks.cpu()], drop

    def training_step(self, model, batch, step: int, disc=None) -> dict:
        codes, tracks = batch
        core = getattr(model, "module", model)
        cond, drop = self._cond(self.train_set, tracks, step, float(self.tc.get("cond_dropout", 0.3)))
        if cond is not None:
            cond, drop = cond.to(codes.device), drop.to(codes.device)
        out = core.loss(codes[:, :core.config["num_codebooks"]], cond, drop)
        return {"loss": out["prior/nll"], **{k: v.detach() for k, v in out.items()}}

    @torch.no_grad()
    def validate(self, model, max_items: int) -> dict:
        """NLL in bits per token (overall and per level) on validation windows; score = -NLL."""
        core = getattr(model, "module", model)
        ds = self._windows("validation", 0, length=max(1, max_items))
        sums: dict[str, float] = {}
        for i in range(len(ds)):
            codes, t = ds[i]
            codes = codes[None, :core.config["num_codebooks"]]
            cond = ds.embeddings[t:t + 1] if self.text else None
            for k, v in core.loss(codes, cond).items():
                sums[k] = sums.get(k, 0.0) + float(v) / math.log(2)
            if self.text:
                sums["prior/nll_uncond"] = sums.get("prior/nll_uncond", 0.0) \
                    + float(core.loss(codes)["prior/nll"]) / math.log(2)
        res = {f"val/{k.split('/')[1]}_bits": v / len(ds) for k, v in sums.items()}
        res["score"] = -res["val/nll_bits"]
        return res
