"""`latentmix report INPUT`: a self-contained HTML page (OUT/index.html plus the audio and images it links).

INPUT and its kind (told from the input, or --kind):
  separation  a `latentmix separate` output folder (OUT/<song>/<stem>.wav); --reference DIR adds the true
              stems and per-stem scores (msdm protocol, metrics.protocols.score_folders)
  evaluation  a JSON written by `latentmix eval ... --json` (or an evaluation record)
  codec       an audio file (round-tripped now through the codec at --levels, with Opus beside it when opusenc
              exists) or a codec evaluation record (.json)
  generation  a generation record (.json: prompt, settings, audio files)
  training    a run folder (or its metrics.jsonl)
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from ..errors import ConfigError, InputError


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="write an HTML report of a result (separation, eval, codec, ...)",
                              description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                              formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="INPUT", help="separated folder, eval/codec/generation JSON, audio file or run")
    p.add_argument("-o", "--out", default=None, help="report folder (default: INPUT_report next to INPUT)")
    p.add_argument("--kind", default="auto", help="auto, separation, evaluation, codec, generation or training")
    p.add_argument("--reference", default=None, help="separation: folder of reference track folders")
    p.add_argument("--model", default=None, help="codec: model file (default: the shipped codec)")
    p.add_argument("--levels", default=None, help="codec: comma-separated numbers of codebooks (default 3 levels)")
    p.add_argument("--title", default=None, help="page title")
    p.set_defaults(func=run)


def default_out(inp: Path) -> Path:
    return inp.parent / f"{inp.stem if inp.is_file() else inp.name}_report"


def parse_levels(spec: str | None, n: int) -> list[int]:
    if not spec:
        return sorted({max(1, n // 4), max(1, n // 2), n})
    try:
        levels = [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--levels {spec}: expected comma-separated integers") from None
    bad = [x for x in levels if not 1 <= x <= n]
    if bad or not levels:
        raise ConfigError(f"--levels {spec}: each must be in 1..{n}")
    return levels


def codec_roundtrip_page(audio_file, out, model=None, levels=None, title=None) -> Path:
    """Round-trip one audio file through the codec at several levels (and Opus at the codec's rates when
    opusenc exists), then render the record and the decoded audio."""
    import numpy as np
    from ..audio import read_audio, write_audio
    from ..codec import Codec
    from ..evaluation.codec import evaluate_codec, opus_available, opus_roundtrip
    from ..pretrained.registry import resolve_model
    from ..report import codec_page
    from ..report.html import safe_name
    codec = Codec.load(resolve_model(model, "codec"))
    if codec.is_continuous:
        raise ConfigError("the codec report needs a codec with discrete codes")
    lv = parse_levels(levels, codec.num_codebooks)
    x = read_audio(audio_file, codec.sample_rate)                                 # (1, T)
    name = safe_name(Path(audio_file).stem)
    with tempfile.TemporaryDirectory(prefix="latentmix_report_") as tmp:
        tmp = Path(tmp)
        files = {"original": tmp / "original.wav"}
        write_audio(files["original"], x, codec.sample_rate)

        def keep(item, k, y):
            f = tmp / f"{k}cb.wav"
            write_audio(f, y, codec.sample_rate)
            files[f"{k} codebook{'s' if k != 1 else ''}"] = f

        ev = evaluate_codec(codec, [(name, x[0])], lv, metrics=("si_sdr", "mel_distance", "log_mel_distance"),
                            chunk_frames=2048, on_decoded=keep, opus_match="nominal" if opus_available() else None)
        for s in ev.opus_summaries():
            y, _ = opus_roundtrip(x[0].numpy(), s.request_kbps, tmp, sr=codec.sample_rate)
            f = tmp / f"opus_{s.request_kbps:g}.wav"
            write_audio(f, np.asarray(y)[None], codec.sample_rate)
            files[f"opus {s.kbps:.2f} kbps"] = f
        return codec_page(ev, out, {name: files}, title=title or f"Codec round trip: {Path(audio_file).name}")


def run(args) -> int:
    from .. import report
    inp = Path(args.input)
    if not inp.exists():
        raise InputError(f"{inp}: no such file or folder")
    kind = report.detect_kind(inp) if args.kind == "auto" and not (inp.is_file() and inp.suffix.lower() in
                                                                   (".wav", ".flac", ".ogg", ".mp3", ".aiff")) \
        else ("codec" if args.kind == "auto" else args.kind)
    if kind not in report.KINDS:
        raise ConfigError(f"--kind {kind}: expected one of auto, {', '.join(report.KINDS)}")
    out = Path(args.out) if args.out else default_out(inp)
    if kind == "separation":
        scores, metric = None, "SI-SDR dB"
        if args.reference:
            from ..metrics.protocols import score_folders
            res = score_folders(args.reference, inp, "msdm")
            scores, metric = res["per_track"], res["metric"]
        path = report.separation_page(inp, out, args.reference, scores, metric, title=args.title)
    elif kind == "evaluation":
        path = report.evaluation_page(inp, out, args.title)
    elif kind == "codec":
        path = codec_roundtrip_page(inp, out, args.model, args.levels, args.title) if inp.suffix != ".json" \
            else report.codec_page(inp, out, title=args.title)
    elif kind == "generation":
        path = report.generation_page(inp, out, args.title)
    else:
        path = report.training_page(inp.parent if inp.is_file() else inp, out, args.title)
    print(path)
    print(f"open it with: xdg-open {path}   (or any browser; the folder {out} is self-contained)", file=sys.stderr)
    return 0
