"""BSS-eval SDR, framewise, as museval v4 computes it (the LASS / LQ-VAE figures), plus a fast_bss_eval backend.

Shapes: est, ref (sources, time) -> SDR (sources, frames) in dB, NaN where museval would give NaN.

Backends (`backend=`):
- "v4" (default): museval's `evaluate(..., mode="v4")` SDR in closed form. In v4 "images" mode the four error
  terms museval builds (spatial, interference, artifacts) sum to exactly est - ref, so each frame's SDR is
  10 log10(sum ref^2 / sum (est - ref)^2); the distortion filters only split that error, never shrink it.
  Framing, NaN-on-silence and +inf rules are copied from museval.metrics. Checked against museval itself in
  tests/test_metrics.py (agreement to 1e-6 dB); milliseconds instead of seconds.
- "museval": museval.metrics.bss_eval itself (the reference). museval's package __init__ imports stempeg, which
  needs ffmpeg; when that import fails, museval/metrics.py (numpy + scipy only) is loaded on its own.
- "fast_bss_eval": fast_bss_eval's bss_eval_sources SDR per frame: a *different* metric (the reference may be
  filtered by a 512-tap FIR at no cost, as in BSS-eval v3 "sources"), so it reads higher than v4. Kept for
  comparison with papers that used it; it equals museval's `bss_eval(..., framewise_filters=True,
  bsseval_sources_version=True)` to the tolerance stated in the tests.
"""
from __future__ import annotations

import importlib
import importlib.util
import math

import numpy as np
import torch

from ..errors import ConfigError, LatentmixError

BACKENDS = ("v4", "museval", "fast_bss_eval")
_MUSEVAL_METRICS = None


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"expected (sources, time) audio, got shape {x.shape}")
    return x


def _pad_or_truncate(ref: np.ndarray, est: np.ndarray) -> np.ndarray:
    """museval.pad_or_truncate: the estimate is cut or zero-padded to the reference length."""
    if est.shape[1] >= ref.shape[1]:
        return est[:, : ref.shape[1]]
    return np.pad(est, [(0, 0), (0, ref.shape[1] - est.shape[1])])


def frames(length: int, window: int, hop: int) -> list[tuple[int, int]]:
    """museval's Framing: floor((length - window + hop) / hop) frames, one frame if window >= length.

    A trailing part shorter than `window` is NOT scored: 65,536 samples with window = hop = 44,100 give one
    frame covering samples [0, 44100).
    """
    n = int(math.floor((length - window + hop) / hop)) if window < length else 1
    return [(t * hop, min(t * hop + window, length)) for t in range(n)]


def museval_metrics():
    """museval.metrics, imported lazily; without going through stempeg/ffmpeg if the package import fails."""
    global _MUSEVAL_METRICS
    if _MUSEVAL_METRICS is not None:
        return _MUSEVAL_METRICS
    try:
        _MUSEVAL_METRICS = importlib.import_module("museval.metrics")
        return _MUSEVAL_METRICS
    except ImportError as e:
        if getattr(e, "name", None) == "museval":
            raise ConfigError("museval is not installed (pip install 'latentmix[eval]')") from None
        first_error = e
    except Exception as e:  # stempeg raises RuntimeError when ffmpeg is missing
        first_error = e
    try:
        spec = importlib.util.find_spec("museval")
        path = list(spec.submodule_search_locations)[0] + "/metrics.py"
        mspec = importlib.util.spec_from_file_location("latentmix_museval_metrics", path)
        mod = importlib.util.module_from_spec(mspec)
        mspec.loader.exec_module(mod)
    except Exception as e:
        raise LatentmixError(f"museval could not be imported ({str(first_error).splitlines()[0]}; "
                             f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    _MUSEVAL_METRICS = mod
    return mod


def _silent_any(x: np.ndarray) -> bool:
    """museval's _any_source_silent for mono sources: some source is all zeros."""
    return bool(np.any(np.all(x == 0, axis=1)))


def _v4(est: np.ndarray, ref: np.ndarray, window: int, hop: int) -> np.ndarray:
    fr = frames(ref.shape[1], window, hop)
    out = np.full((ref.shape[0], len(fr)), np.nan)
    for t, (a, b) in enumerate(fr):
        r, e = ref[:, a:b], est[:, a:b]
        if _silent_any(r) or _silent_any(e):
            continue
        num = np.sum(r ** 2, axis=1)
        den = np.sum((e - r) ** 2, axis=1)
        with np.errstate(divide="ignore"):
            out[:, t] = np.where(den == 0, np.inf, 10 * np.log10(num / np.where(den == 0, 1, den)))
    return out


def _museval(est: np.ndarray, ref: np.ndarray, window: int, hop: int) -> np.ndarray:
    m = museval_metrics()
    sdr, _isr, _sir, _sar, _perm = m.bss_eval(ref[:, :, None], est[:, :, None], window=window, hop=hop,
                                              compute_permutation=False, framewise_filters=False,
                                              bsseval_sources_version=False)
    return np.asarray(sdr, dtype=np.float64)


def _fast(est: np.ndarray, ref: np.ndarray, window: int, hop: int) -> np.ndarray:
    try:
        import fast_bss_eval
    except ImportError:
        raise ConfigError("fast_bss_eval is not installed (pip install 'latentmix[eval]')") from None
    fr = frames(ref.shape[1], window, hop)
    out = np.full((ref.shape[0], len(fr)), np.nan)
    keep = [t for t, (a, b) in enumerate(fr) if not (_silent_any(ref[:, a:b]) or _silent_any(est[:, a:b]))]
    if keep:
        r = np.stack([ref[:, fr[t][0]:fr[t][1]] for t in keep])
        e = np.stack([est[:, fr[t][0]:fr[t][1]] for t in keep])
        # the torch path: fast_bss_eval's numpy path breaks on numpy>=2 (np.linalg.solve broadcasting change)
        sdr, _sir, _sar = fast_bss_eval.bss_eval_sources(torch.from_numpy(r), torch.from_numpy(e),
                                                         compute_permutation=False)
        out[:, keep] = sdr.numpy().T
    return out


def bss_sdr(est, ref, window: int = 44100, hop: int = 44100, backend: str = "v4") -> np.ndarray:
    """Framewise BSS-eval SDR of est (S, T) against ref (S, T) -> (S, frames) float64 dB.

    The estimate is cut or zero-padded to the reference length (as museval.evaluate does). A frame where any
    reference or any estimate is all zeros is NaN for every source (museval's rule).
    """
    ref, est = _np(ref), _np(est)
    if ref.shape[0] != est.shape[0]:
        raise ValueError(f"{est.shape[0]} estimates for {ref.shape[0]} references")
    est = _pad_or_truncate(ref, est)
    if backend == "v4":
        return _v4(est, ref, window, hop)
    if backend == "museval":
        return _museval(est, ref, window, hop)
    if backend == "fast_bss_eval":
        return _fast(est, ref, window, hop)
    raise ConfigError(f"unknown BSS-eval backend '{backend}' (known: {', '.join(BACKENDS)})")


def median_sdr(framewise: np.ndarray) -> np.ndarray:
    """Median over frames ignoring NaN (museval's aggregation): (S, frames) -> (S,), NaN if no finite frame."""
    framewise = np.asarray(framewise, dtype=np.float64)
    out = np.full(framewise.shape[0], np.nan)
    for i, row in enumerate(framewise):
        row = row[~np.isnan(row)]
        if row.size:
            out[i] = np.median(row)
    return out
