"""apply_chunked: equality with whole-signal processing, lengths, batching, bounded memory on 10 minutes."""
import os

import pytest
import torch

from latentmix.separation.stitch import apply_chunked, segment_starts, transition_window


def _gain_fn(x):
    """Context-free: stem s = (s + 1) * channel mean."""
    g = torch.arange(1, 4, dtype=x.dtype).view(1, 3, 1)
    return x.mean(1, keepdim=True) * g


@pytest.mark.parametrize("T,segment,overlap,transition", [
    (10_000, 1000, 0.25, "triangle"), (10_007, 999, 0.5, "trapezoid"), (500, 1000, 0.25, "triangle"),
    (3000, 1000, 0.0, "rect"), (1001, 1000, 0.25, "triangle")])
def test_context_free_fn_equals_whole(T, segment, overlap, transition):
    x = torch.randn(2, 2, T)
    out = apply_chunked(_gain_fn, x, segment, overlap, transition=transition, batch_size=3)
    assert out.shape == (2, 3, T)
    assert torch.allclose(out, _gain_fn(x), atol=1e-6)


def test_segments_cover_and_windows_positive():
    for T in (1, 999, 1000, 1001, 12345):
        starts = segment_starts(T, 1000, 0.25)
        assert starts[0] == 0 and starts[-1] + 1000 >= T
    for kind in ("triangle", "trapezoid", "rect"):
        w = transition_window(1000, 0.25, kind)
        assert w.shape == (1000,) and w.min() > 0 and w.max() == 1


def test_batching_calls_and_shape_check():
    calls = []

    def fn(x):
        calls.append(x.shape[0])
        return _gain_fn(x)
    apply_chunked(fn, torch.randn(1, 1, 20_000), 1000, 0.25, batch_size=8)
    assert max(calls) == 8 and sum(calls) == len(segment_starts(20_000, 1000, 0.25))
    with pytest.raises(ValueError, match="expected"):
        apply_chunked(lambda x: x[..., :-1], torch.randn(1, 1, 5000), 1000)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux) to read RSS")
def test_ten_minutes_bounded_memory():
    T = 10 * 60 * 22050
    x = torch.randn(1, 1, T)
    S = 4
    out_bytes = S * T * 4
    peak = [0]

    def fn(c):
        y = c.expand(-1, S, -1) * 0.5
        peak[0] = max(peak[0], _rss())
        return y
    base = _rss()
    out = apply_chunked(fn, x, segment=10 * 22050, overlap=0.5, num_outputs=S, batch_size=4)
    peak[0] = max(peak[0], _rss())
    assert out.shape == (1, S, T)
    assert torch.allclose(out[0, 2], 0.5 * x[0, 0], atol=1e-6)
    # measured about 1.6 x out_bytes: the output buffer, the weight sum (T floats) and one batch; keeping every
    # segment output (overlap 0.5) would add at least 2 x out_bytes on top of the output buffer
    assert peak[0] - base < 2.0 * out_bytes, (peak[0] - base) / 2**20
