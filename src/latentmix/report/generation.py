"""Generation page: the prompt, the settings, a player and a spectrogram per output; for a continuation the
prompt audio too and the prompt's span marked on the output's spectrogram.

Input: a generation record, a plain dict (JSON) such as latentmix.generation / evaluation.generation write:
  {"prompt": "text prompt" | null, "settings": {...}, "outputs": [{"audio": "x.wav", "label": "..."}],
   "prompt_audio": "p.wav" | null, "prompt_seconds": 4.0 | null}
"audio": "x.wav" alone stands for one output. Relative paths are relative to `base` (the JSON file's folder).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from . import plots
from .html import Page


def _resolve(p, base: Path) -> Path:
    path = Path(p)
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise InputError(f"{path}: audio file of the generation record not found")
    return path


def generation_report(page: Page, rec: dict, base=".") -> None:
    import soundfile as sf
    base = Path(base)
    outputs = rec.get("outputs") or ([{"audio": rec["audio"], "label": "output"}] if rec.get("audio") else [])
    if not outputs:
        raise InputError("generation record without audio ('outputs' or 'audio')")
    page.h2("Generation", "generation")
    prompt = rec.get("prompt")
    page.p(f"Prompt: “{prompt}”" if prompt else "Unconditional (no text prompt).")
    settings = dict(rec.get("settings") or {})
    if settings:
        page.kv(settings)
    mark = rec.get("prompt_seconds")
    cards = []
    if rec.get("prompt_audio"):
        p = _resolve(rec["prompt_audio"], base)
        x, sr = sf.read(str(p), dtype="float32", always_2d=True)
        rel, png = page.img_path("prompt_audio_spec")
        plots.spectrogram_png(png, plots.spectrogram_db(x.mean(1), sr), sr, len(x) / sr)
        cards.append({"label": "prompt audio", "audio": page.add_audio("prompt_audio", src=p), "image": rel})
    for i, o in enumerate(outputs):
        p = _resolve(o["audio"], base)
        x, sr = sf.read(str(p), dtype="float32", always_2d=True)
        label = o.get("label") or f"output {i + 1}"
        rel, png = page.img_path(f"output_{i}_spec")
        plots.spectrogram_png(png, plots.spectrogram_db(x.mean(1), sr), sr, len(x) / sr, mark_seconds=mark)
        cards.append({"label": label, "audio": page.add_audio(f"output_{i}", src=p), "image": rel,
                      "score": f"{len(x) / sr:.1f} s" + (f", prompt 0–{mark:g} s" if mark else "")})
    page.players(cards)
