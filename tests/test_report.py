"""HTML reports (latentmix.report, `latentmix report`): every kind renders from fixture results, one player per
stem, every linked file exists, and links are relative so a copied folder still works."""
from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from latentmix import STEMS

SR = 22050


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.audio, self.img, self.figures = [], 0, 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ("src", "href"):
            if a.get(k):
                self.links.append(a[k])
        self.audio += tag == "audio"
        self.img += tag == "img"
        if tag == "figure" and "data-label" in a:
            self.figures.append(a["data-label"])


def check_page(index: Path) -> Links:
    """Parse a report's index.html: every link relative and existing."""
    p = Links()
    p.feed(index.read_text())
    assert p.links, "no links in the page"
    for link in p.links:
        assert "://" not in link and not link.startswith("/") and ".." not in link, link
        assert (index.parent / link).is_file(), f"missing {link}"
    return p


def tone(seconds=1.0, f=220.0, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)


@pytest.fixture
def separated(tmp_path):
    """OUT/<song>/<stem>.wav for two songs (one with a mixture.wav) and the reference folders."""
    out, ref = tmp_path / "separated", tmp_path / "reference"
    for k, song in enumerate(["song_a", "song_b"]):
        for i, s in enumerate(STEMS):
            for root, scale in ((out, 0.9), (ref, 1.0)):
                (root / song).mkdir(parents=True, exist_ok=True)
                sf.write(root / song / f"{s}.wav", scale * tone(0.5, 110 * (i + 1) + k), SR, subtype="PCM_16")
    sf.write(out / "song_a" / "mixture.wav", sum(tone(0.5, 110 * (i + 1)) for i in range(4)) / 4, SR)
    return out, ref


def test_separation_report(separated, tmp_path):
    from latentmix.report import separation_page
    out, ref = separated
    scores = {"song_a": {"bass": 3.5, "drums": 2.0, "guitar": -1.0, "piano": 4.0, "All": 2.1}}
    index = separation_page(out, tmp_path / "rep", reference=ref, scores=scores)
    p = check_page(index)
    # per song: the mixture, one player per stem, one per reference stem
    assert p.audio == 2 * (1 + 2 * len(STEMS))
    assert p.figures.count("bass") == 2 and p.figures.count("reference piano") == 2
    assert p.img == p.audio
    html = index.read_text()
    assert "3.50" in html and "mixture (sum of the stems)" in html     # song_b has no mixture file
    copy = tmp_path / "elsewhere" / "copied"
    shutil.copytree(index.parent, copy)
    shutil.rmtree(index.parent)
    check_page(copy / "index.html")


def _evaluation_record():
    from latentmix.evaluation.separation import SeparationEvaluation, SeparationResult, TrackRecord, WindowRecord
    rng = np.random.default_rng(0)
    results = {}
    for name, kind, base in (("ours", "model", 3.0), ("IRM oracle", "oracle", 9.0)):
        tracks = []
        for t in ("t1", "t2"):
            wins = [WindowRecord(t, i * SR, (i + 1) * SR, {s: float(base + rng.normal()) for s in STEMS})
                    for i in range(5)]
            tracks.append(TrackRecord(t, 5 * SR, 0.5, {**{s: base for s in STEMS}, "All": base, "windows": 5}, wins))
        results[name] = SeparationResult(name, kind, None, 1000, "detail", "msdm", 1, "SI-SDRi dB", list(STEMS),
                                         {**{s: base for s in STEMS}, "All": base, "windows": 10}, 10.0, 1.0, tracks)
    return SeparationEvaluation("msdm", 1, "SI-SDRi dB", list(STEMS), "data", "test", ["t1", "t2"], 10.0, "cpu",
                                results)


def test_evaluation_report(tmp_path):
    from latentmix.report import detect_kind, evaluation_page
    ev = _evaluation_record()
    path = tmp_path / "eval.json"
    path.write_text(json.dumps({"command": "eval msdm", "method": "ours", "results": ev.results["ours"].summary,
                                "per_track": ev.results["ours"].per_track, "evaluation": ev.to_json()}))
    assert detect_kind(path) == "evaluation"
    index = evaluation_page(path, tmp_path / "rep")
    p = check_page(index)
    names = {Path(x).name for x in p.links}
    assert "box_per_stem.png" in names and "scatter_ours.png" in names
    assert "IRM oracle" in index.read_text()
    # the plain `eval msdm --json` form (no windows) renders too
    path.write_text(json.dumps({"method": "ours", "results": ev.results["ours"].summary,
                                "per_track": ev.results["ours"].per_track}))
    check_page(evaluation_page(path, tmp_path / "rep2"))


def test_codec_report(tmp_path):
    from latentmix.evaluation.codec import CodecEvaluation, CodecSummary, CodeUsage
    from latentmix.report import codec_page
    sums = [CodecSummary("codec", n, 0.69 * n, 1, {"si_sdr": 1.0 * n, "mel_distance": 3.0 - n}, 11.0, 0.0, [0.0],
                         0.1, 1.0) for n in (1, 2)]
    sums.append(CodecSummary("opus", None, 6.4, 1, {"si_sdr": 5.0, "mel_distance": 1.5}, 8.0, 0.0, [0.0], 0.1, 1.0,
                             request_kbps=6.4))
    ev = CodecEvaluation("codec", SR, 320, 2, 1024, False, [1, 2], ["si_sdr", "mel_distance"], ["item"], [SR],
                         summaries=sums, usage=[CodeUsage(0, 0.5, 300.0, 8.0), CodeUsage(1, 0.4, 200.0, 7.5)],
                         usage_frames=69, opus="opusenc opus-tools 0.2")
    files = {}
    for label, f in (("original", 220), ("1 codebook", 221), ("2 codebooks", 222), ("opus 6.40 kbps", 223)):
        files[label] = tmp_path / f"{f}.wav"
        sf.write(files[label], tone(1.0, f), SR)
    rec = tmp_path / "codec.json"
    rec.write_text(json.dumps(ev.to_json()))
    from latentmix.report import detect_kind
    assert detect_kind(rec) == "codec"
    index = codec_page(ev, tmp_path / "rep", {"item": files})
    p = check_page(index)
    assert p.audio == 4 + 3                   # the four versions and three differences
    assert "opus 6.40 kbps" in p.figures and "code_usage.png" in {Path(x).name for x in p.links}


def test_generation_report(tmp_path):
    from latentmix.report import detect_kind, generation_page
    sf.write(tmp_path / "prompt.wav", tone(1.0), SR)
    sf.write(tmp_path / "out.wav", tone(3.0, 330), SR)
    rec = tmp_path / "gen.json"
    rec.write_text(json.dumps({"prompt": "funky bass & <drums>", "settings": {"temperature": 0.9, "top_k": 50},
                               "prompt_audio": "prompt.wav", "prompt_seconds": 1.0,
                               "outputs": [{"audio": "out.wav", "label": "continuation"}]}))
    assert detect_kind(rec) == "generation"
    index = generation_page(rec, tmp_path / "rep")
    p = check_page(index)
    assert p.audio == 2
    assert "funky bass &amp; &lt;drums&gt;" in index.read_text()       # escaped


def test_training_report(tmp_path):
    from latentmix.report import detect_kind, training_page
    run = tmp_path / "run"
    run.mkdir()
    lines = []
    for step in range(10, 110, 10):
        lines.append({"step": step, "time": step * 0.5, "kind": "train", "loss": 1.0 / step, "rec/mel": 2.0 / step,
                      "vq/usage_l0": 0.5, "vq/usage_l1": 0.4, "lr": 1e-3})
        if step % 50 == 0:
            lines.append({"step": step, "time": step * 0.5, "kind": "val", "val/si_sdr": step / 10,
                          "val/usage_l0": 0.6, "val/usage_l1": 0.5, "loss": "nan"})
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"torn')
    assert detect_kind(run) == "training"
    index = training_page(run, tmp_path / "rep")
    names = {Path(x).name for x in check_page(index).links}
    assert {"loss.png", "val_val_si_sdr.png", "train_usage.png", "val_usage_levels.png"} <= names


def test_cli_separate_report_and_report_reference(tiny_dataset, tmp_path):
    from latentmix.cli import main
    track = sorted((tiny_dataset / "test").iterdir())[0]
    out = tmp_path / "sep"
    assert main(["separate", str(track), "--method", "oracle-irm", "-o", str(out), "--report", "--quiet"]) == 0
    p = check_page(out / "report" / "index.html")
    assert p.audio == 1 + len(STEMS)
    rep = tmp_path / "rep"
    assert main(["report", str(out), "-o", str(rep), "--reference", str(tiny_dataset / "test")]) == 0
    p = check_page(rep / "index.html")
    assert p.audio == 1 + 2 * len(STEMS)
    from html import escape
    from latentmix.metrics.protocols import get_protocol
    assert escape(get_protocol("msdm").metric) in (rep / "index.html").read_text()


def test_cli_codec_report(song_file, tmp_path):
    from latentmix.cli import main
    from latentmix.evaluation.codec import opus_available
    x, sr = sf.read(song_file)
    clip = tmp_path / "clip.flac"                  # FLAC: the report reads any soundfile format
    sf.write(clip, x[: int(1.5 * sr)], sr)
    rep = tmp_path / "rep"
    assert main(["report", str(clip), "-o", str(rep), "--levels", "2,12"]) == 0
    p = check_page(rep / "index.html")
    assert "2 codebooks" in p.figures and "12 codebooks" in p.figures
    if opus_available():
        assert any(f.startswith("opus") for f in p.figures)


def test_cli_report_errors(tmp_path, capsys):
    from latentmix.cli import main
    assert main(["report", str(tmp_path / "missing")]) == 2
    (tmp_path / "x.json").write_text("[1, 2]")
    assert main(["report", str(tmp_path / "x.json")]) == 2
    assert "error:" in capsys.readouterr().err
