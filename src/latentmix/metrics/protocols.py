"""The named, versioned evaluation protocols (`msdm`, `lass`) and scoring of estimate folders against references.

A protocol turns one track's references (S, T), estimates (S, T) and mixture (T,) into per-window records;
`aggregate` turns records into the table row {stem: mean, "All": mean of stems, "windows": n}.

msdm v1 (MSDM's evaluation/evaluate_separation.py, seeds_spec §6d), reproduced exactly:
  22050 Hz mono; mixture = sum of the four stems (plus an other.wav file where a track folder has one: heard,
  never scored, so a 5-stem model's tables stay comparable; MSDM's data and a Slakh copy have none);
  windows of 4 s (88,200 samples) with a 2 s hop,
  n = ceil((T - 2 s) / 2 s) windows starting at 0, 2 s, 4 s, ... (the last may be shorter than 4 s; a 10 s
  track gives 4 windows starting at 0, 2, 4, 6 s); a stem is silent in a window if ||s||_2 / len(s) < 1.5e-5
  (the L2 norm divided by the number of samples, not the RMS); windows with <= 1 non-silent stem are skipped;
  in a kept window SI-SNRi is computed for EVERY stem, silent ones included, as MSDM does
  (= si_snr_msdm(est, ref) - si_snr_msdm(mix, ref), eps 1e-8, no zero-mean, eps inside the projection);
  per stem: mean over all kept windows of all tracks; "All" = mean of the four stem means. Records also list
  which stems were silent; `aggregate` adds the non-silent figure beside MSDM's: per stem the mean over the
  kept windows where that stem is not silent ("<stem> (non-silent)", "All (non-silent)"). A silent stem with an
  exact-zero estimate earns a huge SI-SNRi under MSDM's rule, which inflates the exact figure (the IRM's most).
lass v1 (LQ-VAE's script/bayesian_test.py and seed 003, seeds_spec §2d/§4): stems bass, drums;
  mixture 0.5 (s1 + s2); consecutive non-overlapping chunks of 65,536 samples (about 2.97 s) from 0, trailing
  remainder dropped; a chunk is skipped when either source is silent (same ||s||_2 / n < 1.5e-5 test as the
  script) or when an SDR comes out NaN; per chunk and stem: museval v4 SDR (window = hop = 44,100) and the
  median over its frames; per stem: mean over chunks. NOTE for every figure: museval frames a 65,536-sample
  chunk into ONE 44,100-sample frame (floor((65536 - 44100 + 44100) / 44100) = 1), so only the first 2 s of
  each 3 s chunk are scored and the "median over frames" is that single frame (seeds_spec's "2 frames"
  overstates it). Seed 003 scores one chunk per track on its first 30 test mixtures and picks chunks at random;
  here chunks are taken in order, and `chunks_per_track` / `max_tracks` limit them deterministically.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import SAMPLE_RATE, STEMS
from ..audio import AUDIO_EXTENSIONS, read_audio
from ..errors import ConfigError, InputError
from .bss import bss_sdr, median_sdr
from .sisdr import si_snr_msdm

SILENCE_THRESHOLD = 1.5e-5
NON_SILENT = "(non-silent)"


def is_silent(x: torch.Tensor, threshold: float = SILENCE_THRESHOLD) -> bool:
    """MSDM's is_silent for one (time,) or (1, time) signal: ||x||_2 / n_samples < threshold."""
    return bool(torch.linalg.vector_norm(x.double()) / x.shape[-1] < threshold)


@dataclass(frozen=True)
class Protocol:
    """Base of the protocols: name, version, stems, sample rate, and how the mixture is formed."""
    name: str
    version: int
    stems: tuple
    sample_rate: int = SAMPLE_RATE
    mix_gain: float = 1.0          # mixture = mix_gain * sum(stems)
    metric: str = ""
    mix_extra: tuple = ()          # stems that go into the mixture where a track has them but are not scored

    def make_mixture(self, refs: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """refs (S, T) and the `mix_extra` stems (E, T) -> mixture (T,) as the protocol defines it."""
        mix = self.mix_gain * refs.sum(0)
        if extra is not None and extra.numel() and bool(extra.any()):
            mix = mix + self.mix_gain * extra.to(mix.dtype).sum(0)
        return mix

    def evaluate_track(self, refs: torch.Tensor, est: torch.Tensor, mix: torch.Tensor | None = None) -> list[dict]:
        raise NotImplementedError

    def aggregate(self, records: list[dict]) -> dict:
        """Records of any number of tracks -> {stem: mean, 'All': mean of the stem means, 'windows': n}."""
        out: dict = {}
        for s in self.stems:
            vals = [r[s] for r in records]
            out[s] = float(np.mean(vals)) if vals else float("nan")
        out["All"] = float(np.mean([out[s] for s in self.stems])) if records else float("nan")
        out["windows"] = len(records)
        return out

    def _check(self, refs, est, mix):
        refs, est = torch.as_tensor(refs).double(), torch.as_tensor(est).double()
        if refs.ndim != 2 or est.ndim != 2 or refs.shape[0] != len(self.stems) or est.shape[0] != refs.shape[0]:
            raise ValueError(f"{self.name}: expected refs and est ({len(self.stems)}, time), "
                             f"got {tuple(refs.shape)} and {tuple(est.shape)}")
        mix = self.make_mixture(refs) if mix is None else torch.as_tensor(mix).double().reshape(-1)
        return refs, est, mix


@dataclass(frozen=True)
class MSDMProtocol(Protocol):
    window_s: float = 4.0
    hop_s: float = 2.0
    threshold: float = SILENCE_THRESHOLD
    eps: float = 1e-8
    filter_single_source: bool = True

    def windows(self, length: int) -> list[tuple[int, int]]:
        """(start, end) samples of every window, as MSDM: ceil((T - overlap) / step) windows, the last clipped."""
        chunk = int(self.window_s * self.sample_rate)
        overlap = int((self.window_s - self.hop_s) * self.sample_rate)
        step = chunk - overlap
        n = max(0, math.ceil((length - overlap) / step))
        return [(i * step, min(i * step + chunk, length)) for i in range(n)]

    def aggregate(self, records: list[dict]) -> dict:
        """MSDM's row plus the non-silent figure: '<stem> (non-silent)' averages only the windows where that
        stem is not silent; 'All (non-silent)' is the mean of those stem means."""
        out = super().aggregate(records)
        for s in self.stems:
            vals = [r[s] for r in records if s not in r.get("silent", ())]
            out[f"{s} {NON_SILENT}"] = float(np.mean(vals)) if vals else float("nan")
        means = [out[f"{s} {NON_SILENT}"] for s in self.stems]
        out[f"All {NON_SILENT}"] = float(np.nanmean(means)) if records and not np.isnan(means).all() \
            else float("nan")
        return out

    def evaluate_track(self, refs, est, mix=None) -> list[dict]:
        """refs, est (4, T), mix (T,) (default: sum of refs) -> one record per kept window:
        {'start', 'end', <stem>: SI-SNRi dB, ..., 'silent': [stems silent in that window]}."""
        refs, est, mix = self._check(refs, est, mix)
        T = refs.shape[1]
        est = est[:, :T] if est.shape[1] >= T else torch.nn.functional.pad(est, (0, T - est.shape[1]))
        records = []
        for a, b in self.windows(T):
            silent = [s for s, r in zip(self.stems, refs[:, a:b]) if is_silent(r, self.threshold)]
            if self.filter_single_source and len(self.stems) - len(silent) <= 1:
                continue
            r, e, m = refs[:, a:b], est[:, a:b], mix[a:b].expand(len(self.stems), -1)
            sisnri = si_snr_msdm(e, r, self.eps) - si_snr_msdm(m, r, self.eps)
            rec = {"start": a, "end": b, "silent": silent}
            rec.update({s: float(v) for s, v in zip(self.stems, sisnri)})
            records.append(rec)
        return records


@dataclass(frozen=True)
class LASSProtocol(Protocol):
    chunk: int = 65536
    window: int = 44100
    hop: int = 44100
    threshold: float = SILENCE_THRESHOLD
    chunks_per_track: int | None = None
    max_tracks: int | None = None
    backend: str = "v4"

    def windows(self, length: int) -> list[tuple[int, int]]:
        return [(i * self.chunk, (i + 1) * self.chunk) for i in range(length // self.chunk)]

    def evaluate_track(self, refs, est, mix=None) -> list[dict]:
        """refs, est (2, T) -> one record per scored chunk: {'start', 'end', <stem>: median SDR, 'frames': n}."""
        refs, est, _mix = self._check(refs, est, mix)
        T = refs.shape[1]
        est = est[:, :T] if est.shape[1] >= T else torch.nn.functional.pad(est, (0, T - est.shape[1]))
        records = []
        for a, b in self.windows(T):
            if self.chunks_per_track is not None and len(records) >= self.chunks_per_track:
                break
            r, e = refs[:, a:b], est[:, a:b]
            if any(is_silent(x, self.threshold) for x in r):
                continue
            fw = bss_sdr(e, r, self.window, self.hop, backend=self.backend)
            med = median_sdr(fw)
            if np.isnan(med).any():
                continue
            rec = {"start": a, "end": b, "frames": int(fw.shape[1])}
            rec.update({s: float(v) for s, v in zip(self.stems, med)})
            records.append(rec)
        return records


PROTOCOLS = {
    "msdm": MSDMProtocol(name="msdm", version=1, stems=STEMS, mix_gain=1.0,
                         metric="SI-SNRi dB (no zero-mean, MSDM)", mix_extra=("other",)),
    "lass": LASSProtocol(name="lass", version=1, stems=("bass", "drums"), mix_gain=0.5,
                         metric="museval v4 SDR dB (median over frames; 1 frame per 3 s chunk)"),
}


def get_protocol(name: str, **overrides) -> Protocol:
    """The protocol called `name` (optionally with fields replaced); ConfigError listing the known ones."""
    if name not in PROTOCOLS:
        raise ConfigError(f"unknown evaluation protocol '{name}' (known: {', '.join(sorted(PROTOCOLS))})")
    p = PROTOCOLS[name]
    if overrides:
        import dataclasses
        p = dataclasses.replace(p, **overrides)
    return p


# ------------------------------------------------------------------ folders

def stem_file(folder: Path, stem: str) -> Path | None:
    for ext in AUDIO_EXTENSIONS:
        f = folder / f"{stem}{ext}"
        if f.is_file():
            return f
    return None


def reference_tracks(reference_dir, stems) -> list[Path]:
    """Track folders under reference_dir (itself, or its sub-folders) holding at least one `<stem>.<ext>`."""
    root = Path(reference_dir)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    if any(stem_file(root, s) for s in stems):
        return [root]
    tracks = sorted(d for d in root.iterdir() if d.is_dir() and any(stem_file(d, s) for s in stems))
    if not tracks:
        raise InputError(f"{root}: no track folders with {'/'.join(stems)} stem files")
    return tracks


def load_stems(track_dir, stems, sr: int = SAMPLE_RATE, required: bool = False) -> torch.Tensor:
    """Read `<track>/<stem>.wav` for each stem -> (S, T) float32 at `sr`, mono.

    A missing stem is zeros (as MSDM) unless `required`, then InputError; all are cut to the shortest, which
    may be at most 1 % (or 10 ms) shorter than the longest: a stem much shorter than the others is an InputError
    naming it (it would cut every stem of the track to its length).
    """
    track_dir = Path(track_dir)
    wavs, files = {}, {}
    for s in stems:
        f = stem_file(track_dir, s)
        if f is None:
            if required:
                raise InputError(f"{track_dir / (s + '.wav')}: missing estimate for stem '{s}'")
            continue
        wavs[s], files[s] = read_audio(f, sr=sr)[0], f
    if not wavs:
        raise InputError(f"{track_dir}: no stem files ({', '.join(stems)})")
    T, longest = min(w.shape[-1] for w in wavs.values()), max(w.shape[-1] for w in wavs.values())
    if longest - T > max(0.01 * longest, 0.01 * sr):
        short = min(wavs, key=lambda k: wavs[k].shape[-1])
        raise InputError(f"{files[short]}: {T} samples, but other stems of this track have {longest} "
                         f"(at {sr} Hz); every stem must cover the whole track")
    return torch.stack([wavs[s][:T] if s in wavs else torch.zeros(T) for s in stems])


def score_folders(reference_dir, estimates_dir, protocol) -> dict:
    """Score `<estimates>/<track>/<stem>.wav` against `<reference>/<track>/<stem>.wav` with a protocol.

    reference_dir is one track folder or a folder of track folders (e.g. an MSDM split). Estimates are cut or
    zero-padded to the reference length. Returns {'protocol', 'version', 'metric', 'tracks', 'results':
    aggregate row, 'per_track': {track: aggregate row}}.
    """
    p = get_protocol(protocol) if isinstance(protocol, str) else protocol
    est_root = Path(estimates_dir)
    if not est_root.is_dir():
        raise InputError(f"{est_root}: no such folder")
    tracks = reference_tracks(reference_dir, p.stems)
    if getattr(p, "max_tracks", None):
        tracks = tracks[: p.max_tracks]
    single = len(tracks) == 1 and tracks[0] == Path(reference_dir)
    records, per_track = [], {}
    for t in tracks:
        refs = load_stems(t, tuple(p.stems) + tuple(p.mix_extra), p.sample_rate)
        refs, extra = refs[:len(p.stems)], refs[len(p.stems):]
        est_dir = est_root if single and stem_file(est_root, p.stems[0]) else est_root / t.name
        if not est_dir.is_dir():
            raise InputError(f"{est_dir}: missing estimates for track '{t.name}'")
        est = load_stems(est_dir, p.stems, p.sample_rate, required=True)
        recs = p.evaluate_track(refs, est, p.make_mixture(refs, extra))
        per_track[t.name] = p.aggregate(recs)
        records.extend(recs)
    return {"protocol": p.name, "version": p.version, "metric": p.metric, "tracks": len(tracks),
            "results": p.aggregate(records), "per_track": per_track}


def format_table(results: dict, stems=None, digits: int = 2) -> str:
    """Markdown table, one row per method: results = {method: {stem: value, 'All': value, 'windows': n}}.

    Rows that carry the non-silent figure ('<stem> (non-silent)', msdm) show each cell as "exact / non-silent"."""
    if not results:
        return "(no results)"
    first = next(iter(results.values()))
    stems = list(stems or [k for k in first if k not in ("All", "windows") and NON_SILENT not in k])
    cols = stems + ["All"] + (["windows"] if "windows" in first else [])
    both = any(f"All {NON_SILENT}" in row for row in results.values())
    head = "method (MSDM exact / non-silent stems)" if both else "method"
    lines = [f"| {head} | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for method, row in results.items():
        cells = []
        for c in cols:
            v = row.get(c, float("nan"))
            cell = str(v) if c == "windows" else f"{v:.{digits}f}"
            if both and c != "windows":
                cell += f" / {row.get(f'{c} {NON_SILENT}', float('nan')):.{digits}f}"
            cells.append(cell)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
