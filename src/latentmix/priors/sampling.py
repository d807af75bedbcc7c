"""Sampling from a code prior: temperature (true division), top-k, top-p, seeds, classifier-free guidance,
continuation of a prompt's codes, and windowed extension past the model's context, all with the KV cache.

Seed 000 divided logits by the temperature with `//` and had top-p only; here both are fixed and tested.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError
from .transformer import CodeTransformer, KVCache


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 0.0) -> torch.Tensor:
    """logits (..., V) -> log-probabilities after temperature, top-k and top-p (nucleus) filtering."""
    if temperature <= 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    logits = logits.float() / float(temperature)
    if top_k and top_k < logits.shape[-1]:
        kth = logits.topk(int(top_k), -1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p and 0 < top_p < 1:
        srt, idx = logits.sort(-1, descending=True)
        cum = srt.softmax(-1).cumsum(-1)
        drop = cum - srt.softmax(-1) > top_p          # keep the smallest prefix whose mass reaches top_p
        logits = logits.masked_fill(drop.scatter(-1, idx, drop), float("-inf"))
    return logits.log_softmax(-1)


def sample(logits: torch.Tensor, generator: torch.Generator | None = None, **kw) -> torch.Tensor:
    """logits (..., V) -> tokens (...) int64 drawn from the filtered distribution."""
    probs = filter_logits(logits, **kw).exp()
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])


def guided(cond_logits: torch.Tensor, uncond_logits: torch.Tensor, coef: float) -> torch.Tensor:
    """Classifier-free guidance on logits: uncond + coef * (cond - uncond) (coef 1 = conditional)."""
    return uncond_logits + coef * (cond_logits - uncond_logits)


@torch.inference_mode()
def generate(model: CodeTransformer, frames: int, batch: int = 1, cond: torch.Tensor | None = None,
             prompt: torch.Tensor | None = None, cfg: float = 1.0, temperature: float = 1.0, top_k: int = 250,
             top_p: float = 0.0, seed: int | None = None, window: int | None = None, progress=None,
             use_cache: bool = True) -> torch.Tensor:
    """Sample codes (B, K, frames). `prompt` (B, K, Tp) codes are kept and continued; `cond` (B, C, cond_dim)
    conditions a conditional model, with guidance `cfg` (1: none) against its null prefix. Past `window` steps
    (default: the model's context) the cache is rebuilt from the last window / 2 steps (windowed extension).
    `use_cache=False` recomputes every step from the whole history (the last `window` steps): the same tokens
    within the context, kept to measure what the cache saves (benchmarks/generation.py)."""
    if frames < 1:
        raise ConfigError(f"frames must be >= 1, got {frames}")
    pat, dev = model.pattern, next(model.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(int(seed)) if seed is not None else None
    b = prompt.shape[0] if prompt is not None else (cond.shape[0] if cond is not None else batch)
    forced = _forced(model, prompt, b, frames, dev)
    steps = pat.steps(frames)
    guide = model.cond_dim > 0 and cond is not None and cfg != 1.0
    rows = torch.cat([cond, cond]) if guide else cond
    drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(dev) if guide else None
    window = int(window or model.context)
    out = torch.full((b, pat.streams, steps), model.pad, dtype=torch.long, device=dev)
    cache, start = KVCache(len(model.stack.blocks)), 0
    for s in range(steps):
        if not use_cache:
            start = max(0, s - window + 1)
            cache = KVCache(len(model.stack.blocks))
            inputs = torch.cat([_inputs(model, out, start), out[..., start:s]], -1)
        elif cache.length >= window + model.prefix_length:       # rebuild from the recent half: RoPE is relative
            start = max(0, s - window // 2)
            cache = KVCache(len(model.stack.blocks))
            hist = torch.cat([_inputs(model, out, start), out[..., start:s]], -1) if s > start else None
            inputs = hist if hist is not None else _inputs(model, out, s)
        else:
            inputs = out[..., s - 1:s] if s > 0 else _inputs(model, out, 0)
        x = torch.cat([inputs, inputs]) if guide else inputs
        logits = model(x, rows, cache, cond_drop=drop, start=s - inputs.shape[-1] + 1)[:, :, -1]
        if guide:
            logits = guided(logits[:b], logits[b:], cfg)
        tok = sample(logits, gen, temperature=temperature, top_k=top_k, top_p=top_p)
        out[..., s] = torch.where(forced[..., s] >= 0, forced[..., s], tok)
        if progress is not None:
            progress(1)
    return pat.revert(out)


def _inputs(model: CodeTransformer, out: torch.Tensor, s: int) -> torch.Tensor:
    """The input token of step s: BOS at step 0, else the token of step s - 1. (B, Q, 1)."""
    if s == 0:
        return out.new_full(out.shape[:2] + (1,), model.bos)
    return out[..., s - 1:s]


def _forced(model: CodeTransformer, prompt, b: int, frames: int, dev) -> torch.Tensor:
    """(B, Q, S) tokens that generation must keep (-1 where free): the prompt's codes and pattern padding."""
    pat = model.pattern
    full = torch.full((b, pat.num_codebooks, frames), -1, dtype=torch.long, device=dev)
    if prompt is not None:
        if prompt.shape[1] != pat.num_codebooks:
            raise ConfigError(f"prompt codes have {prompt.shape[1]} levels, the prior models {pat.num_codebooks}")
        n = min(frames, prompt.shape[-1])
        full[..., :n] = prompt[..., :n].to(dev)
    streams = pat.build(full)
    valid = pat.valid(streams.shape[-1], frames, dev)[None].expand_as(streams)
    return torch.where(valid, streams, torch.full_like(streams, model.pad))
