"""Separate and score: run separation methods over the tracks of a dataset split and score every track with a
named protocol (latentmix.metrics.protocols: msdm, lass). `latentmix eval msdm`, the demo and the separation
benchmarks all go through `evaluate_separation`; its records are what they render.

A method is anything with the interface of latentmix.separation.registry's methods (`name`, `stems`,
`needs_references`, `segment_seconds`, `separate(mix (n, 1, T), refs (n, S, T) | None) -> (n, S, T)`): a
supervised separator, the IRM oracle, a peer wrapped in SupervisedSeparator. `Candidate` runs one the way
`latentmix separate` does (separation.apply.separate_long: the method's own segment, overlap 0.25, 4 segments
per call, under inference_mode) or on the whole track at once (`whole=True`). `CodecCeiling` is a candidate that
puts each true stem through a codec: the best a separator that outputs that codec's codes could do.

Per track: the stems are read with latentmix.data.datasets.load_track (the protocol's stems, at its sample
rate), the mixture is the protocol's (`make_mixture`, float32; msdm's includes other.wav where a track has one,
unscored), every candidate separates it (timed alone, CUDA
synchronised) and `protocol.evaluate_track` scores the estimate of the protocol's stems. Records: one
`WindowRecord` per scored window, one `TrackRecord` per track (its windows and their aggregate), one
`SeparationResult` per candidate (every track, the aggregate over all windows of all tracks: the table row).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import SAMPLE_RATE, STEMS
from ..errors import ConfigError, InputError
from ..metrics.protocols import get_protocol, stem_file
from .records import Record

OVERLAP = 0.25
BATCH_SEGMENTS = 4


def parameter_count(model) -> int | None:
    """Every parameter of a model (a latent separator's count includes its frozen codec); None without one."""
    return None if model is None else sum(p.numel() for p in model.parameters())


class Candidate:
    """A separation method as the evaluation runs it: run(mix (1, 1, T), refs (1, S, T)) -> estimates (S, T).

    kind: a free label carried into the records (model, shipped, peer, oracle, ...). path: the model file,
    for the description. segment_seconds / overlap / batch_segments: separate_long's (None: the method's own
    segment). whole: call method.separate on the whole track (no segments), as the IRM-resolution study does.
    shifts: separate_long's test-time augmentation (N shifted separations averaged).
    """

    def __init__(self, method, name: str | None = None, *, kind: str = "model", path=None,
                 segment_seconds: float | None = None, overlap: float = OVERLAP, batch_segments: int = BATCH_SEGMENTS,
                 whole: bool = False, shifts: int = 0):
        self.method = method
        self.shifts = int(shifts)
        self.name = str(name or method.name)
        self.kind, self.path = kind, None if path is None else str(path)
        self.stems = tuple(method.stems)
        self.needs_references = bool(getattr(method, "needs_references", False))
        self.segment_seconds, self.overlap, self.batch_segments, self.whole = \
            segment_seconds, overlap, batch_segments, whole
        self.model = getattr(method, "model", None)
        self.params = parameter_count(self.model)

    @property
    def detail(self) -> str:
        """One line: how this candidate runs (printed under the benchmark tables)."""
        m = self.method
        if self.kind == "oracle" and hasattr(m, "n_fft"):
            return f"method `{m.name}` (n_fft {m.n_fft}, hop {m.hop}, power {m.power:g})"
        if self.whole:
            return f"`{self.path or m.name}` (whole track in one call)"
        cfg = getattr(self.model, "config", {}) if self.model is not None else {}
        seg = self.segment_seconds or getattr(m, "segment_seconds", None)
        seg = f"{seg:g} s" if seg else "10 s (default)"
        tta = f", --shifts {self.shifts}" if self.shifts else ""
        return (f"`{self.path or m.name}` (arch {cfg.get('arch', '?')}, segment {seg}, overlap {self.overlap:g}, "
                f"{self.batch_segments} segments per call{tta})")

    def run(self, mix: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
        from ..separation.apply import separate_long
        if self.whole:
            with torch.inference_mode():
                return self.method.separate(mix, refs if self.needs_references else None)[0]
        return separate_long(self.method, mix, refs, self.segment_seconds, self.overlap, SAMPLE_RATE,
                             self.batch_segments, shifts=self.shifts)[0]


def oracle(protocol="msdm", device: str = "cpu", name: str | None = None, whole: bool = False, **opts) -> Candidate:
    """The IRM oracle for `protocol`'s stems as a candidate (opts: n_fft, hop, power, segment_seconds)."""
    from ..separation.registry import get_method
    p = get_protocol(protocol) if isinstance(protocol, str) else protocol
    return Candidate(get_method("oracle-irm", stems=p.stems, device=device, **opts), name, kind="oracle", whole=whole)


class CodecCeiling:
    """Each true stem encoded and decoded by a codec (chunked, receptive-field margins), scored as if it were an
    estimate: the ceiling of a separator that outputs that codec's codes. run(mix, refs (1, S, T)) -> (S, T).

    num_codebooks: the bitrate (None: all levels); a continuous (VAE) codec goes through its latents."""

    needs_references = True

    def __init__(self, codec, name: str = "codec ceiling", *, path=None, stems=STEMS, num_codebooks: int | None = None,
                 chunk_frames: int = 2048, kind: str = "codec"):
        where = str(path) if path is not None else "the codec"
        if codec.sample_rate != SAMPLE_RATE or codec.channels != 1:
            raise ConfigError(f"{where}: the codec ceiling needs a mono {SAMPLE_RATE} Hz codec, got "
                              f"{codec.channels} channel(s) at {codec.sample_rate} Hz")
        self.codec, self.name, self.kind, self.path = codec, name, kind, None if path is None else str(path)
        self.stems, self.num_codebooks, self.chunk_frames = tuple(stems), num_codebooks, int(chunk_frames)
        self.params = parameter_count(codec)
        n = num_codebooks or (None if codec.is_continuous else codec.num_codebooks)
        rate = "continuous latents (VAE)" if codec.is_continuous else \
            f"{n} codebooks x {codec.codebook_size}, {codec.bitrate(n) / 1000:.2f} kbps"
        self.detail = f"`{self.path}` ({rate}, per stem encode + decode)"

    def run(self, mix: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
        x = refs[0][:, None]                                                   # (S, 1, T)
        T = x.shape[-1]
        c = self.codec
        with torch.inference_mode():
            if c.is_continuous:
                y = c.decode_latents(c.encode_latents(x))
            else:
                y = c.decode_chunked(c.encode_chunked(x, self.num_codebooks, self.chunk_frames), self.chunk_frames)
        return y[:, 0, :T]


# ------------------------------------------------------------------ records
@dataclass
class WindowRecord(Record):
    """One scored window (msdm) or chunk (lass) of one track: its samples, the score of every stem, and the
    protocol's extras (msdm: the stems silent in the window; lass: the museval frames scored)."""
    track: str
    start: int
    end: int
    scores: dict[str, float]
    silent: list[str] | None = None
    frames: int | None = None

    @classmethod
    def from_protocol(cls, track: str, rec: dict, stems) -> "WindowRecord":
        return cls(track=track, start=int(rec["start"]), end=int(rec["end"]),
                   scores={s: float(rec[s]) for s in stems}, silent=rec.get("silent"), frames=rec.get("frames"))

    def as_protocol(self) -> dict:
        """The protocol's record dict (what Protocol.aggregate reads)."""
        out = {"start": self.start, "end": self.end, **self.scores}
        if self.silent is not None:
            out["silent"] = list(self.silent)
        if self.frames is not None:
            out["frames"] = self.frames
        return out


@dataclass
class TrackRecord(Record):
    """One track separated by one candidate: audio length, separation time, the aggregate row of its windows
    ({stem: mean, 'All': mean of the stem means, 'windows': n}) and the windows."""
    track: str
    samples: int
    compute_s: float
    summary: dict
    windows: list[WindowRecord] = field(default_factory=list)


@dataclass
class SeparationResult(Record):
    """One candidate over the whole split: `summary` is the protocol's aggregate over every window of every track
    (the table row); `tracks` the per-track records; compute_s the separation time (runs only)."""
    name: str
    kind: str
    path: str | None
    params: int | None
    detail: str
    protocol: str
    protocol_version: int
    metric: str
    stems: list[str]
    summary: dict
    audio_seconds: float
    compute_s: float
    tracks: list[TrackRecord] = field(default_factory=list)

    @property
    def per_track(self) -> dict:
        return {t.track: t.summary for t in self.tracks}

    @property
    def sec_per_sec(self) -> float:
        return self.compute_s / max(self.audio_seconds, 1e-9)

    @property
    def xrt(self) -> float:
        return self.audio_seconds / max(self.compute_s, 1e-9)

    def row(self) -> dict:
        """The flat row of the benchmark tables and their JSON: the summary, kind, params, detail, compute_s,
        sec_per_sec, xrt and per_track."""
        return {**self.summary, "kind": self.kind, "params": self.params, "detail": self.detail,
                "compute_s": self.compute_s, "sec_per_sec": self.sec_per_sec, "xrt": self.xrt,
                "per_track": self.per_track}


@dataclass
class SeparationEvaluation(Record):
    """Every candidate on one split with one protocol: results in candidate order."""
    protocol: str
    protocol_version: int
    metric: str
    stems: list[str]
    data: str | None
    split: str | None
    tracks: list[str]
    audio_seconds: float
    device: str
    results: dict[str, SeparationResult]

    def table(self) -> dict:
        """{name: summary row}, the input of metrics.protocols.format_table."""
        return {n: r.summary for n, r in self.results.items()}


# ------------------------------------------------------------------ the loop
def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _stem_index(c, protocol) -> list[int] | None:
    """Indices of the protocol's stems in the candidate's output (None: the same stems in the same order)."""
    stems = tuple(protocol.stems)
    if tuple(c.stems) == stems:
        return None
    if c.needs_references or not set(stems) <= set(c.stems):
        raise ConfigError(f"method '{c.name}' gives stems {', '.join(c.stems)}; the {protocol.name} protocol needs "
                          f"{', '.join(stems)}")
    return [list(c.stems).index(s) for s in stems]


def evaluate_separation(candidates, data=None, split: str | None = "test", protocol="msdm", *, tracks=None,
                        max_tracks: int | None = None, device: str = "cpu", warmup_seconds: float = 0.0,
                        progress: bool = False, on_estimate=None) -> SeparationEvaluation:
    """Separate every track with every candidate and score it with `protocol` (a name or a Protocol).

    candidates: Candidate / CodecCeiling objects, or bare methods (wrapped in Candidate). The tracks are
    `tracks` (track folders) or data.datasets.list_tracks(data, split), the first `max_tracks` of them.
    warmup_seconds: before the first track, each candidate runs once, untimed, on that many seconds of it.
    on_estimate(name, track_dir, est (S, T) CPU float32) sees every estimate (e.g. to write the stems).
    """
    from ..data.datasets import list_tracks, load_track
    from tqdm import tqdm
    P = get_protocol(protocol) if isinstance(protocol, str) else protocol
    cands = [c if hasattr(c, "run") else Candidate(c) for c in candidates]
    names = [c.name for c in cands]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"two candidates are called '{dup[0]}'")
    select = {c.name: _stem_index(c, P) for c in cands}
    if tracks is None:
        if data is None:
            raise ConfigError("evaluate_separation needs `data` (a dataset root) or `tracks`")
        tracks = list_tracks(data, split)
    tracks = [Path(t) for t in tracks][:max_tracks]
    if getattr(P, "max_tracks", None):
        tracks = tracks[: P.max_tracks]
    if not tracks:
        raise InputError(f"{data}: no tracks to evaluate")

    per = {c.name: [] for c in cands}
    records = {c.name: [] for c in cands}
    compute = {c.name: 0.0 for c in cands}
    audio_s, warmed = 0.0, warmup_seconds <= 0
    for track in tqdm(tracks, desc="separation", unit="track", disable=None if progress else True, file=sys.stderr,
                      dynamic_ncols=True):
        extra = tuple(e for e in P.mix_extra if stem_file(track, e) is not None)   # an other.wav file only: a
        refs = load_track(track, P.sample_rate, stems=tuple(P.stems) + extra)     # Slakh copy's 4-stem mix stays
        refs, extra = refs[:len(P.stems)], refs[len(P.stems):]                 # (S, T), (E, T)
        mix = P.make_mixture(refs, extra).float()                              # (T,)
        mix_d, refs_d = mix[None, None].to(device), refs[None].to(device)
        if not warmed:                                                         # untimed first call per candidate
            n = min(refs.shape[-1], int(warmup_seconds * P.sample_rate))
            for c in cands:
                c.run(mix_d[..., :n], refs_d[..., :n])
            warmed = True
        for c in cands:
            _sync(device)
            t0 = time.perf_counter()
            est = c.run(mix_d, refs_d)
            _sync(device)
            dt = time.perf_counter() - t0
            compute[c.name] += dt
            est = est.float().cpu()
            if select[c.name] is not None:
                est = est[select[c.name]]
            if on_estimate is not None:
                on_estimate(c.name, track, est)
            recs = P.evaluate_track(refs, est, mix)
            records[c.name].extend(recs)
            per[c.name].append(TrackRecord(track=track.name, samples=int(refs.shape[-1]), compute_s=dt,
                                           summary=P.aggregate(recs),
                                           windows=[WindowRecord.from_protocol(track.name, r, P.stems) for r in recs]))
        audio_s += refs.shape[-1] / P.sample_rate
    results = {}
    for c in cands:
        results[c.name] = SeparationResult(
            name=c.name, kind=c.kind, path=c.path, params=c.params, detail=c.detail, protocol=P.name,
            protocol_version=P.version, metric=P.metric, stems=list(P.stems), summary=P.aggregate(records[c.name]),
            audio_seconds=audio_s, compute_s=compute[c.name], tracks=per[c.name])
    return SeparationEvaluation(protocol=P.name, protocol_version=P.version, metric=P.metric, stems=list(P.stems),
                                data=None if data is None else str(data), split=split,
                                tracks=[t.name for t in tracks], audio_seconds=audio_s, device=str(device),
                                results=results)
