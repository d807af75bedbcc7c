"""THE chunked inference on long audio, for every separation method, separator model and peer.

`separate_long(method, mix, refs)` runs a registered method over a whole track; `apply_chunked(fn, mix, segment,
overlap, hop)` is the overlap-add underneath it, for code that chunks a network directly (a model's own forward).
Both choose segments here and only here: the length is `segment_length(seconds, sample_rate, hop)` and every
segment starts on a multiple of `hop` (the model's STFT hop or total stride: `hop_multiple` on models, `hop` on
methods), so a chunk's frames fall on the frames the whole signal would have. As in demucs' apply_model, segments
overlap by `overlap`, each output is weighted by a transition window, and the sum is divided by the summed
weights; memory is one output buffer plus one batch of segments.
"""
from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from ..limits import check_memory


MAX_SHIFT_SECONDS = 0.5      # --shifts: the largest random delay (demucs' 0.5 s)


def segment_length(seconds: float, sample_rate: int, hop: int = 1) -> int:
    """Samples per segment: seconds * sample_rate, rounded, then down to a multiple of hop (at least one hop)."""
    hop = max(1, int(hop))
    n = int(round(float(seconds) * sample_rate))
    return max(hop, n // hop * hop)


def segment_starts(length: int, segment: int, overlap: float, hop: int = 1) -> list[int]:
    """Start samples of the segments covering [0, length), each a multiple of hop: the stride is
    segment * (1 - overlap) rounded down to a multiple of hop (at least one hop)."""
    hop = max(1, int(hop))
    stride = max(hop, int((1 - overlap) * segment) // hop * hop)
    if length <= segment:
        return [0]
    starts = list(range(0, length - segment, stride))
    if starts[-1] + segment < length:
        starts.append(starts[-1] + stride)
    return starts


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


def apply_chunked(fn, mix: torch.Tensor, segment: int, overlap: float = 0.25, hop: int = 1,
                  num_outputs: int | None = None, transition: str = "triangle", batch_size: int = 4,
                  progress: bool = False) -> torch.Tensor:
    """Run fn over overlapping hop-aligned segments of mix (B, C, T) and stitch -> (B, S, T).

    fn: (n, C, segment) -> (n, S, segment), called on up to batch_size * B segments at once (segments of
    several positions are stacked on the batch axis). `segment` must be a multiple of `hop` (use
    segment_length); starts are `segment_starts(T, segment, overlap, hop)`. The last segment is zero-padded to
    `segment`. Each segment's output is weighted by `transition_window` and added; the sum is divided by the
    summed weights, so a context-free fn gives exactly its whole-signal result. S is taken from the first call
    unless `num_outputs` is given. Runs in the caller's grad mode (wrap in torch.inference_mode() for speed).
    """
    if mix.ndim != 3:
        raise ValueError(f"apply_chunked: expected (batch, channels, time), got {tuple(mix.shape)}")
    if not 0 <= overlap < 1:
        raise ConfigError(f"overlap must be in [0, 1), got {overlap}")
    segment, hop = int(segment), max(1, int(hop))
    if segment < 1:
        raise ConfigError(f"segment must be at least 1 sample, got {segment}")
    if segment % hop:
        raise ConfigError(f"segment {segment} is not a multiple of the hop {hop} (see segment_length)")
    B, C, T = mix.shape
    w = transition_window(segment, overlap, transition).to(mix.device)
    starts = segment_starts(T, segment, overlap, hop)
    out = None
    if num_outputs is not None:
        out = torch.zeros(B, num_outputs, T, device=mix.device, dtype=mix.dtype)
    wsum = torch.zeros(T, device=mix.device, dtype=mix.dtype)
    batches = [starts[i:i + batch_size] for i in range(0, len(starts), batch_size)]
    it = batches
    if progress:
        from tqdm import tqdm
        it = tqdm(batches, unit="batch", leave=False, dynamic_ncols=True, disable=None)  # a terminal only
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


MIN_SEGMENT_SECONDS = 1.0     # shorter segments are shorter than the separators' STFT windows
BYTES_PER_SAMPLE = 256        # working memory per segment sample and batch row, unless a method says (measured:
                              # ~80 for the shipped spec separator at --segment 300)


def inference_segment(method, seconds: float | None, length: int, sr: int, hop: int, batch_size: int,
                      rows: int = 1) -> int:
    """The segment (samples) separate_long uses for `length` samples: `seconds` (default: the method's), never
    longer than the signal rounded up to the hop unless that is the method's own default (short signals are
    zero-padded to it as before), at least MIN_SEGMENT_SECONDS (or the method's default when shorter), and
    within the machine's memory (limits.check_memory); ConfigError naming --segment otherwise."""
    default = float(getattr(method, "segment_seconds", 10.0))
    asked = default if seconds is None else float(seconds)
    floor = min(MIN_SEGMENT_SECONDS, default)
    if not math.isfinite(asked) or asked < floor:
        raise ConfigError(f"--segment {seconds}: must be a number of seconds >= {floor:g}")
    segment = min(segment_length(asked, sr, hop), max(-(-length // hop) * hop, segment_length(default, sr, hop)))
    per_sample = int(getattr(method, "bytes_per_sample", BYTES_PER_SAMPLE))
    need = segment * max(1, batch_size) * rows * per_sample + length * rows * (len(method.stems) + 2) * 4
    check_memory(need, f"--segment {asked:g} with --batch-size {batch_size} ({length / sr:.0f} s of audio)",
                 "use a shorter --segment or --batch-size 1")
    return segment


def separate_long(method, mix: torch.Tensor, refs: torch.Tensor | None = None, segment_seconds: float | None = None,
                  overlap: float = 0.25, sr: int = 22050, batch_size: int = 4, progress: bool = False,
                  shifts: int = 0, seed: int = 0) -> torch.Tensor:
    """Separate a whole track with a method object (see separation.registry), segment by segment:
    mix (B, 1, T), refs (B, S, T) -> (B, S, T), under torch.inference_mode.

    Segments are `segment_length(segment_seconds or method.segment_seconds, sr, method.hop)` samples, start on
    multiples of `method.hop` (1 for a method without one) and are stitched by `apply_chunked`; a method that
    needs references gets the matching slices of refs. `shifts` > 0: test-time augmentation as demucs does it,
    the average of `shifts` separations of the signal delayed by random offsets in [0, 0.5 s) (drawn from
    `seed`), each shifted back: `shifts` times the cost.
    """
    if shifts > 0:
        T, pad = mix.shape[-1], int(MAX_SHIFT_SECONDS * sr)
        g = torch.Generator().manual_seed(int(seed))
        padded = torch.nn.functional.pad(mix, (pad, pad))
        padded_refs = None if refs is None else torch.nn.functional.pad(refs, (pad, pad))
        total = None
        for _ in range(int(shifts)):
            off = int(torch.randint(0, pad, (1,), generator=g))
            window = slice(off, off + T + pad)
            est = separate_long(method, padded[..., window], None if refs is None else padded_refs[..., window],
                                segment_seconds, overlap, sr, batch_size, progress)
            est = est[..., pad - off: pad - off + T]
            total = est if total is None else total + est
        return total / shifts
    hop = int(getattr(method, "hop", 1) or 1)
    S = len(method.stems)
    segment = inference_segment(method, segment_seconds, mix.shape[-1], sr, hop, batch_size, mix.shape[0])
    run = getattr(method, "separate_segment", method.separate)    # a method that cuts long inputs itself runs
    if method.needs_references:                                   # each segment whole through separate_segment
        if refs is None:
            raise ConfigError(f"method '{method.name}' needs the reference stems")
        x = torch.cat([mix, refs.to(mix.dtype)], dim=1)

        def fn(chunk):
            return run(chunk[:, :1], chunk[:, 1:])
    else:
        x = mix

        def fn(chunk):
            return run(chunk, None)
    with torch.inference_mode():
        return apply_chunked(fn, x, segment, overlap, hop, num_outputs=S, batch_size=batch_size, progress=progress)
