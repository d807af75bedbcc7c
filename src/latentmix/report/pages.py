"""One function per report kind: build the page in `out` and return the path of its index.html; and
`detect_kind`, which tells the kind of an input path (what `latentmix report INPUT` does without --kind).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from .codec import codec_report
from .generation import generation_report
from .html import Page
from .separation import attach_references, evaluation_report, find_songs, folder_report
from .training import training_report

KINDS = ("separation", "evaluation", "codec", "generation", "training")


def read_json(path) -> dict:
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(d, dict):
        raise InputError(f"{path}: expected a JSON object")
    return d


def json_kind(d: dict) -> str:
    """The report kind of a JSON record."""
    if "summaries" in d and "metric_names" in d:
        return "codec"
    if "prompt" in d or "outputs" in d or d.get("kind") == "generation":
        return "generation"
    if "results" in d or "evaluation" in d:
        return "evaluation"
    raise InputError("unknown JSON record (expected an evaluation, codec or generation record)")


def detect_kind(path) -> str:
    p = Path(path)
    if p.is_dir():
        return "training" if (p / "metrics.jsonl").is_file() else "separation"
    if p.name.endswith(".jsonl"):
        return "training"
    if p.suffix.lower() == ".json":
        return json_kind(read_json(p))
    raise InputError(f"{p}: cannot tell the report kind (a separated folder, a run folder, or a JSON record)")


def separation_page(sep_dir, out, reference=None, scores: dict | None = None, metric: str = "SI-SDR dB",
                    evaluation: dict | None = None, title: str | None = None, mixtures: dict | None = None) -> Path:
    """scores: {song: {stem: value, 'All': value}} (metrics.protocols.score_folders' per_track); mixtures:
    {song: mixture file} for songs whose folder holds no mixture file."""
    songs = find_songs(sep_dir)
    for s in songs:
        if s.mixture is None and (mixtures or {}).get(s.name):
            s.mixture = Path(mixtures[s.name])
    if reference is not None:
        attach_references(songs, reference)
    for s in songs:
        s.scores = dict((scores or {}).get(s.name, {}))
    page = Page(out, title or f"Separation: {Path(sep_dir).name}", f"{len(songs)} song(s) from {sep_dir}")
    if evaluation is not None:
        evaluation_report(page, evaluation)
    folder_report(page, songs, metric)
    return page.write()


def evaluation_page(record, out, title: str | None = None) -> Path:
    d = read_json(record) if isinstance(record, (str, Path)) else record
    page = Page(out, title or "Separation evaluation", str(record) if isinstance(record, (str, Path)) else None)
    evaluation_report(page, d)
    return page.write()


def codec_page(ev, out, audio: dict | None = None, title: str | None = None) -> Path:
    d = read_json(ev) if isinstance(ev, (str, Path)) else ev
    page = Page(out, title or "Codec round trip")
    codec_report(page, d, audio)
    return page.write()


def generation_page(rec, out, title: str | None = None) -> Path:
    base = Path(rec).parent if isinstance(rec, (str, Path)) else Path(".")
    d = read_json(rec) if isinstance(rec, (str, Path)) else rec
    page = Page(out, title or "Generation")
    generation_report(page, d, base)
    return page.write()


def training_page(run_dir, out, title: str | None = None) -> Path:
    page = Page(out, title or f"Training run: {Path(run_dir).resolve().name}", str(run_dir))
    training_report(page, run_dir)
    return page.write()
