"""The prior's training task for the one loop: a code prior (CodeTransformer or RQTransformer) over a frozen
codec's codes, read from code shards that are encoded once per codec (priors/shards.py).

config: {model: prior kwargs (+ architecture: pattern | rq), train: {codec: model file or "default", stem,
shards, window_seconds, num_codebooks, ...}}. Validation reports the NLL per level in bits per token.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

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
        cfg = dict(self.config["model"])
        arch = cfg.pop("architecture", "pattern")
        cfg.setdefault("num_codebooks", self.codec.num_codebooks)
        cfg["codebook_size"] = self.codec.codebook_size
        cfg["codec"] = {"hash": codec_hash(self.codec), "frame_rate": self.codec.frame_rate,
                        "sample_rate": self.codec.sample_rate, "stem": self.stem}
        return RQTransformer.from_config(cfg) if arch == "rq" else CodeTransformer.from_config(cfg)

    def _windows(self, split: str, seed: int, length=None):
        from ...priors.shards import CodeWindows, encode_dataset
        folder = encode_dataset(self.codec, self.data_root, split, self.shards, self.stem)
        return CodeWindows(folder, self.frames, seed=seed, length=length)

    def train_dataset(self):
        return self._windows("train", self.seed)

    def training_step(self, model, batch, step: int, disc=None) -> dict:
        codes, _ = batch
        core = getattr(model, "module", model)
        out = core.loss(codes[:, :core.config["num_codebooks"]])
        return {"loss": out["prior/nll"], **{k: v.detach() for k, v in out.items()}}

    @torch.no_grad()
    def validate(self, model, max_items: int) -> dict:
        """NLL in bits per token (overall and per level) on validation windows; score = -NLL."""
        core = getattr(model, "module", model)
        ds = self._windows("validation", 0, length=max(1, max_items))
        sums: dict[str, float] = {}
        for i in range(len(ds)):
            codes, _ = ds[i]
            for k, v in core.loss(codes[None, :core.config["num_codebooks"]]).items():
                sums[k] = sums.get(k, 0.0) + float(v) / math.log(2)
        res = {f"val/{k.split('/')[1]}_bits": v / len(ds) for k, v in sums.items()}
        res["score"] = -res["val/nll_bits"]
        return res
