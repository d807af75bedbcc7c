"""Search in the joint code space of two per-stem priors under a likelihood: ancestral sampling with N chains
(LQ-VAE, seeds 001/003) and beam search (LASS, seed 003), both batched over chunks x chains/beams.

The priors are CodeTransformers over the same levels (delay or parallel pattern). At pattern step s each stream q
holds level q of frame t = s - offset(q); the two priors' next-token log-probabilities are cut to their top-k
(`topk`) per stream, and the joint over the kb x kd candidate pairs is
    log p_bass(i) + log p_drums(j) + log L(mixture | i, j)
(the likelihood only on the levels it covers: below `levels`, the priors alone choose the finer ones, conditioned
on what was chosen). A dense joint would be V^2 = 1M pairs per row and stream; top-k keeps k^2.

Beam search keeps, per chunk, the `width` best rows over all (row, pair-combination) candidates; a step's
combinations over its streams are the exact k-best of a sum of independent lists (merged stream by stream). The
kept rows' scores, codes, streams and BOTH priors' KV caches are reordered with one index tensor (LASS's
reference code indexed the scores with a different tensor than the beams, seeds_spec §3c).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import ConfigError, ModelFileError
from ...priors.transformer import CodeTransformer, KVCache
from .likelihood import Likelihood, MixContext


@dataclass
class SearchResult:
    """codes_b, codes_d (R, K, F) with R = chunks * per rows (chunk-major); score (R,) = prior + lik, the
    log posterior (up to a constant) of each row's path; prior, lik (R,) its two parts."""
    codes_b: torch.Tensor
    codes_d: torch.Tensor
    score: torch.Tensor
    prior: torch.Tensor
    lik: torch.Tensor
    chunks: int
    per: int

    def view(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(self.chunks, self.per, *x.shape[1:])


def check_priors(pb: CodeTransformer, pd: CodeTransformer, codec=None) -> None:
    """Both priors model the same levels and codebook with a delay or parallel pattern (and, with a codec, its
    codes: the codebook size, and the codec hash the prior was trained on when the file records one)."""
    for p in (pb, pd):
        if not isinstance(p, CodeTransformer):
            raise ModelFileError(f"Bayesian separation needs pattern priors (CodeTransformer), got {type(p).__name__}")
        if p.pattern.name not in ("delay", "parallel"):
            raise ModelFileError(f"Bayesian separation needs a delay or parallel prior, got '{p.pattern.name}'")
        if p.cond_dim:
            raise ModelFileError("Bayesian separation needs unconditional priors (this one is conditional)")
    if (pb.pattern.name, pb.pattern.num_codebooks, pb.pattern.codebook_size) != \
            (pd.pattern.name, pd.pattern.num_codebooks, pd.pattern.codebook_size):
        raise ModelFileError("the bass and drums priors model different patterns, levels or codebooks")
    if codec is not None:
        from ...priors.shards import codec_hash
        if pb.pattern.codebook_size != codec.codebook_size or pb.pattern.num_codebooks > codec.num_codebooks:
            raise ModelFileError(f"the priors model {pb.pattern.num_codebooks} x {pb.pattern.codebook_size} codes, "
                                 f"the codec has {codec.num_codebooks} x {codec.codebook_size}")
        h = codec_hash(codec)
        for name, p in (("bass", pb), ("drums", pd)):
            ph = (p.config.get("codec") or {}).get("hash")
            if ph and ph != h:
                raise ModelFileError(f"the {name} prior was trained on another codec's codes ({ph}, codec {h})")


class _Prior:
    """One prior stepped with its KV cache over R rows: logprobs(step) -> (R, Q, V)."""

    def __init__(self, model: CodeTransformer, rows: int, temperature: float):
        self.model, self.temperature = model, float(temperature)
        self.cache = KVCache(len(model.stack.blocks))
        self.streams = torch.full((rows, model.pattern.streams, 0), model.pad, dtype=torch.long)

    def logprobs(self, s: int) -> torch.Tensor:
        m = self.model
        inp = self.streams[..., -1:] if s > 0 else torch.full((self.streams.shape[0], m.pattern.streams, 1), m.bos)
        logits = m(inp, None, self.cache, start=s)[:, :, -1].float()
        return (logits / self.temperature).log_softmax(-1)

    def push(self, tokens: torch.Tensor) -> None:
        self.streams = torch.cat([self.streams, tokens[..., None]], -1)

    def reorder(self, rows: torch.Tensor) -> None:
        self.cache.reorder_cache(rows)
        self.streams = self.streams.index_select(0, rows)


def _offsets(model: CodeTransformer) -> list[int]:
    return list(range(model.pattern.num_codebooks)) if model.pattern.name == "delay" else [0] * model.pattern.streams


def _stream_joint(lik, ctx, q, t, vb, ib, vd, id_, codes_b, codes_d):
    """Joint and likelihood scores (R, k, k) of stream q's candidate pairs at frame t."""
    prior = vb[:, q, :, None] + vd[:, q, None, :]
    if lik is None or not lik.covers(q):
        return prior, torch.zeros_like(prior)
    ll = lik.score(ctx, q, t, ib[:, q], id_[:, q], codes_b, codes_d)
    return prior + ll, ll


@torch.inference_mode()
def search(priors, lik: Likelihood | None, ctx: MixContext, frames: int, chunks: int, per: int,
           mode: str = "sample", topk: int = 32, temperature: float = 1.0, seed: int | None = 0) -> SearchResult:
    """Separate `chunks` mixtures (ctx has chunks * per rows) into `per` chains (mode 'sample') or beams ('beam')
    of `frames` frames each. priors = (bass prior, drums prior). Returns every row's codes and scores."""
    if mode not in ("sample", "beam"):
        raise ConfigError(f"unknown search mode '{mode}' (sample or beam)")
    if frames < 1 or per < 1 or topk < 1:
        raise ConfigError(f"search needs frames, chains/beams and top-k >= 1 (got {frames}, {per}, {topk})")
    pb, pd = priors
    R, Q = chunks * per, pb.pattern.streams
    gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    A, B = _Prior(pb, R, temperature), _Prior(pd, R, temperature)
    codes_b = torch.zeros(R, Q, frames, dtype=torch.long)
    codes_d = torch.zeros_like(codes_b)
    score, lik_sum = torch.zeros(R), torch.zeros(R)
    if mode == "beam":                  # identical rows at the start: only the first of each chunk may expand
        score.view(chunks, per)[:, 1:] = float("-inf")
    offs, k = _offsets(pb), min(int(topk), pb.pattern.codebook_size)
    for s in range(pb.pattern.steps(frames)):
        vb, ib = A.logprobs(s).topk(k, -1)
        vd, id_ = B.logprobs(s).topk(k, -1)
        active = [(q, s - o) for q, o in enumerate(offs) if 0 <= s - o < frames]
        if mode == "sample":
            tok_b, tok_d = _sample_step(lik, ctx, active, vb, ib, vd, id_, codes_b, codes_d, score, lik_sum, gen,
                                        pb.pad)
        else:
            rows, tok_b, tok_d, score, lik_sum = _beam_step(lik, ctx, active, vb, ib, vd, id_, codes_b, codes_d,
                                                            score, lik_sum, chunks, per, pb.pad)
            A.reorder(rows)
            B.reorder(rows)
            codes_b, codes_d, ctx = codes_b.index_select(0, rows), codes_d.index_select(0, rows), ctx.select(rows)
        for q, t in active:
            codes_b[:, q, t], codes_d[:, q, t] = tok_b[:, q], tok_d[:, q]
        A.push(tok_b)
        B.push(tok_d)
    return SearchResult(codes_b, codes_d, score, score - lik_sum, lik_sum, chunks, per)


def _sample_step(lik, ctx, active, vb, ib, vd, id_, codes_b, codes_d, score, lik_sum, gen, pad):
    """Draw one pair per row and active stream from its joint; add the drawn pairs' scores in place."""
    R, Q, k = ib.shape
    tok_b = torch.full((R, Q), pad, dtype=torch.long)
    tok_d = tok_b.clone()
    for q, t in active:
        joint, ll = _stream_joint(lik, ctx, q, t, vb, ib, vd, id_, codes_b, codes_d)
        flat = joint.reshape(R, k * k)
        pick = torch.multinomial(flat.softmax(-1), 1, generator=gen)[:, 0]
        tok_b[:, q] = ib[:, q].gather(1, (pick // k)[:, None])[:, 0]
        tok_d[:, q] = id_[:, q].gather(1, (pick % k)[:, None])[:, 0]
        score += flat.gather(1, pick[:, None])[:, 0]
        lik_sum += ll.reshape(R, k * k).gather(1, pick[:, None])[:, 0]
    return tok_b, tok_d


def _beam_step(lik, ctx, active, vb, ib, vd, id_, codes_b, codes_d, score, lik_sum, chunks, per, pad):
    """Expand every row by the k-best combinations of its streams' pairs and keep the `per` best per chunk.

    Returns (rows kept (R,), tokens_b, tokens_d (R, Q) for the kept rows, their scores and likelihood sums)."""
    R, Q, k = ib.shape
    comb = torch.zeros(R, 1)                        # running combination scores
    comb_ll = torch.zeros(R, 1)
    picks: list[torch.Tensor] = []                  # per active stream: (R, C) pair index of each combination
    for q, t in active:
        joint, ll = _stream_joint(lik, ctx, q, t, vb, ib, vd, id_, codes_b, codes_d)
        w = min(per, k * k)
        tv, ti = joint.reshape(R, k * k).topk(w, -1)                              # (R, w)
        tl = ll.reshape(R, k * k).gather(1, ti)
        both = (comb[:, :, None] + tv[:, None, :]).reshape(R, -1)               # (R, C * w)
        c = min(per, both.shape[1])
        comb, idx = both.topk(c, -1)
        prev, cur = idx // w, idx % w
        comb_ll = comb_ll.gather(1, prev) + tl.gather(1, cur)
        picks = [p.gather(1, prev) for p in picks] + [ti.gather(1, cur)]
    C = comb.shape[1]
    total = (score[:, None] + comb).reshape(chunks, per * C)
    best, flat = total.topk(per, -1)                                            # (chunks, per)
    rows = (torch.arange(chunks)[:, None] * per + flat // C).reshape(-1)      # ONE index for everything kept
    which = (flat % C).reshape(-1)
    tok_b = torch.full((R, Q), pad, dtype=torch.long)
    tok_d = tok_b.clone()
    for (q, _t), p in zip(active, picks):
        pair = p[rows, which]
        tok_b[:, q] = ib[rows, q].gather(1, (pair // k)[:, None])[:, 0]
        tok_d[:, q] = id_[rows, q].gather(1, (pair % k)[:, None])[:, 0]
    new_ll = lik_sum[rows] + comb_ll[rows, which]
    return rows, tok_b, tok_d, best.reshape(-1), new_ll
