"""Separation pages: a folder of separated songs (players and spectrograms per stem, one colour scale per song,
the references and per-stem scores when given) and an evaluation record (the table, per-stem box plots over
windows, the bass-vs-drums scatter per method with the oracle ceilings beside every model).

Scores are never computed here: they come in as plain values (latentmix.evaluation / metrics.protocols output).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import STEMS
from ..errors import InputError
from . import plots
from .html import Page, fmt

AUDIO_EXT = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
MIX_NAMES = ("mixture", "mix")


@dataclass
class Song:
    """One separated song: its name, the mixture file (None: the sum of the stems is shown), the stem files,
    the reference stem files and the per-stem scores (both optional)."""
    name: str
    stems: dict[str, Path]
    mixture: Path | None = None
    references: dict[str, Path] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)


def _audio_files(folder: Path) -> dict[str, Path]:
    return {f.stem: f for f in sorted(folder.iterdir()) if f.is_file() and f.suffix.lower() in AUDIO_EXT}


def find_songs(sep_dir) -> list[Song]:
    """Songs of a `latentmix separate` output folder: OUT/<song>/<stem>.wav (or one song folder itself)."""
    root = Path(sep_dir)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")

    def song(folder: Path) -> Song | None:
        files = _audio_files(folder)
        mix = next((files.pop(n) for n in MIX_NAMES if n in files), None)
        return Song(folder.name, files, mix) if files else None

    own = song(root)
    if own is not None and any(s in own.stems for s in STEMS):
        return [own]
    songs = [s for d in sorted(p for p in root.iterdir() if p.is_dir()) if (s := song(d)) is not None]
    if not songs:
        raise InputError(f"{root}: no separated songs (expected SONG/STEM.wav files)")
    return songs


def attach_references(songs: list[Song], ref_dir) -> None:
    """Fill each song's references from ref_dir/<song>/<stem>.* (or ref_dir itself for a single song)."""
    ref = Path(ref_dir)
    if not ref.is_dir():
        raise InputError(f"{ref}: no such reference folder")
    for s in songs:
        folder = ref / s.name if (ref / s.name).is_dir() else ref
        files = _audio_files(folder)
        s.references = {k: files[k] for k in s.stems if k in files}


def _read(path, sr=None):
    import soundfile as sf
    x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return x.mean(1), rate


def song_section(page: Page, song: Song, metric: str = "SI-SDR dB") -> None:
    """Players and spectrograms (one colour scale) for the mixture, each stem and each reference of one song."""
    page.h3(song.name)
    names = [s for s in STEMS if s in song.stems] + [s for s in song.stems if s not in STEMS]
    audio, rate = {}, None
    for n in names:
        audio[n], rate = _read(song.stems[n])
    if song.mixture is not None:
        mix, mrate = _read(song.mixture)
    else:
        T = max(len(a) for a in audio.values())
        mix, mrate = sum(np.pad(a, (0, T - len(a))) for a in audio.values()), rate
    refs = {n: _read(p)[0] for n, p in song.references.items()}
    specs = {"mixture": plots.spectrogram_db(mix, mrate)}
    specs.update({n: plots.spectrogram_db(a, rate) for n, a in audio.items()})
    specs.update({f"reference {n}": plots.spectrogram_db(a, rate) for n, a in refs.items()})
    vmin, vmax = plots.db_range(specs.values())
    cards = []
    for label, sig, r in [("mixture" if song.mixture else "mixture (sum of the stems)", mix, mrate)] + \
            [(n, audio[n], rate) for n in names] + [(f"reference {n}", refs[n], rate) for n in names if n in refs]:
        key = "mixture" if label.startswith("mixture") else label
        rel_img, png = page.img_path(f"{song.name}_{key}_spec")
        plots.spectrogram_png(png, specs[key], r, len(sig) / r, vmin, vmax)
        if key == "mixture":
            rel_audio = page.add_audio(f"{song.name}_mixture", src=song.mixture) if song.mixture else \
                page.add_audio(f"{song.name}_mixture", audio=mix, sr=mrate)
        elif key.startswith("reference "):
            rel_audio = page.add_audio(f"{song.name}_{key}", src=song.references[key[10:]])
        else:
            rel_audio = page.add_audio(f"{song.name}_{key}", src=song.stems[key])
        score = song.scores.get(key)
        cards.append({"label": label, "audio": rel_audio, "image": rel_img,
                      "score": None if score is None else f"{metric} {fmt(float(score))}"})
    page.players(cards)


def folder_report(page: Page, songs: list[Song], metric: str = "SI-SDR dB") -> None:
    page.h2("Separated songs", "songs")
    if any(s.scores for s in songs):
        stems = [s for s in STEMS if any(s in x.scores for x in songs)]
        page.table(["song"] + stems + ["All"], [[x.name] + [x.scores.get(s) for s in stems] + [x.scores.get("All")]
                                               for x in songs])
    page.p("Spectrograms of one song share one colour scale (dB, 80 dB below its loudest bin).", cls="note")
    for s in songs:
        song_section(page, s, metric)


# ------------------------------------------------------------------ evaluation records
def normalise_evaluation(d: dict) -> dict:
    """An evaluation JSON in any of its forms -> {'metric', 'stems', 'methods': {name: {'kind', 'summary',
    'windows': [{stem: value}], 'tracks': {track: row}, 'xrt'}}}.

    Forms: a SeparationEvaluation record (to_json), `latentmix eval msdm --json` / `eval separation --json`
    output (with an 'evaluation' record when present), or {'results': {name: row}} benchmark tables."""
    if "evaluation" in d and isinstance(d["evaluation"], dict):
        return normalise_evaluation(d["evaluation"])
    if isinstance(d.get("results"), dict) and d["results"] and all(isinstance(v, dict) and "summary" in v
                                                                   for v in d["results"].values()):
        methods = {}
        for name, r in d["results"].items():
            windows = [w["scores"] for t in r.get("tracks", []) for w in t.get("windows", [])]
            methods[name] = {"kind": r.get("kind", "model"), "summary": r["summary"], "windows": windows,
                             "tracks": {t["track"]: t["summary"] for t in r.get("tracks", [])},
                             "xrt": r["audio_seconds"] / max(r["compute_s"], 1e-9) if r.get("compute_s") else None}
        return {"metric": d.get("metric", "score"), "stems": d.get("stems", list(STEMS)), "methods": methods}
    if "results" in d and isinstance(d["results"], dict):
        res = d["results"]
        if "All" in res:                                                     # one method (eval msdm/separation)
            res = {d.get("method", "method"): res}
            per = {d.get("method", "method"): d.get("per_track", {})}
        else:
            per = {k: v.get("per_track", {}) for k, v in res.items()}
        stems = [s for s in STEMS if s in next(iter(res.values()))]
        methods = {n: {"kind": "oracle" if is_ceiling(n, "") else "model", "summary": row,
                       "windows": [], "tracks": per.get(n, {}), "xrt": None} for n, row in res.items()}
        return {"metric": d.get("metric", "score"), "stems": stems, "methods": methods}
    raise InputError("not a separation evaluation (no 'results')")


def is_ceiling(name: str, kind: str) -> bool:
    """An oracle or through-codec ceiling rather than a model (by its kind, or its name when the kind is generic)."""
    return kind in ("oracle", "codec") or any(w in name.lower() for w in ("oracle", "ceiling"))


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def evaluation_report(page: Page, d: dict) -> None:
    """The table, box plots over windows (tracks when no windows) and bass-vs-drums scatter per method."""
    ev = normalise_evaluation(d)
    stems, metric, methods = ev["stems"], ev["metric"], ev["methods"]
    page.h2("Scores", "scores")
    page.p(f"Metric: {metric}; higher is better. Ceilings (oracles) are listed after the models, drawn beside them in "
           "the box plots and as hollow grey points in each model's scatter.", cls="note")
    for n, m in methods.items():
        m["ceiling"] = is_ceiling(n, m["kind"])
    order = [n for n, m in methods.items() if not m["ceiling"]] + [n for n, m in methods.items() if m["ceiling"]]
    rows = [[n, methods[n]["kind"]] + [methods[n]["summary"].get(s) for s in stems] +
            [methods[n]["summary"].get("All"), methods[n]["summary"].get("windows"), methods[n].get("xrt")]
            for n in order]
    page.table(["method", "kind"] + stems + ["All", "windows", "x real time"], rows)
    oracles = [n for n in order if methods[n]["ceiling"]]
    models = [n for n in order if not methods[n]["ceiling"]] or oracles

    def values(name):
        w = methods[name]["windows"]
        return w if w else list(methods[name]["tracks"].values())

    unit = "windows" if any(methods[n]["windows"] for n in order) else "tracks"
    groups = {s: {n: [v[s] for v in values(n) if _finite(v.get(s))] for n in order} for s in stems}
    if any(groups[s][n] for s in stems for n in order):
        page.h3(f"Per-stem {metric} over {unit}")
        rel, png = page.img_path("box_per_stem")
        plots.box_plot(png, groups, metric, f"{metric} per stem over {unit}")
        page.image(rel, "per-stem box plots")
    if "bass" in stems and "drums" in stems:
        page.h3(f"Bass vs drums ({unit})")
        cards = []
        for n in models:
            pts = {n: [(v.get("bass"), v.get("drums")) for v in values(n)]}
            for o in oracles:
                if o != n:
                    pts[o] = [(v.get("bass"), v.get("drums")) for v in values(o)]
            rel, png = page.img_path(f"scatter_{n}")
            plots.scatter(png, pts, f"bass {metric}", f"drums {metric}", n, dashed=[o for o in oracles if o != n])
            cards.append({"label": n, "image": rel})
        page.players(cards)
    tracks = sorted({t for n in order for t in methods[n]["tracks"]})
    if tracks:
        page.h3("Per track (All)")
        page.table(["track"] + order, [[t] + [methods[n]["tracks"].get(t, {}).get("All") for n in order]
                                       for t in tracks])
