"""A self-contained HTML page in one folder: `index.html` plus the audio (`audio/`) and images (`img/`) it links,
every link relative, no script, no CDN, no network — the folder can be copied or zipped and opened anywhere.

Plain string templates with `html.escape` (the page is a list of fragments; no template engine is needed for
headings, tables, players and images). The report kinds (separation.py, codec.py, ...) append to a `Page`.
"""
from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

from .. import __version__
from ..fileio import write_text

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#fafafa;color:#222}
main{max-width:1100px;margin:0 auto;padding:1em 1.5em 3em}
h1{font-size:1.6em;margin:.6em 0 .2em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
h3{margin:1.2em 0 .4em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em;background:#fff}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right} th{background:#f0f0f0}
td:first-child,th:first-child{text-align:left}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:.8em}
figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:.5em}
figure img{width:100%;display:block} figcaption{font-weight:600;margin-bottom:.3em}
audio{width:100%;margin:.2em 0} .note{color:#666;font-size:.9em} .plot{max-width:100%;background:#fff}
code{background:#eee;padding:0 .2em;border-radius:3px} .score{font-weight:400;color:#555}
"""

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(name: str) -> str:
    """A file name made of [A-Za-z0-9_.-] only (never empty, never starting with a dot)."""
    s = _SAFE.sub("_", str(name)).strip("._") or "file"
    return s[:120]


def esc(x) -> str:
    return html.escape(str(x), quote=True)


def fmt(v, digits: int = 2) -> str:
    """A table cell: floats rounded, NaN/None as an en dash."""
    if v is None:
        return "–"
    if isinstance(v, float):
        if v != v:
            return "–"
        return f"{v:.{digits}f}"
    return str(v)


class Page:
    """An HTML page being built in `out_dir`: add headings, text, tables, audio players and figures, then
    `write()` -> out_dir/index.html. Files added are copied (or written) under out_dir with safe names."""

    def __init__(self, out_dir, title: str, subtitle: str | None = None):
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.title = title
        self.parts: list[str] = []
        self._used: set[str] = set()
        if subtitle:
            self.p(subtitle, cls="note")

    # ---------------------------------------------------------------- files
    def _unique(self, sub: str, name: str) -> str:
        base = safe_name(name)
        stem, dot, ext = base.rpartition(".")
        if not dot:
            stem, ext = base, ""
        rel, i = f"{sub}/{base}", 1
        while rel in self._used:
            i += 1
            rel = f"{sub}/{stem}_{i}{'.' + ext if ext else ''}"
        self._used.add(rel)
        return rel

    def asset(self, sub: str, name: str) -> tuple[str, Path]:
        """(relative link, absolute path) for a new file `name` under out_dir/sub (the caller writes it)."""
        rel = self._unique(sub, name)
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return rel, path

    def add_audio(self, name: str, src=None, audio=None, sr: int | None = None) -> str:
        """Copy the audio file `src`, or write `audio` ((C, T) or (T,) at `sr`) as WAV; -> relative link."""
        if src is not None:
            rel, path = self.asset("audio", name if Path(name).suffix else name + Path(src).suffix)
            if Path(src).resolve() != path.resolve():
                shutil.copyfile(src, path)
            return rel
        from ..audio import write_audio
        rel, path = self.asset("audio", name if name.endswith(".wav") else name + ".wav")
        write_audio(path, audio, sr)
        return rel

    def img_path(self, name: str) -> tuple[str, Path]:
        return self.asset("img", name if name.endswith(".png") else name + ".png")

    # ---------------------------------------------------------------- content
    def raw(self, fragment: str) -> None:
        self.parts.append(fragment)

    def h2(self, text: str, anchor: str | None = None) -> None:
        a = f' id="{esc(anchor)}"' if anchor else ""
        self.parts.append(f"<h2{a}>{esc(text)}</h2>")

    def h3(self, text: str) -> None:
        self.parts.append(f"<h3>{esc(text)}</h3>")

    def p(self, text: str, cls: str | None = None) -> None:
        c = f' class="{cls}"' if cls else ""
        self.parts.append(f"<p{c}>{esc(text)}</p>")

    def table(self, headers, rows, digits: int = 2) -> None:
        head = "".join(f"<th>{esc(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{esc(fmt(c, digits))}</td>" for c in r) + "</tr>" for r in rows)
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def kv(self, items: dict) -> None:
        """A two-column table of settings."""
        self.table(["setting", "value"], [[k, v if isinstance(v, (int, float)) else str(v)] for k, v in
                                          items.items()], digits=4)

    def image(self, rel: str, alt: str) -> None:
        self.parts.append(f'<p><img class="plot" src="{esc(rel)}" alt="{esc(alt)}"></p>')

    def players(self, cards) -> None:
        """A grid of cards: [{'label', 'audio': rel or None, 'image': rel or None, 'score': str or None}]."""
        out = ['<div class="grid">']
        for c in cards:
            score = f' <span class="score">{esc(c["score"])}</span>' if c.get("score") else ""
            out.append(f'<figure class="stem" data-label="{esc(c["label"])}"><figcaption>{esc(c["label"])}'
                       f'{score}</figcaption>')
            if c.get("audio"):
                out.append(f'<audio controls preload="metadata" src="{esc(c["audio"])}"></audio>')
            if c.get("image"):
                out.append(f'<img src="{esc(c["image"])}" alt="spectrogram of {esc(c["label"])}">')
            out.append("</figure>")
        out.append("</div>")
        self.parts.append("".join(out))

    def render(self) -> str:
        return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<title>{esc(self.title)}</title><style>{CSS}</style></head>\n<body><main>"
                f"<h1>{esc(self.title)}</h1>\n" + "\n".join(self.parts) +
                f"\n<p class=\"note\">Written by latentmix {esc(__version__)}.</p></main></body></html>\n")

    def write(self) -> Path:
        path = self.out / "index.html"
        write_text(path, self.render())
        return path
