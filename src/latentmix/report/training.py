"""Training-run page from a run folder's metrics.jsonl (latentmix.train.logging): the loss and its terms,
the validation metrics, and for codecs the code usage / perplexity per level over training and at the last
validation.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import InputError
from . import plots
from .html import Page

_LEVEL = re.compile(r"^(?:val/|vq/)?(usage|perplexity|dead_fraction|code_sum)_l(\d+)$")
_SKIP = {"lr", "steps_per_s", "grad_norm"}


def read_metrics(path) -> list[dict]:
    """The records of a metrics.jsonl (torn lines skipped; 'nan'/'inf' strings become floats)."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise InputError(f"{path}: no metrics.jsonl")
    out = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "step" in rec:
            out.append({k: (float(v) if isinstance(v, str) and v in ("nan", "inf", "-inf") else v)
                        for k, v in rec.items()})
    if not out:
        raise InputError(f"{path}: no records")
    return out


def _series(recs, key):
    pts = [(r["step"], r[key]) for r in recs if isinstance(r.get(key), (int, float))]
    return ([p[0] for p in pts], [p[1] for p in pts]) if pts else None


def training_report(page: Page, run_dir) -> None:
    recs = read_metrics(run_dir)
    train = [r for r in recs if r.get("kind", "train") == "train"]
    val = [r for r in recs if r.get("kind") == "val"]
    keys = lambda rs: list(dict.fromkeys(k for r in rs for k in r if k not in ("step", "time", "kind")))  # noqa
    tkeys, vkeys = keys(train), keys(val)
    page.h2("Training curves", "training")
    last = train[-1] if train else recs[-1]
    page.p(f"{len(train)} training and {len(val)} validation records; last step {last['step']}, "
           f"{last.get('time', 0) / 60:.1f} min.", cls="note")
    cards = []
    loss = {k: s for k in ["loss"] if (s := _series(train, k))}
    if loss:
        rel, png = page.img_path("loss")
        plots.curves(png, loss, ylabel="loss", title="training loss", logy=True)
        cards.append({"label": "loss", "image": rel})
    terms = {k: s for k in tkeys if "/" in k and not _LEVEL.match(k) and k not in _SKIP
             and not k.endswith("num_codebooks") and (s := _series(train, k))}
    if terms:
        rel, png = page.img_path("loss_terms")
        plots.curves(png, terms, ylabel="value", title="loss terms", logy=True)
        cards.append({"label": "loss terms", "image": rel})
    for k in vkeys:
        if _LEVEL.match(k) or k in _SKIP:
            continue
        s = _series(val, k)
        if s:
            rel, png = page.img_path(f"val_{k}")
            plots.curves(png, {k if k.startswith("val") else f"val {k}": s}, ylabel=k, title=f"validation {k}")
            cards.append({"label": f"validation {k}", "image": rel})
    page.players(cards)
    levels = {}
    for k in tkeys + vkeys:
        m = _LEVEL.match(k)
        if m:
            levels.setdefault(m.group(1), []).append((int(m.group(2)), k))
    if "usage" in levels or "perplexity" in levels:
        page.h3("Code usage per level")
        cards = []
        for what in ("usage", "perplexity"):
            tk = sorted((lv, k) for lv, k in levels.get(what, []) if not k.startswith("val/"))
            if tk:
                rel, png = page.img_path(f"train_{what}")
                plots.curves(png, {f"level {lv}": _series(train, k) for lv, k in tk if _series(train, k)},
                             ylabel=what, title=f"{what} per level (training)")
                cards.append({"label": f"{what} per level over training", "image": rel})
            vk = sorted((lv, k) for lv, k in levels.get(what, []) if k.startswith("val/"))
            if vk and val:
                lastv = [r for r in val if vk[0][1] in r][-1]
                rel, png = page.img_path(f"val_{what}_levels")
                plots.bars(png, [lv for lv, _ in vk], [lastv.get(k, float("nan")) for _, k in vk], what,
                           f"{what} per level at the last validation (step {lastv['step']})")
                cards.append({"label": f"{what} per level, last validation", "image": rel})
        page.players(cards)
    page.h3("Last values")
    rows = [[k, last.get(k)] for k in tkeys if isinstance(last.get(k), (int, float))]
    if val:
        rows += [[k, val[-1].get(k)] for k in vkeys if isinstance(val[-1].get(k), (int, float)) and not
                 _LEVEL.match(k)]
    page.table(["metric", "value"], rows, digits=4)
