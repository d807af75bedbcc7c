"""The figures of the HTML reports and the web demo: spectrograms, box plots, the bass-vs-drums scatter, loss
curves and code usage, drawn with matplotlib's Agg backend into PNG files (no display, no network).

Spectrograms are log-magnitude STFTs (dB) of mono audio; `spectrogram_db` computes them once so that every
stem of a song can share one colour scale (`db_range` over all of them, then `spectrogram_png(..., vmin, vmax)`).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

N_FFT = 1024
HOP = 256
DYNAMIC_DB = 80.0          # colour range below the loudest bin of a song
MAX_FRAMES = 2400          # longer audio is drawn at a coarser hop (the image has ~1000 pixel columns anyway)


def _plt():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _figure(size):
    """(fig, ax): one axes of size (width, height) inches at 100 dpi, drawn by Agg; _save finishes it."""
    return _plt().subplots(figsize=size, dpi=100)


def _save(fig, ax, path, title: str | None) -> Path:
    """Finish a _figure: the title, a tight layout, the PNG at path (its folder created), the figure closed."""
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    _plt().close(fig)
    return path


def _mono(x) -> np.ndarray:
    x = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(0) if x.shape[0] <= 8 else x.mean(1)
    return x.reshape(-1)


def spectrogram_db(x, sr: int, n_fft: int = N_FFT) -> np.ndarray:
    """(freq, frames) magnitude in dB of mono audio x ((T,) or (C, T)); silence is -200 dB, not -inf."""
    x = _mono(x)
    hop = max(HOP, int(math.ceil(len(x) / MAX_FRAMES)))
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft)[None], axis=1)).T
    return 20 * np.log10(np.maximum(spec, 1e-10))


def db_range(specs, dynamic: float = DYNAMIC_DB) -> tuple[float, float]:
    """(vmin, vmax) shared by several spectrograms: the loudest bin of any of them and `dynamic` dB below."""
    top = max((float(s.max()) for s in specs if s.size), default=0.0)
    top = max(top, -100.0)
    return top - dynamic, top


def spectrogram_png(path, spec_db: np.ndarray, sr: int, seconds: float, vmin: float | None = None,
                    vmax: float | None = None, title: str | None = None, mark_seconds: float | None = None,
                    mark_label: str = "prompt", size=(8, 2.6)) -> Path:
    """Draw a dB spectrogram (from spectrogram_db) to a PNG; mark_seconds shades [0, mark_seconds) (a prompt)."""
    if vmin is None or vmax is None:
        vmin, vmax = db_range([spec_db])
    fig, ax = _figure(size)
    ax.imshow(spec_db, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
              extent=(0, max(seconds, 1e-3), 0, sr / 2000), interpolation="nearest")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("kHz")
    if mark_seconds:
        ax.axvspan(0, mark_seconds, color="cyan", alpha=0.18)
        ax.axvline(mark_seconds, color="cyan", lw=1.5)
        ax.text(mark_seconds / 2, sr / 2000 * 0.92, mark_label, color="cyan", ha="center", va="top", fontsize=9)
    return _save(fig, ax, path, title)


def audio_spectrograms(paths_and_audio, sr: int, out_dir, titles=None) -> list[Path]:
    """Spectrogram PNGs of several signals on ONE colour scale: [(png path, audio)] -> the png paths."""
    specs = [spectrogram_db(a, sr) for _, a in paths_and_audio]
    vmin, vmax = db_range(specs)
    out = []
    for i, ((png, a), s) in enumerate(zip(paths_and_audio, specs)):
        title = titles[i] if titles else None
        out.append(spectrogram_png(Path(out_dir) / png, s, sr, len(_mono(a)) / sr, vmin, vmax, title))
    return out


def box_plot(path, groups: dict, ylabel: str, title: str | None = None) -> Path:
    """One box per stem and method: groups = {stem: {method: [values]}} (NaN dropped)."""
    stems = list(groups)
    methods = list(dict.fromkeys(m for g in groups.values() for m in g))
    fig, ax = _figure((max(5, 1.6 * len(stems) * max(1, len(methods)) ** 0.5), 3.2))
    width = 0.8 / max(1, len(methods))
    colors = _plt().rcParams["axes.prop_cycle"].by_key()["color"]
    for j, m in enumerate(methods):
        data = [[v for v in groups[s].get(m, []) if v is not None and math.isfinite(v)] or [float("nan")]
                for s in stems]
        pos = [i + (j - (len(methods) - 1) / 2) * width for i in range(len(stems))]
        bp = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True, showfliers=True)
        for b in bp["boxes"]:
            b.set_facecolor(colors[j % len(colors)])
            b.set_alpha(0.6)
        ax.plot([], [], color=colors[j % len(colors)], lw=6, alpha=0.6, label=m)
    ax.set_xticks(range(len(stems)))
    ax.set_xticklabels(stems)
    ax.set_ylabel(ylabel)
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, ax, path, title)


def scatter(path, points: dict, xlabel: str, ylabel: str, title: str | None = None, dashed=()) -> Path:
    """Scatter of (x, y) points per method: points = {method: [(x, y)]}; methods in `dashed` drawn hollow."""
    fig, ax = _figure((5, 4.2))
    for m, pts in points.items():
        pts = [(a, b) for a, b in pts if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)]
        if not pts:
            continue
        xs, ys = zip(*pts)
        if m in dashed:
            ax.scatter(xs, ys, s=22, facecolors="none", edgecolors="grey", label=m)
        else:
            ax.scatter(xs, ys, s=18, alpha=0.75, label=m)
    lo, hi = ax.get_xlim()
    lo2, hi2 = ax.get_ylim()
    a, b = min(lo, lo2), max(hi, hi2)
    ax.plot([a, b], [a, b], color="grey", lw=0.6, ls=":")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return _save(fig, ax, path, title)


def curves(path, series: dict, xlabel: str = "step", ylabel: str = "", title: str | None = None,
           logy: bool = False) -> Path:
    """Line plot: series = {label: ([x], [y])}; labels starting 'val' get markers."""
    fig, ax = _figure((7, 3.2))
    for label, (xs, ys) in series.items():
        style = dict(marker="o", ms=3) if label.startswith("val") else {}
        ax.plot(xs, ys, label=label, lw=1.2, **style)
    if logy and all(v > 0 for _, ys in series.values() for v in ys):
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if series:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, ax, path, title)


def bars(path, labels, values, ylabel: str, title: str | None = None) -> Path:
    """A bar chart (code usage per level)."""
    fig, ax = _figure((6, 2.8))
    ax.bar([str(v) for v in labels], values, color="#4c78a8")
    ax.set_ylabel(ylabel)
    return _save(fig, ax, path, title)
