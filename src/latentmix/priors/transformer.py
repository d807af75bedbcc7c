"""Decoder-only transformer prior over codec codes: RoPE attention through scaled_dot_product_attention, a KV
cache with reorder_cache for beam search, a codebook pattern (patterns.py) and an optional condition prefix.

Tokens: codes 0..V-1, PAD = V (pattern padding), BOS = V + 1 (the input of step 0). Logits cover the V codes.
RoPE carries only relative positions, so the model runs past its training length. Shapes are batch first.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import ModelIO
from ..errors import ConfigError
from .patterns import Pattern


class KVCache:
    """Keys and values (B, H, L, Dh) per layer for the positions seen so far (condition prefix included)."""

    def __init__(self, layers: int):
        self.k: list[torch.Tensor | None] = [None] * layers
        self.v: list[torch.Tensor | None] = [None] * layers

    @property
    def length(self) -> int:
        return 0 if self.k[0] is None else self.k[0].shape[2]

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.k[layer] is not None:
            k, v = torch.cat([self.k[layer], k], 2), torch.cat([self.v[layer], v], 2)
        self.k[layer], self.v[layer] = k, v
        return k, v

    def reorder_cache(self, beam_idx: torch.Tensor) -> None:
        """Keep batch rows `beam_idx` (B',) in that order (beam search): the cache of each kept hypothesis."""
        self.k = [None if k is None else k.index_select(0, beam_idx) for k in self.k]
        self.v = [None if v is None else v.index_select(0, beam_idx) for v in self.v]


def rope(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding of x (B, H, L, Dh) at integer positions (L,); Dh even."""
    half = x.shape[-1] // 2
    freqs = base ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    ang = positions.to(torch.float32)[:, None] * freqs[None]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % heads or (dim // heads) % 2:
            raise ConfigError(f"prior dim {dim} must split into {heads} heads of even size")
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, layer: int, cache: KVCache | None, offset: int = 0) -> torch.Tensor:
        """x (B, n, D) at positions offset..offset+n-1, after `offset` cached positions."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        pos = torch.arange(offset, offset + n, device=x.device)
        q, k = rope(q, pos), rope(k, pos)
        if cache is not None:
            k, v = cache.append(layer, k, v)
        drop = self.dropout if self.training else 0.0
        if offset == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=n > 1, dropout_p=drop)
        else:   # n new queries after `offset` cached keys: query i sees keys <= offset + i
            mask = torch.ones(n, offset + n, dtype=torch.bool, device=x.device).tril(offset)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN x), then x + MLP(LN x). (B, L, D) -> (B, L, D)."""

    def __init__(self, dim: int, heads: int, mult: int = 4, dropout: float = 0.0):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(dim, mult * dim), nn.GELU(), nn.Linear(mult * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, layer: int, cache: KVCache | None, offset: int = 0) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), layer, cache, offset))
        return x + self.drop(self.mlp(self.ln2(x)))


class Stack(nn.Module):
    """`depth` Blocks and a final LayerNorm; cache-aware."""

    def __init__(self, dim: int, depth: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim, heads, dropout=dropout) for _ in range(depth))
        self.ln = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        offset = cache.length if cache is not None else 0
        for i, blk in enumerate(self.blocks):
            x = blk(x, i, cache, offset)
        return self.ln(x)


class ConditionPrefix(nn.Module):
    """A condition (B, C, cond_dim) projected to C prefix positions (B, C, dim), or a learned null prefix where
    the condition is absent or dropped (classifier-free guidance's unconditional branch). cond_dim 0: none."""

    def __init__(self, cond_dim: int, tokens: int, dim: int):
        super().__init__()
        self.cond_dim, self.tokens = int(cond_dim), int(tokens)
        if self.cond_dim:
            self.proj = nn.Linear(self.cond_dim, dim)
            self.null = nn.Parameter(torch.zeros(self.tokens, dim))

    @property
    def length(self) -> int:
        return self.tokens if self.cond_dim else 0

    def forward(self, cond: torch.Tensor | None, batch: int, drop: torch.Tensor | None = None) -> torch.Tensor:
        null = self.null[None].expand(batch, -1, -1)
        if cond is None:
            return null
        p = self.proj(cond)
        return torch.where(drop[:, None, None], null, p) if drop is not None else p


class CodeTransformer(nn.Module, ModelIO):
    """Autoregressive prior over pattern streams (B, Q, S) of a codec's codes (K levels x V codes).

    cond_dim > 0 makes it conditional: a condition (B, C, cond_dim) (e.g. a sentence embedding, C = 1) becomes C
    prefix positions; `cond=None` uses a learned null prefix (classifier-free guidance's unconditional branch).
    """

    KIND = "prior"

    def __init__(self, num_codebooks: int, codebook_size: int, pattern: str = "delay", dim: int = 256,
                 depth: int = 6, heads: int = 8, cond_dim: int = 0, cond_tokens: int = 1, dropout: float = 0.0,
                 context: int = 1024, codec: dict | None = None, text_encoder: str = ""):
        super().__init__()
        self.config = dict(text_encoder=text_encoder, num_codebooks=num_codebooks, codebook_size=codebook_size, pattern=pattern, dim=dim,
                           depth=depth, heads=heads, cond_dim=cond_dim, cond_tokens=cond_tokens,
                           dropout=dropout, context=context, codec=codec or {})
        self.pattern = Pattern(pattern, num_codebooks, codebook_size)
        q, v = self.pattern.streams, codebook_size
        self.pad, self.bos, self.context = v, v + 1, int(context)
        self.embed = nn.ModuleList(nn.Embedding(v + 2, dim) for _ in range(q))
        self.level_embed = nn.Embedding(num_codebooks, dim) if pattern == "flatten" else None
        self.stack = Stack(dim, depth, heads, dropout)
        self.heads = nn.ModuleList(nn.Linear(dim, v) for _ in range(q))
        self.cond_dim = int(cond_dim)
        self.prefix = ConditionPrefix(cond_dim, cond_tokens, dim)

    @property
    def prefix_length(self) -> int:
        return self.prefix.length

    def forward(self, inputs: torch.Tensor, cond: torch.Tensor | None = None, cache: KVCache | None = None,
                cond_drop: torch.Tensor | None = None, start: int = 0) -> torch.Tensor:
        """inputs (B, Q, L) tokens (BOS, codes, PAD) at steps start..start+L-1 -> logits (B, Q, L, V).

        With a cache, the condition prefix is added on the first call only (the cache is empty)."""
        b, q, n = inputs.shape
        x = sum(self.embed[i](inputs[:, i]) for i in range(q))
        if self.level_embed is not None:
            steps = torch.arange(start, start + n, device=inputs.device)
            x = x + self.level_embed(steps % self.pattern.num_codebooks)[None]
        first = cache is None or cache.length == 0
        p = self.prefix_length if first else 0
        if p:
            x = torch.cat([self.prefix(cond, b, cond_drop), x], 1)
        h = self.stack(x, cache)[:, p:]
        return torch.stack([head(h) for head in self.heads], 1)

    def shift(self, streams: torch.Tensor) -> torch.Tensor:
        """Training inputs from target streams (B, Q, S): BOS, then the targets delayed by one step."""
        bos = streams.new_full(streams.shape[:2] + (1,), self.bos)
        return torch.cat([bos, streams[..., :-1]], -1)

    def loss(self, codes: torch.Tensor, cond: torch.Tensor | None = None,
             cond_drop: torch.Tensor | None = None) -> dict:
        """codes (B, K, T) -> {"prior/nll": mean NLL in nats over real codes, "prior/nll_l{k}": per level}."""
        streams = self.pattern.build(codes)
        logits = self(self.shift(streams), cond, cond_drop=cond_drop)
        valid = self.pattern.valid(streams.shape[-1], codes.shape[-1], codes.device)
        nll = F.cross_entropy(logits.permute(0, 3, 1, 2), streams.clamp(max=self.pad - 1), reduction="none")
        nll = nll * valid[None]
        out = {"prior/nll": nll.sum() / (valid.sum() * codes.shape[0])}
        if self.pattern.name != "flatten":
            per = nll.sum((0, 2)) / (valid.sum(1) * codes.shape[0])
            out.update({f"prior/nll_l{k}": per[k] for k in range(per.shape[0])})
        return out
