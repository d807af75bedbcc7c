"""Codec round-trip page: the distances per bitrate (table and curves, Opus beside the codec when the record has
Opus rows), code usage per level, and per item the original against every decoded version (players,
spectrograms on one colour scale, and the difference signal).

Input: a CodecEvaluation record (latentmix.evaluation.codec, or its to_json dict) and optionally the audio:
{item: {"original": path, label: path, ...}} where a label is e.g. "4 codebooks" or "opus 6.4 kbps".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import plots
from .html import Page

LOWER_IS_BETTER = ("mel_distance", "log_mel_distance", "mrstft_distance")


def _get(x, k, default=None):
    return x.get(k, default) if isinstance(x, dict) else getattr(x, k, default)


def _label(s) -> str:
    if _get(s, "system") == "opus":
        return f"opus {float(_get(s, 'kbps')):.2f} kbps"
    lvl = _get(s, "level")
    return f"{_get(s, 'system')}, {lvl} codebook{'s' if lvl != 1 else ''}" if lvl is not None else _get(s, "system")


def codec_report(page: Page, ev, audio: dict | None = None) -> None:
    """Render a codec evaluation (record or dict) and its audio into `page`."""
    ev = ev.to_json() if hasattr(ev, "to_json") else ev
    summaries, metrics = ev["summaries"], ev["metric_names"]
    page.h2("Distances per bitrate", "bitrates")
    page.p(f"Codec '{ev['name']}' at {ev['sample_rate']} Hz"
           + (f", {ev['num_codebooks']} levels x {ev['codebook_size']} codes" if ev.get("num_codebooks") else "")
           + f"; {len(ev['items'])} item(s). SI-SDR: higher is better; distances: lower is better."
           + (f" Opus: {ev['opus']}." if ev.get("opus") else "")
           + (f" Opus not run: {ev['opus_skipped']}." if ev.get("opus_skipped") else ""), cls="note")
    page.table(["system", "kbps"] + metrics + ["bandwidth kHz", "x real time"],
               [[_label(s), s["kbps"]] + [s["metrics"].get(m) for m in metrics] +
                [s["bandwidth_khz"], s["audio_seconds"] / max(s["seconds"], 1e-9)] for s in summaries], digits=3)
    cards = []
    for m in metrics:
        series = {}
        for system in dict.fromkeys(s["system"] for s in summaries):
            rows = sorted((s for s in summaries if s["system"] == system), key=lambda s: s["kbps"])
            series[system] = ([s["kbps"] for s in rows], [s["metrics"][m] for s in rows])
        rel, png = page.img_path(f"bitrate_{m}")
        better = "lower" if m in LOWER_IS_BETTER else "higher"
        plots.curves(png, series, "kbps", m, f"{m} ({better} is better)")
        cards.append({"label": m, "image": rel})
    page.players(cards)
    if ev.get("usage"):
        page.h3("Code usage per level")
        u = ev["usage"]
        rel, png = page.img_path("code_usage")
        plots.bars(png, [x["level"] for x in u], [x["used"] for x in u], "fraction of codes used",
                   f"code usage over {ev.get('usage_frames')} frames")
        page.image(rel, "code usage per level")
        page.table(["level", "used", "perplexity", "bits"], [[x["level"], x["used"], x["perplexity"], x["bits"]]
                                                             for x in u], digits=3)
    for item, files in (audio or {}).items():
        _item_section(page, item, files, ev["sample_rate"])


def _item_section(page: Page, item: str, files: dict, sr: int) -> None:
    import soundfile as sf
    page.h3(f"{item}: original and decoded")
    sig = {}
    for label, path in files.items():
        x, rate = sf.read(str(path), dtype="float32", always_2d=True)
        sig[label] = (x.mean(1), rate)
    orig, orate = sig.get("original", next(iter(sig.values())))
    diffs = {}
    for label, (x, rate) in sig.items():
        if label != "original" and rate == orate:
            n = min(len(x), len(orig))
            diffs[label] = x[:n] - orig[:n]
    specs = {k: plots.spectrogram_db(x, r) for k, (x, r) in sig.items()}
    dspecs = {k: plots.spectrogram_db(d, orate) for k, d in diffs.items()}
    vmin, vmax = plots.db_range(list(specs.values()) + list(dspecs.values()))
    cards = []
    for label, (x, rate) in sig.items():
        rel_img, png = page.img_path(f"{item}_{label}_spec")
        plots.spectrogram_png(png, specs[label], rate, len(x) / rate, vmin, vmax)
        cards.append({"label": label, "audio": page.add_audio(f"{item}_{label}", src=Path(files[label])),
                      "image": rel_img})
        if label in diffs:
            d = diffs[label]
            rel_d, dpng = page.img_path(f"{item}_{label}_diff_spec")
            plots.spectrogram_png(dpng, dspecs[label], orate, len(d) / orate, vmin, vmax)
            rms = 10 * np.log10(max(float(np.mean(d ** 2)), 1e-12) / max(float(np.mean(orig ** 2)), 1e-12))
            cards.append({"label": f"difference: {label} - original", "score": f"{rms:.1f} dB re original",
                          "audio": page.add_audio(f"{item}_{label}_difference", audio=d, sr=orate),
                          "image": rel_d})
    page.players(cards)
