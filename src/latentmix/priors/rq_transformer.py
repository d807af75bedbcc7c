"""RQ-Transformer (Lee et al. 2022), seed 000 fixed: a causal spatial transformer over frames and a causal depth
transformer over the residual levels of each frame, both with KV caches and RoPE (no position table to outrun).

Step t of the spatial stack reads the sum of frame t-1's level embeddings (BOS at t = 0) and the condition
prefix; the depth stack then predicts level d of frame t from the spatial context and levels < d of frame t.
Seed 000's attention kept only the diagonal (an MLP per position) and divided logits with `//`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import ModelIO
from .sampling import guided, sample
from .transformer import ConditionPrefix, KVCache, Stack


class RQTransformer(nn.Module, ModelIO):
    """codes (B, K, T) of a K-level, V-code RVQ. Unconditional, or conditioned by a prefix (B, C, cond_dim)."""

    KIND = "prior"

    def __init__(self, num_codebooks: int, codebook_size: int, dim: int = 256, depth: int = 6,
                 depth_layers: int = 2, heads: int = 8, cond_dim: int = 0, cond_tokens: int = 1,
                 dropout: float = 0.0, context: int = 1024, codec: dict | None = None,
                 text_encoder: str = ""):
        super().__init__()
        self.config = dict(architecture="rq", text_encoder=text_encoder, num_codebooks=num_codebooks,
                           codebook_size=codebook_size, dim=dim,
                           depth=depth, depth_layers=depth_layers, heads=heads, cond_dim=cond_dim,
                           cond_tokens=cond_tokens, dropout=dropout, context=context, codec=codec or {})
        k, v = num_codebooks, codebook_size
        self.k, self.v, self.bos, self.context = k, v, v, int(context)
        self.spatial_embed = nn.ModuleList(nn.Embedding(v + 1, dim) for _ in range(k))
        self.depth_embed = nn.ModuleList(nn.Embedding(v, dim) for _ in range(k - 1))
        self.level_pos = nn.Parameter(torch.zeros(k, dim))
        self.spatial = Stack(dim, depth, heads, dropout)
        self.depth = Stack(dim, depth_layers, heads, dropout)
        self.head = nn.ModuleList(nn.Linear(dim, v) for _ in range(k))
        self.cond_dim = int(cond_dim)
        self.prefix = ConditionPrefix(cond_dim, cond_tokens, dim)

    @classmethod
    def from_config(cls, config: dict):
        """The saved config names its architecture ("rq"), which the constructor does not take."""
        return super().from_config({k: v for k, v in config.items() if k != "architecture"})

    @property
    def prefix_length(self) -> int:
        return self.prefix.length

    def _frame_inputs(self, prev: torch.Tensor) -> torch.Tensor:
        """prev (B, K, L) codes of the previous frames (BOS allowed) -> (B, L, dim)."""
        return sum(self.spatial_embed[i](prev[:, i]) for i in range(self.k))

    def context_states(self, prev: torch.Tensor, cond=None, cache: KVCache | None = None, cond_drop=None):
        """prev (B, K, L) -> spatial context h (B, L, dim) for the frames after each input frame."""
        x = self._frame_inputs(prev)
        p = self.prefix_length if (cache is None or cache.length == 0) else 0
        if p:
            x = torch.cat([self.prefix(cond, x.shape[0], cond_drop), x], 1)
        return self.spatial(x, cache)[:, p:]

    def depth_logits(self, h: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """h (N, dim) contexts, codes (N, K) of those frames (teacher forcing) -> logits (N, K, V)."""
        seq = [h]
        seq += [h + self.depth_embed[d](codes[:, d]) for d in range(self.k - 1)]
        x = torch.stack(seq, 1) + self.level_pos[None]
        y = self.depth(x)
        return torch.stack([self.head[d](y[:, d]) for d in range(self.k)], 1)

    def loss(self, codes: torch.Tensor, cond=None, cond_drop=None) -> dict:
        """codes (B, K, T) -> {"prior/nll": mean NLL (nats), "prior/nll_l{k}"}."""
        b, k, t = codes.shape
        prev = torch.cat([codes.new_full((b, k, 1), self.bos), codes[..., :-1]], -1)
        h = self.context_states(prev, cond, cond_drop=cond_drop)                     # (B, T, dim)
        logits = self.depth_logits(h.reshape(b * t, -1), codes.permute(0, 2, 1).reshape(b * t, k))
        nll = F.cross_entropy(logits.reshape(-1, self.v), codes.permute(0, 2, 1).reshape(-1),
                              reduction="none").view(b * t, k)
        out = {"prior/nll": nll.mean()}
        out.update({f"prior/nll_l{d}": nll[:, d].mean() for d in range(k)})
        return out

    @torch.inference_mode()
    def generate(self, frames: int, batch: int = 1, cond=None, temperature: float = 1.0, top_k: int = 250,
                 top_p: float = 0.0, seed: int | None = None, cfg: float = 1.0, progress=None) -> torch.Tensor:
        """Sample codes (B, K, frames): one cached spatial step per frame, then K cached depth steps. With a
        condition and cfg != 1, the conditional and null-prefix rows run as one batch (classifier-free guidance)."""
        dev = self.level_pos.device
        gen = torch.Generator(device=dev).manual_seed(int(seed)) if seed is not None else None
        b = cond.shape[0] if cond is not None else batch
        guide = self.cond_dim > 0 and cond is not None and cfg != 1.0
        rows, drop = (torch.cat([cond, cond]), torch.arange(2 * b, device=dev) >= b) if guide else (cond, None)
        n = 2 * b if guide else b
        out = torch.zeros(b, self.k, frames, dtype=torch.long, device=dev)
        cache = KVCache(len(self.spatial.blocks))
        prev = torch.full((n, self.k, 1), self.bos, dtype=torch.long, device=dev)
        for t in range(frames):
            if cache.length >= self.context + self.prefix_length:     # windowed extension: RoPE is relative
                cache = KVCache(len(self.spatial.blocks))
                lo = max(0, t - self.context // 2)
                hist = torch.cat([torch.full_like(out[..., :1], self.bos) if lo == 0 else out[..., lo - 1:lo],
                                  out[..., lo:t]], -1)
                h = self.context_states(hist.repeat(n // b, 1, 1), rows, cache, cond_drop=drop)[:, -1]
            else:
                h = self.context_states(prev, rows, cache, cond_drop=drop)[:, -1]
            dcache = KVCache(len(self.depth.blocks))
            x = h
            for d in range(self.k):
                logits = self.head[d](self.depth((x + self.level_pos[d])[:, None], dcache)[:, -1])
                if guide:
                    logits = guided(logits[:b], logits[b:], cfg)
                tok = sample(logits, gen, temperature=temperature, top_k=top_k, top_p=top_p)
                out[:, d, t] = tok
                tok = tok.repeat(n // b)
                if d < self.k - 1:
                    x = h + self.depth_embed[d](tok)
            prev = out[..., t:t + 1].repeat(n // b, 1, 1)
            if progress is not None:
                progress(1)
        return out
