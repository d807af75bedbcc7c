"""Run + score Bayesian separation on lass-protocol chunks: every variant's rows (each non-oracle selection, with
and without the mask, and the oracle best-of-N labelled as such) beside the baselines on the same chunks (the
shipped supervised separator, the IRM and the through-codec ceilings), with seconds per chunk (wall and CPU).

Chunks: per track (a pair set's pair or any MSDM track holding bass and drums), the lass protocol's consecutive
65,536-sample chunks where neither stem is silent; `chunks_per_track` of them, chosen at random with `seed`
(in order with seed None); the first `max_tracks` tracks. Each chunk is scored alone with the protocol
(museval v4 SDR; ONE 44,100-sample frame per chunk, as the protocol's note says).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..metrics.protocols import get_protocol, is_silent
from .records import Record


@dataclass
class Chunk(Record):
    track: str
    start: int
    end: int


@dataclass
class BayesRow(Record):
    """One table row: a method (or a selection of one) over all chunks. scores: per chunk {bass, drums}."""
    name: str
    kind: str
    detail: str
    summary: dict
    variant: str = ""
    own: bool = False                # the variant's own selection (its settings' select + mask)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    scores: list = field(default_factory=list)

    def per_chunk(self, n: int) -> tuple[float, float]:
        return self.wall_s / max(n, 1), self.cpu_s / max(n, 1)


@dataclass
class BayesEvaluation(Record):
    data: str
    split: str | None
    protocol: str
    metric: str
    threads: int
    chunks: list[Chunk]
    rows: dict[str, BayesRow]


def pick_chunks(tracks, protocol, chunks_per_track: int = 1, seed: int | None = 0):
    """[(track, start, refs (2, chunk))] of non-silent lass chunks, `chunks_per_track` per track."""
    from ..data.datasets import load_track
    rng = np.random.default_rng(seed) if seed is not None else None
    out = []
    for t in tracks:
        refs = load_track(t, protocol.sample_rate, stems=protocol.stems)
        ok = [(a, b) for a, b in protocol.windows(refs.shape[-1])
              if not any(is_silent(x, protocol.threshold) for x in refs[:, a:b])]
        if rng is not None and ok:
            ok = [ok[i] for i in sorted(rng.choice(len(ok), min(len(ok), chunks_per_track), replace=False))]
        for a, b in ok[:chunks_per_track]:
            out.append((Path(t), a, refs[:, a:b].clone()))
    return out


def _score(protocol, refs, est, mix) -> dict | None:
    recs = protocol.evaluate_track(refs, est, mix)
    return {s: recs[0][s] for s in protocol.stems} if recs else None


class _Row:
    def __init__(self, name, kind, detail, variant="", own=False):
        self.row = BayesRow(name=name, kind=kind, detail=detail, summary={}, variant=variant, own=own)

    def add(self, protocol, refs, est, mix):
        sc = _score(protocol, refs, est, mix)
        self.row.scores.append(sc)

    def finish(self, protocol):
        recs = [s for s in self.row.scores if s is not None]
        self.row.summary = protocol.aggregate(recs)
        return self.row


def _add(r, P, refs, mixes, g, out, wall, cpu) -> None:
    """Score the estimates out (len(g), 2, T) of chunks g into row r and charge it the time."""
    r.row.wall_s += wall
    r.row.cpu_s += cpu
    for i, k in enumerate(g):
        r.add(P, refs[k], out[i], mixes[k])


def _timed(fn, *args):
    """(fn(*args), wall seconds, CPU seconds of this process)."""
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - w, time.process_time() - c


def evaluate_bayesian(variants, data, split: str | None = "test", *, chunks_per_track: int = 1,
                      max_tracks: int | None = None, seed: int | None = 0, baselines: bool = True,
                      batch: int = 8, progress: bool = False, all_selections: bool = True) -> BayesEvaluation:
    """variants: [(label, BayesianSeparator, oracle: bool)]. Each variant runs once per batch of chunks; its rows
    are `label` + each non-oracle selection (with and without the mask; only the method's own with
    all_selections=False) and, when `oracle`, the oracle best-of-N (per stem, by the truth), all from the same
    run."""
    from ..data.datasets import list_tracks
    from ..separation.bayesian import select as sel
    P = get_protocol("lass")
    tracks = list_tracks(data, split)[:max_tracks]
    chunks = pick_chunks(tracks, P, chunks_per_track, seed)
    if not chunks:
        raise InputError(f"{data}: no non-silent bass + drums chunks to evaluate")
    refs = torch.stack([c[2] for c in chunks])                                 # (n, 2, T)
    mixes = P.mix_gain * refs.sum(1)                                          # (n, T)
    rows: dict[str, _Row] = {}

    def row(name, kind, detail, variant="", own=False):
        return rows.setdefault(name, _Row(name, kind, detail, variant, own))

    if baselines:
        _baselines(row, P, refs, mixes)
    groups = [range(i, min(len(chunks), i + batch)) for i in range(0, len(chunks), batch)]
    choices = [(h, m) for h in sel.SELECTIONS for m in ((True,) if h == "mean" else (False, True))]
    for label, sep, oracle in variants:
        for g in groups:
            if progress:
                print(f"  {label}: chunks {g.start + 1}-{g.stop} of {len(chunks)}", file=sys.stderr, flush=True)
            mix = mixes[g.start:g.stop][:, None]
            (est, score), wall, cpu = _timed(sep.run, mix)
            own = (sep.cfg["select"], bool(sep.cfg["mask"]))
            for how, use_mask in (choices if all_selections else [own]):
                out, w2, c2 = _timed(sep.choose, est, score, mix, how, use_mask)
                _add(row(f"{label} | {how}{' + mask' if use_mask else ''}", "bayesian", sep.describe(), label,
                         (how, use_mask) == own), P, refs, mixes, g, out, wall + w2, cpu + c2)
            if oracle:
                best = sel.gather(est, sel.by_oracle(est, refs[g.start:g.stop]))
                for use_mask in (False, True):
                    out = sel.mask(best, mix[:, 0]) if use_mask else best
                    _add(row(f"{label} | ORACLE best-of-{est.shape[1]}{' + mask' if use_mask else ''}",
                             "oracle-selection", sep.describe(), label), P, refs, mixes, g, out, wall, cpu)
    return BayesEvaluation(data=str(data), split=split, protocol=P.name, metric=P.metric,
                           threads=torch.get_num_threads(),
                           chunks=[Chunk(track=c[0].name, start=int(c[1]), end=int(c[1] + refs.shape[-1]))
                                   for c in chunks],
                           rows={n: r.finish(P) for n, r in rows.items()})


def _baselines(row, P, refs, mixes) -> None:
    """The supervised separator (fed the plain sum b + d it was trained on), the IRM and the codec ceilings."""
    from ..codec.model import Codec
    from ..pretrained.registry import resolve_model
    from ..separation.oracle import irm
    from ..separation.supervised import SupervisedSeparator
    n = refs.shape[0]
    total = mixes / P.mix_gain                                                 # b + d
    try:
        sup = SupervisedSeparator()
        idx = [list(sup.stems).index(s) for s in P.stems]
        out, wall, cpu = _timed(sup.separate, total[:, None])
        out = out[:, idx]
        r = row("supervised separator (shipped)", "supervised", f"`{sup.path}` on b + d")
        r.row.wall_s, r.row.cpu_s = wall, cpu
        for k in range(n):
            r.add(P, refs[k], out[k], mixes[k])
    except Exception as e:                                                     # a build without the shipped file
        print(f"supervised separator skipped: {e}", file=sys.stderr)
    out = irm(total[:, None], refs)
    r = row("IRM (oracle mask)", "oracle", "ideal ratio mask from the true stems, n_fft 2048")
    for k in range(n):
        r.add(P, refs[k], out[k], mixes[k])
    codec = Codec.load(resolve_model(None, "codec"))
    for levels in (4, codec.num_codebooks):
        with torch.inference_mode():
            x = refs.reshape(-1, 1, refs.shape[-1])
            y = codec.decode(codec.encode(x, levels))[..., :refs.shape[-1]].view_as(refs)
        r = row(f"codec ceiling, {levels} levels", "ceiling", f"true stems through the shipped codec at {levels} "
                f"levels ({codec.bitrate(levels) / 1000:.1f} kbps)")
        for k in range(n):
            r.add(P, refs[k], y[k], mixes[k])
