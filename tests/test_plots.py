"""The report figures (report/plots.py): every figure function ends the same way, a titled PNG of its size in a
folder it creates, with no figure left open."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from latentmix.report import plots  # noqa: E402


def _png_size(path) -> tuple[int, int]:
    b = path.read_bytes()
    assert b[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(b[16:20], "big"), int.from_bytes(b[20:24], "big")


FIGURES = {
    "box_plot": (lambda p, t: plots.box_plot(p, {"bass": {"a": [1.0, float("nan")], "b": [2.0]},
                                                 "drums": {"a": [0.5, 3.0]}}, "SDR", t), (500, 320), True),
    "scatter": (lambda p, t: plots.scatter(p, {"a": [(1, 2), (2, None)], "oracle": [(0, 1)]}, "x", "y", t,
                                           dashed=["oracle"]), (500, 420), True),
    "curves": (lambda p, t: plots.curves(p, {"train": ([1, 2], [2.0, 1.0]), "val": ([2], [1.5])}, title=t,
                                         logy=True), (700, 320), True),
    "bars": (lambda p, t: plots.bars(p, [0, 1], [0.5, 0.9], "used", t), (600, 280), False),
    "spectrogram_png": (lambda p, t: plots.spectrogram_png(p, plots.spectrogram_db(np.ones(4096), 8000), 8000,
                                                           0.5, title=t, mark_seconds=0.1), (800, 260), False),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
@pytest.mark.parametrize("title", ["a title", None])
def test_a_figure_is_a_titled_png_of_its_size_in_a_new_folder_and_is_closed(name, title, tmp_path, monkeypatch):
    from matplotlib.figure import Figure
    plt = plots._plt()
    plt.close("all")
    seen = []
    savefig = Figure.savefig

    def recording(fig, *a, **k):
        seen.append((fig.axes[0].get_title(), fig.axes[0].get_legend() is not None))
        return savefig(fig, *a, **k)
    monkeypatch.setattr(Figure, "savefig", recording)
    draw, size, legend = FIGURES[name]
    path = tmp_path / "new" / "folder" / f"{name}.png"
    assert draw(str(path), title) == path
    assert _png_size(path) == size
    assert seen == [(title or "", legend)]
    assert plt.get_fignums() == []
