"""LASS's count likelihood (seeds_spec §3b): sparse triplet counts (z_bass, z_drums, z_mix) per residual level.

A dense table is V^3 cells per level (1024^3), so counts are kept sparse: per level, sorted int64 keys
(i * V + j) * V + m with their counts, merged with torch.unique; lookups are one searchsorted over a batch of keys.
Both orders are counted ((i, j, m) and (j, i, m)), as LASS does. Counting is resumable: `seen` lists the pair ids
already counted, `update` skips them, and the file (safetensors + JSON header, no pickle) can be saved after
every batch.

Smoothing (LASS had none: an unseen triplet raised), for every (i, j, m) a finite log p(m | i, j):
  additive  (c(i,j,m) + alpha) / (c(i,j) + alpha V)
  backoff   (c(i,j,m) + alpha V q(m)) / (c(i,j) + alpha V), q(m) = (c(m) + 1) / (N + V) the level's mixture-code
            unigram: pairs never seen fall back on how common the mixture code is.
"""
from __future__ import annotations

import torch

from ...checkpoint import load_tensors, save_tensors
from ...errors import ConfigError, ModelFileError

KIND = "code-counts"
SMOOTHING = ("additive", "backoff")


class CodeCounts:
    """Sparse triplet counts over `levels` residual levels of a `codebook_size` codebook."""

    def __init__(self, codebook_size: int, levels: int, codec_hash: str = "", keys=None, counts=None,
                 seen=None):
        self.V, self.levels, self.codec_hash = int(codebook_size), int(levels), str(codec_hash)
        if self.V ** 3 >= 2 ** 62:
            raise ConfigError(f"codebook of {self.V} codes is too large for int64 triplet keys")
        self.keys = list(keys) if keys is not None else [torch.zeros(0, dtype=torch.long)] * self.levels
        self.counts = list(counts) if counts is not None else [torch.zeros(0, dtype=torch.long)] * self.levels
        self.seen: list[str] = list(seen or [])
        self._derived: dict = {}

    @property
    def pairs(self) -> int:
        return len(self.seen)

    # ------------------------------------------------------------------ counting
    def add(self, b: torch.Tensor, d: torch.Tensor, m: torch.Tensor) -> None:
        """Count one aligned triple of code tensors (K, F) (K >= levels), in both orders."""
        V = self.V
        for lv in range(self.levels):
            i, j, k = b[lv].long().reshape(-1), d[lv].long().reshape(-1), m[lv].long().reshape(-1)
            new = torch.cat([(i * V + j) * V + k, (j * V + i) * V + k])
            allk = torch.cat([self.keys[lv], new])
            allc = torch.cat([self.counts[lv], torch.ones_like(new)])
            uniq, inv = torch.unique(allk, sorted=True, return_inverse=True)
            self.keys[lv] = uniq
            self.counts[lv] = torch.zeros_like(uniq).index_add_(0, inv, allc)
        self._derived = {}

    def update(self, codec, pairs, save_to=None, progress=None, save_every: int = 10) -> int:
        """Count pairs not seen yet: `pairs` yields (pair id, bass (1, T), drums (1, T)) at the codec's rate; the
        mixture is 0.5 (bass + drums). With `save_to` the counts are saved every `save_every` pairs and at the end
        (resumable: an interrupted run loses at most that many pairs). Returns the number of pairs counted now."""
        done, n = set(self.seen), 0
        for pid, b, d in pairs:
            if pid in done:
                continue
            x = torch.stack([b, d, 0.5 * (b + d)])                                      # (3, 1, T)
            with torch.inference_mode():
                codes = codec.encode_chunked(x, self.levels)
            self.add(codes[0], codes[1], codes[2])
            self.seen.append(pid)
            done.add(pid)
            n += 1
            if save_to is not None and n % save_every == 0:
                self.save(save_to)
            if progress is not None:
                progress(1)
        if save_to is not None and n:
            self.save(save_to)
        return n

    # ------------------------------------------------------------------ lookups
    def _tables(self, lv: int):
        """(pair keys, pair counts, mixture unigram log-probabilities (V,)) of a level, derived once."""
        if lv not in self._derived:
            keys, cnt = self.keys[lv], self.counts[lv]
            pk, inv = torch.unique(keys // self.V, sorted=True, return_inverse=True)
            pc = torch.zeros_like(pk).index_add_(0, inv, cnt)
            uni = torch.zeros(self.V, dtype=torch.float64).index_add_(0, keys % self.V, cnt.double())
            logq = ((uni + 1) / (uni.sum() + self.V)).log().float()
            self._derived[lv] = (pk, pc, logq)
        return self._derived[lv]

    @staticmethod
    def _lookup(keys: torch.Tensor, counts: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Counts of query keys q (any shape) in sorted keys; 0 where absent."""
        if keys.numel() == 0:
            return torch.zeros_like(q)
        pos = torch.searchsorted(keys, q.reshape(-1)).clamp(max=keys.numel() - 1)
        hit = keys[pos] == q.reshape(-1)
        return torch.where(hit, counts[pos], torch.zeros_like(pos)).view(q.shape)

    def count(self, level: int, i: torch.Tensor, j: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """Raw counts c(i, j, m) (broadcast shapes)."""
        return self._lookup(self.keys[level], self.counts[level], (i * self.V + j) * self.V + m)

    def log_prob(self, level: int, cand_b: torch.Tensor, cand_d: torch.Tensor, m: torch.Tensor,
                 smoothing: str = "backoff", alpha: float = 1.0) -> torch.Tensor:
        """log p(m | i, j) for cand_b (R, kb), cand_d (R, kd), m (R,) -> (R, kb, kd), finite everywhere."""
        if smoothing not in SMOOTHING:
            raise ConfigError(f"unknown smoothing '{smoothing}' ({', '.join(SMOOTHING)})")
        if alpha <= 0:
            raise ConfigError(f"smoothing alpha must be > 0, got {alpha}")
        pk, pc, logq = self._tables(level)
        i, j = cand_b.long()[:, :, None], cand_d.long()[:, None, :]
        c = self.count(level, i, j, m.long()[:, None, None]).double()
        cp = self._lookup(pk, pc, i * self.V + j).double()
        prior = alpha * self.V * (logq[m.long()].double().exp()[:, None, None] if smoothing == "backoff"
                                  else torch.full_like(c, 1.0 / self.V))
        return ((c + prior) / (cp + alpha * self.V)).log().float()

    # ------------------------------------------------------------------ files
    def save(self, path) -> None:
        """Keys and counts as int32 where they fit (V^3 < 2^31: V <= 1290), else int64."""
        def small(x, bound):
            return x.int() if bound < 2 ** 31 else x
        tensors = {}
        for lv in range(self.levels):
            c = self.counts[lv]
            tensors[f"keys_{lv}"] = small(self.keys[lv], self.V ** 3)
            tensors[f"counts_{lv}"] = small(c, int(c.max()) if c.numel() else 0)
        header = {"kind": KIND, "format_version": 1, "config": {"codebook_size": self.V, "levels": self.levels,
                                                                "codec_hash": self.codec_hash},
                  "seen": self.seen}
        save_tensors(path, tensors, header)

    @classmethod
    def load(cls, path) -> "CodeCounts":
        header, t = load_tensors(path, KIND)
        cfg = header.get("config", {})
        try:
            levels = int(cfg["levels"])
            keys = [t[f"keys_{lv}"].long() for lv in range(levels)]
            counts = [t[f"counts_{lv}"].long() for lv in range(levels)]
        except (KeyError, ValueError):
            raise ModelFileError(f"{path}: not a complete code-counts file") from None
        return cls(int(cfg["codebook_size"]), levels, cfg.get("codec_hash", ""), keys, counts, header.get("seen"))

    def seen_fraction(self, b: torch.Tensor, d: torch.Tensor, m: torch.Tensor) -> list[float]:
        """Per level, the fraction of frames of codes (K, F) whose true triplet has been counted."""
        return [float((self.count(lv, b[lv].long(), d[lv].long(), m[lv].long()) > 0).float().mean())
                for lv in range(self.levels)]
