"""Model-agnostic chunked inference on long audio: overlapping segments, cross-faded by a transition window.

The role of demucs' apply_model: fn maps (n, C, segment) -> (n, S, segment); output (B, S, T) is the weighted
overlap-add of segment outputs divided by the summed weights. Memory is one output buffer plus one batch.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError


def transition_window(segment: int, overlap: float, kind: str = "triangle", floor: float = 1e-3) -> torch.Tensor:
    """Weights (segment,) in (0, 1]: 'triangle' (demucs), 'trapezoid' (ramps of overlap*segment, flat middle)
    or 'rect'. Values are at least `floor`, so every sample of every segment counts a little."""
    if kind == "triangle":
        half = segment // 2
        w = torch.cat([torch.arange(1, half + 1), torch.arange(segment - half, 0, -1)]).float()
    elif kind == "trapezoid":
        ramp = max(1, int(round(overlap * segment)))
        ramp = min(ramp, segment // 2) or 1
        w = torch.ones(segment)
        r = torch.arange(1, ramp + 1).float() / (ramp + 1)
        w[:ramp] = r
        w[segment - ramp:] = r.flip(0)
    elif kind == "rect":
        w = torch.ones(segment)
    else:
        raise ConfigError(f"unknown transition '{kind}' (known: triangle, trapezoid, rect)")
    w = w / w.max()
    return w.clamp_min(floor)


def segment_starts(length: int, segment: int, overlap: float) -> list[int]:
    """Start samples of the segments covering [0, length): stride = segment * (1 - overlap)."""
    stride = max(1, int((1 - overlap) * segment))
    if length <= segment:
        return [0]
    starts = list(range(0, length - segment, stride))
    if starts[-1] + segment < length:
        starts.append(starts[-1] + stride)
    return starts


def apply_chunked(fn, mix: torch.Tensor, segment: int, overlap: float = 0.25, num_outputs: int | None = None,
                  transition: str = "triangle", batch_size: int = 4, progress: bool = False) -> torch.Tensor:
    """Run fn over overlapping segments of mix (B, C, T) and stitch -> (B, S, T).

    fn: (n, C, segment) -> (n, S, segment), called on up to batch_size * B segments at once (segments of
    several positions are stacked on the batch axis). The last segment is zero-padded to `segment`. Each
    segment's output is weighted by `transition_window` and added; the sum is divided by the summed weights,
    so a context-free fn gives exactly its whole-signal result. S is taken from the first call unless
    `num_outputs` is given. Runs in the caller's grad mode (wrap in torch.inference_mode() for speed).
    """
    if mix.ndim != 3:
        raise ValueError(f"apply_chunked: expected (batch, channels, time), got {tuple(mix.shape)}")
    if not 0 <= overlap < 1:
        raise ConfigError(f"overlap must be in [0, 1), got {overlap}")
    segment = int(segment)
    if segment < 1:
        raise ConfigError(f"segment must be at least 1 sample, got {segment}")
    B, C, T = mix.shape
    w = transition_window(segment, overlap, transition).to(mix.device)
    starts = segment_starts(T, segment, overlap)
    out = None
    if num_outputs is not None:
        out = torch.zeros(B, num_outputs, T, device=mix.device, dtype=mix.dtype)
    wsum = torch.zeros(T, device=mix.device, dtype=mix.dtype)
    batches = [starts[i:i + batch_size] for i in range(0, len(starts), batch_size)]
    it = batches
    if progress:
        from tqdm import tqdm
        it = tqdm(batches, unit="batch", leave=False, dynamic_ncols=True)
    for group in it:
        chunks = []
        for a in group:
            c = mix[..., a:a + segment]
            if c.shape[-1] < segment:
                c = torch.nn.functional.pad(c, (0, segment - c.shape[-1]))
            chunks.append(c)
        y = fn(torch.cat(chunks, 0))                                       # (len(group) * B, S, segment)
        if y.ndim != 3 or y.shape[0] != len(group) * B or y.shape[-1] != segment:
            raise ValueError(f"apply_chunked: fn returned {tuple(y.shape)} for input "
                             f"{(len(group) * B, C, segment)}; expected (n, S, segment)")
        if out is None:
            out = torch.zeros(B, y.shape[1], T, device=mix.device, dtype=y.dtype)
            wsum = wsum.to(y.dtype)
        y = y.reshape(len(group), B, y.shape[1], segment)
        for k, a in enumerate(group):
            n = min(segment, T - a)
            out[..., a:a + n].add_(y[k, ..., :n] * w[:n])
            wsum[a:a + n].add_(w[:n])
        del y, chunks
    out.div_(wsum)
    return out
