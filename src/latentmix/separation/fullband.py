"""Stems back in the input's format: the model runs at its own rate on each channel; this module brings its stems
back to the input's rate, channel layout and length, and hands out what the model could not see.

A model at 22050 Hz hears nothing above 11025 Hz, so upsampled stems are empty there. `restore` puts the
residual `mix - sum(upsampled stems)` (the band above the model's, plus resampling and any model mismatch) into
the stems in proportion to each stem's energy near the top of the model's band, frame by frame: the weights sum
to one at every sample, so the stems sum to the mixture (to float precision). Resampling is soxr's (band-limited)
through `audio.resample`.
"""
from __future__ import annotations

import numpy as np
import torch

from ..audio import layout, stft, to_rate

TOP_BAND = (0.5, 0.95)     # the part of the model's band (fractions of its Nyquist) whose energy shares decide
HOP = 256                  # STFT hop (model samples) of the shares


def top_band_shares(stems: torch.Tensor, sr: int, n_fft: int = 1024, hop: int = HOP,
                    band=TOP_BAND) -> np.ndarray:
    """stems (C, S, T) at the model's rate `sr` -> weights (C, S, frames) summing to 1 over S: each stem's share
    of the energy in `band` (fractions of Nyquist) per centred STFT frame f (at time f * hop / sr); equal shares
    where every stem is silent there."""
    spec = stft(stems.float(), n_fft, hop).abs().pow(2)                      # (C, S, F, N)
    freqs = torch.linspace(0, 1, spec.shape[-2])
    sel = (freqs >= band[0]) & (freqs <= band[1])
    e = spec[..., sel, :].sum(-2).double().numpy()                             # (C, S, N)
    floor = 1e-12 * max(float(e.mean()), 1e-30)
    e = e + floor
    return e / e.sum(1, keepdims=True)


def restore(stems: torch.Tensor, mix: torch.Tensor, model_sr: int, sr: int, distribute: bool = True) -> torch.Tensor:
    """stems (C, S, Tm) at model_sr and the mixture (C, T) at `sr` -> stems (C, S, T) at `sr`.

    Each stem is resampled to `sr` and fitted to T samples; with `distribute`, the residual `mix - sum(stems)` is
    added back by `top_band_shares` (interpolated linearly from frame times to sample times), so the stems sum to
    `mix`."""
    C, S, Tm = stems.shape
    T = mix.shape[-1]
    up = to_rate(stems.reshape(C * S, Tm).cpu().numpy(), model_sr, sr, T).reshape(C, S, T)
    if not distribute:
        return torch.from_numpy(up)
    x = mix.cpu().numpy().astype(np.float64)
    residual = x - up.astype(np.float64).sum(1)                                # (C, T)
    w = top_band_shares(stems.cpu(), model_sr)                                 # (C, S, N)
    frame_t = np.arange(w.shape[-1]) * HOP / model_sr
    sample_t = np.arange(T) / sr
    out = up.astype(np.float64)
    for c in range(C):
        for s in range(S):
            out[c, s] += np.interp(sample_t, frame_t, w[c, s]) * residual[c]
    return torch.from_numpy(out.astype(np.float32))


def separate_audio(method, wav: torch.Tensor, sr: int, sr_out: int | None = None, mono: bool = False,
                   segment_seconds: float | None = None, overlap: float = 0.25, batch_size: int = 4,
                   progress: bool = False, refs: torch.Tensor | None = None, shifts: int = 0):
    """Separate wav (channels, T) at `sr` with a method object -> (stems (C, S, T') at sr_out, the mixture (C, T') at
    sr_out, a note or None); T' = round(T * sr_out / sr), C from `layout` (1 or 2).

    Each channel is separated on its own at the method's `sample_rate` (separation.apply.separate_long); when
    anything was resampled, `restore` shares the rest out so the stems sum to the mixture. `refs` (1, S, Tm): the
    reference stems at the method's rate for methods that need them (the mixture is then taken as it is).
    `shifts`: test-time augmentation (separation.apply.separate_long).
    """
    from .apply import separate_long
    model_sr = int(getattr(method, "sample_rate", 22050))
    wav, note = layout(wav, mono)
    sr_out = int(sr_out or sr)
    T_out = int(round(wav.shape[-1] * sr_out / sr))
    mix_out = torch.from_numpy(to_rate(wav.numpy(), sr, sr_out, T_out))
    Tm = int(round(wav.shape[-1] * model_sr / sr))
    x = torch.from_numpy(to_rate(wav.numpy(), sr, model_sr, Tm))[:, None]                   # (C, 1, Tm)
    dev = getattr(method, "device", "cpu")
    est = separate_long(method, x.to(dev), None if refs is None else refs.to(dev), segment_seconds, overlap,
                        model_sr, batch_size, progress=progress, shifts=shifts).cpu()
    resampled = sr != model_sr or sr_out != model_sr
    return restore(est, mix_out, model_sr, sr_out, distribute=resampled and refs is None), mix_out, note
