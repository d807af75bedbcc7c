"""Codebook patterns: how (B, K, T) codec codes become the token streams a prior reads, and back, exactly.

`parallel` predicts all K levels of a frame at once; `delay` (MusicGen) shifts level k by k steps so level k
of frame t is predicted after levels < k of the same frame; `flatten` interleaves the levels into one stream
(K·T steps, exact but K times longer). Streams are (B, Q, S) int64 with Q parallel streams per step; positions
that hold no code get the pattern's PAD token (= codebook_size).
"""
from __future__ import annotations

import torch

from ..errors import ConfigError

PATTERNS = ("parallel", "delay", "flatten")


class Pattern:
    """A codebook pattern over `num_codebooks` levels of a `codebook_size` codebook; pad = codebook_size."""

    def __init__(self, name: str, num_codebooks: int, codebook_size: int):
        if name not in PATTERNS:
            raise ConfigError(f"unknown codebook pattern '{name}' ({', '.join(PATTERNS)})")
        if num_codebooks < 1 or codebook_size < 1:
            raise ConfigError(f"pattern needs num_codebooks and codebook_size >= 1, got {num_codebooks}, "
                              f"{codebook_size}")
        self.name, self.num_codebooks, self.codebook_size = name, int(num_codebooks), int(codebook_size)
        self.pad = self.codebook_size

    @property
    def streams(self) -> int:
        """Q: tokens predicted per step."""
        return 1 if self.name == "flatten" else self.num_codebooks

    def steps(self, frames: int) -> int:
        """S: sequence steps that hold `frames` frames."""
        k = self.num_codebooks
        return {"parallel": frames, "delay": frames + k - 1, "flatten": frames * k}[self.name]

    def frames(self, steps: int) -> int:
        """Complete frames held by `steps` steps (the inverse of `steps`, rounded down)."""
        k = self.num_codebooks
        return {"parallel": steps, "delay": max(0, steps - k + 1), "flatten": steps // k}[self.name]

    def build(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, K, T) -> streams (B, Q, S)."""
        b, k, t = codes.shape
        if k != self.num_codebooks:
            raise ValueError(f"codes have {k} levels, the pattern {self.num_codebooks}")
        if self.name == "parallel":
            return codes.clone()
        if self.name == "flatten":
            return codes.transpose(1, 2).reshape(b, 1, t * k)
        out = codes.new_full((b, k, t + k - 1), self.pad)
        for level in range(k):
            out[:, level, level:level + t] = codes[:, level]
        return out

    def revert(self, streams: torch.Tensor) -> torch.Tensor:
        """streams (B, Q, S) -> codes (B, K, T) of the complete frames (the exact inverse of build)."""
        b, q, s = streams.shape
        k = self.num_codebooks
        t = self.frames(s)
        if self.name == "parallel":
            return streams.clone()
        if self.name == "flatten":
            return streams[:, 0, :t * k].reshape(b, t, k).transpose(1, 2).contiguous()
        return torch.stack([streams[:, level, level:level + t] for level in range(k)], 1)

    def valid(self, steps: int, frames: int | None = None, device=None) -> torch.Tensor:
        """(Q, S) bool: True where stream position (q, s) holds a real code of a `frames`-frame sequence
        (default: the frames `steps` steps hold); False on the delay pattern's padding."""
        if self.name != "delay":
            return torch.ones(self.streams, steps, dtype=torch.bool, device=device)
        frames = self.frames(steps) if frames is None else frames
        t = torch.arange(steps, device=device)[None]
        lv = torch.arange(self.num_codebooks, device=device)[:, None]
        return (t >= lv) & (t - lv < frames)
