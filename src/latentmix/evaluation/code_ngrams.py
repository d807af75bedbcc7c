"""The baselines a code prior must beat: a unigram and a bigram (previous frame, same level) model per codec
level, counted on training code shards and scored in bits per token on held-out windows.

Smoothing: the unigram adds one to every count (Laplace); the bigram is interpolated absolute discounting
(d = 0.75) down to that unigram, P(c | p) = max(n(p, c) - d, 0) / n(p) + d u(p) / n(p) P1(c), with u(p) the
number of distinct successors of p, and the unigram where p was never seen. A window's first frame has no
predecessor and is scored by the unigram (the prior scores it from the window's start as well).
These are a few array operations; no n-gram library fits (K separate levels of a 1024-symbol code).
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError

DISCOUNT = 0.75


class CodeNGrams:
    """Per-level unigram and bigram counts over `vocab` codes of the first `levels` levels."""

    def __init__(self, levels: int, vocab: int):
        self.levels, self.vocab = int(levels), int(vocab)
        self.uni = np.zeros((self.levels, self.vocab), np.int64)
        self.bi = np.zeros((self.levels, self.vocab * self.vocab), np.int64)

    def fit(self, tracks) -> CodeNGrams:
        """tracks: iterable of (K, F) code arrays with K >= levels (e.g. CodeWindows(...).codes)."""
        v = self.vocab
        codes = [np.asarray(c[:self.levels], dtype=np.int64) for c in tracks]
        for k in range(self.levels):                 # one bincount per level over every track (not per track)
            self.uni[k] += np.bincount(np.concatenate([c[k] for c in codes] + [np.zeros(0, np.int64)]),
                                       minlength=v)
            pairs = [c[k, :-1] * v + c[k, 1:] for c in codes if c.shape[1] > 1]
            self.bi[k] += np.bincount(np.concatenate(pairs + [np.zeros(0, np.int64)]), minlength=v * v)
        return self

    @property
    def tokens(self) -> int:
        return int(self.uni[0].sum())

    def _unigram(self) -> np.ndarray:
        return (self.uni + 1.0) / (self.uni.sum(1, keepdims=True) + self.vocab)            # (L, V)

    def bits(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        """windows (N, >= L, W) codes -> {"unigram", "bigram"}: (L,) summed bits over the N x W tokens per level."""
        w = np.asarray(windows, dtype=np.int64)[:, :self.levels]
        if w.ndim != 3 or w.shape[1] < self.levels:
            raise ConfigError(f"windows {w.shape} hold fewer than the {self.levels} levels the n-grams count")
        v, p1 = self.vocab, self._unigram()
        out = {"unigram": np.zeros(self.levels), "bigram": np.zeros(self.levels)}
        for k in range(self.levels):
            x = w[:, k]
            uni = p1[k][x]                                            # (N, W)
            out["unigram"][k] = -np.log2(uni).sum()
            bi = self.bi[k].reshape(v, v)
            prev, cur = x[:, :-1].ravel(), x[:, 1:].ravel()
            n_p = bi.sum(1).astype(np.float64)
            u_p = (bi > 0).sum(1).astype(np.float64)
            n = n_p[prev]
            seen = n > 0
            safe = np.where(seen, n, 1.0)
            pc = np.maximum(bi[prev, cur] - DISCOUNT, 0.0) / safe + DISCOUNT * u_p[prev] / safe * p1[k][cur]
            pc = np.where(seen, pc, p1[k][cur])
            out["bigram"][k] = -np.log2(uni[:, 0]).sum() - np.log2(pc).sum()
        return out
