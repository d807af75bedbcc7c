"""Stem augmentations in pure torch: per-stem random gain, per-stem time shift and random effects (EQ, reverb,
compression, amp drive on guitar; issue #19: timbres the renderers never made). Cross-song remixing is
StemWindows' remix_p.

Every function takes an optional torch.Generator so a dataset item is reproducible. Stems are (..., stems, time).
"""
from __future__ import annotations

import math

import torch


def random_gain(stems: torch.Tensor, db_range=(-6.0, 3.0), generator: torch.Generator | None = None) -> torch.Tensor:
    """Scale each stem of (..., stems, time) by an independent gain drawn uniformly in `db_range` dB."""
    lo, hi = float(db_range[0]), float(db_range[1])
    if lo == hi == 0.0:
        return stems
    db = lo + (hi - lo) * torch.rand(stems.shape[:-1], generator=generator)
    return stems * (10.0 ** (db / 20.0)).unsqueeze(-1).to(stems.dtype)


def shift(stems: torch.Tensor, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Crop (..., stems, time) to (..., stems, length) at an independent random offset per stem."""
    extra = stems.shape[-1] - length
    if extra < 0:
        raise ValueError(f"cannot crop {stems.shape[-1]} samples to {length}")
    if extra == 0:
        return stems
    offs = torch.randint(extra + 1, stems.shape[:-1], generator=generator)
    idx = offs.unsqueeze(-1) + torch.arange(length)
    return torch.gather(stems, -1, idx)


def _u(lo: float, hi: float, generator) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=generator))


def random_eq(x: torch.Tensor, sr: int, max_db: float = 6.0, points: int = 6,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """A smooth random EQ on a (time,) signal: gains uniform in +-max_db at `points` log-spaced frequencies
    (40 Hz ... sr/2), interpolated on log frequency and applied to the spectrum (zero phase; the curve is smooth,
    so its impulse response is short and the circular wrap is negligible)."""
    from ..audio import zero_phase_filter
    grid = torch.linspace(math.log(40.0), math.log(sr / 2), points, dtype=torch.float64)
    db = (2 * torch.rand(points, generator=generator, dtype=torch.float64) - 1) * max_db

    def curve(hz):
        logf = torch.log(hz.clamp_min(40.0))
        i = torch.searchsorted(grid, logf).clamp(1, points - 1)
        w = ((logf - grid[i - 1]) / (grid[i] - grid[i - 1])).clamp(0, 1)
        return 10.0 ** ((db[i - 1] * (1 - w) + db[i] * w) / 20.0)
    return zero_phase_filter(x, sr, curve)


def random_reverb(x: torch.Tensor, sr: int, rt60=(0.2, 1.2), wet=(0.1, 0.5),
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """A synthetic room on a (time,) signal: an exponentially decaying noise tail (RT60 uniform in `rt60` s,
    at most 1 s long), mixed in at a wet share uniform in `wet`, the dry/wet sum scaled back to the input's RMS.
    The stem a separator must return is then the reverberant one, as in a real mix."""
    n = x.shape[-1]
    t60 = _u(*rt60, generator)
    L = min(int(sr * min(t60, 1.0)), n)
    t = torch.arange(L, dtype=torch.float64) / sr
    ir = torch.randn(L, generator=generator, dtype=torch.float64) * torch.exp(-6.9078 * t / t60)
    from ..audio import fft_convolve
    ir = (ir / ir.norm().clamp_min(1e-12)).to(x.dtype)
    tail = fft_convolve(x, ir)
    w = _u(*wet, generator)
    y = (1 - w) * x + w * tail
    return y * (x.norm() / y.norm().clamp_min(1e-12))


def random_compress(x: torch.Tensor, sr: int, ratio=(2.0, 6.0), below_rms_db=(-3.0, 6.0),
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """A feed-forward compressor on a (time,) signal: 10 ms RMS frames, threshold `below_rms_db` dB under the
    signal's own RMS (from 3 dB above it to 6 dB below: it acts on the louder frames of any signal that has
    dynamics), ratio uniform in `ratio`, gain smoothed over 50 ms, make-up gain back
    to the input's RMS."""
    n, hop = x.shape[-1], max(1, sr // 100)
    xd = x.double()
    frames = torch.nn.functional.pad(xd, (0, (-n) % hop)).reshape(-1, hop)
    env_db = 10 * torch.log10(frames.pow(2).mean(1).clamp_min(1e-12))
    rms_db = 10 * torch.log10(xd.pow(2).mean().clamp_min(1e-12))
    thr, r = rms_db - _u(*below_rms_db, generator), _u(*ratio, generator)
    cut_db = (env_db - thr).clamp_min(0) * (1 - 1 / r)
    cut_db = torch.nn.functional.avg_pool1d(cut_db[None, None], 5, 1, 2, count_include_pad=False)[0, 0]
    gain = 10.0 ** (-cut_db / 20.0)
    gain = torch.nn.functional.interpolate(gain[None, None], size=frames.numel(), mode="linear",
                                           align_corners=False)[0, 0, :n]
    y = xd * gain
    return (y * (xd.norm() / y.norm().clamp_min(1e-12))).to(x.dtype)


def random_drive(x: torch.Tensor, sr: int, drive_db=(6.0, 30.0), bias=(0.0, 0.3), cabinet_hz=(2500.0, 6000.0),
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """An amp-style overdrive / distortion on a (time,) signal: tanh soft clipping of the peak-normalised signal at
    a pre-gain uniform in `drive_db` dB, with a bias uniform in `bias` (asymmetric clipping: even harmonics; the
    bias's own offset removed), then a cabinet-like low-pass (cutoff uniform in `cabinet_hz`, 24 dB/octave above),
    scaled back to the input's RMS. FluidR3's overdriven and distortion guitars are what the renderers lack."""
    from ..audio import zero_phase_filter
    xd = x.double()
    g, b = 10.0 ** (_u(*drive_db, generator) / 20.0), _u(*bias, generator)
    y = torch.tanh(g * xd / xd.abs().max().clamp_min(1e-12) + b) - math.tanh(b)
    fc = _u(*cabinet_hz, generator)
    y = zero_phase_filter(y, sr, lambda hz: 1.0 / torch.sqrt(1.0 + (hz / fc) ** 8))
    y = y - y.mean()
    return (y * (xd.norm() / y.norm().clamp_min(1e-12))).to(x.dtype)


def drive_rows(stems) -> tuple[int, ...]:
    """The rows of a stem list that random_effects' drive may touch: the guitar's."""
    return tuple(k for k, name in enumerate(stems) if name == "guitar")


def random_effects(stems: torch.Tensor, sr: int, p: float, generator: torch.Generator | None = None,
                   drive_p: float = 0.0, drive_rows=()) -> torch.Tensor:
    """Each stem of (stems, time), independently: EQ, then reverb, then compression, each with probability p;
    the rows in `drive_rows` (the guitar's) first get an amp drive (random_drive) with probability drive_p.
    A silent stem stays exactly silent. p = drive_p = 0 returns the input and draws nothing from the generator;
    drive_p = 0 draws exactly what it drew before the drive existed."""
    if p <= 0 and drive_p <= 0:
        return stems
    out = []
    for k, row in enumerate(stems):
        flags = (torch.rand(3, generator=generator) < p).tolist()
        drive = drive_p > 0 and k in drive_rows and bool(torch.rand((), generator=generator) < drive_p)
        if not row.abs().max() > 0:
            out.append(row)
            continue
        if drive:
            row = random_drive(row, sr, generator=generator)
        if flags[0]:
            row = random_eq(row, sr, generator=generator)
        if flags[1]:
            row = random_reverb(row, sr, generator=generator)
        if flags[2]:
            row = random_compress(row, sr, generator=generator)
        out.append(row)
    return torch.stack(out)
