"""Codec v2 acceptance (issue #16): music and timbres the codec never heard, file-size bitrates, Opus beside it,
the same-budget architecture comparison, the through-codec `lass` ceiling, code-sum agreement and speed.

Run `python benchmarks/codec_v2.py [--model PATH] [--compare NAME=PATH ...] [--write]`; --write replaces the
`codec_v2` section of benchmarks/RESULTS.md.

Test sets: the built-in test split and the same 20 songs' MIDI rendered through FluidR3_GM, TimGM6mb and Sonivox
EAS (`--set NAME=ROOT`, split `test`; none is ever trained on). The unseen-timbre verdicts are FluidR3's and
Sonivox's: TimGM6mb shares every bass and guitar sample with the csound GM bank the codec trained on
(RESULTS.md, section soundfont-overlap), so it is scored without a verdict. Each set's test mixtures are put end to
end and cut into `--item-seconds` (60) items, so the .lmxc file of an item is >= 60 s and its size (header and
CRC included) gives the bitrate. Distances (latentmix.metrics.spectral): DAC's 7-scale mel distance, the
bandwidth-neutral log-mel distance (mean over 512/1024/2048-point STFTs, 80 bands, log10 power, floor 1e-5) and
zero-mean SI-SDR. Opus (hard CBR, delay-compensated) at the codec's file bitrate and at 8 and 12 kbps.
The `lass` ceiling: each stem of the built-in test songs encoded and decoded, museval v4 SDR against the stem
(metrics.protocols `lass`). Code-sum agreement: the level-0 code of E(0.5 bass + 0.5 drums) against the code
nearest to the average of the two stems' level-0 codewords, over every frame of the test songs.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, machine, parse_named, run_main, today, write_section  # noqa: E402

from latentmix import STEMS  # noqa: E402
from latentmix.checkpoint import read_header  # noqa: E402
from latentmix.codec.base import model_file_id  # noqa: E402
from latentmix.codec.linearity import code_sum_agreement  # noqa: E402
from latentmix.codec.model import Codec  # noqa: E402
from latentmix.data.datasets import list_tracks, load_track, track_frames  # noqa: E402
from latentmix.evaluation.codec import codec_speed, concatenated_mixture, evaluate_codec  # noqa: E402
from latentmix.evaluation.separation import CodecCeiling, evaluate_separation  # noqa: E402
from latentmix.pretrained.registry import resolve_model  # noqa: E402

SETS = ("builtin=data/slakhlike", "fluidr3=data/test_fluidr3", "timgm6mb=data/test_timgm6mb",
        "sonivox=data/test_sonivox")
UNSEEN = ("fluidr3", "sonivox")
METRICS = ("mel_distance", "log_mel_distance", "si_sdr")
TARGETS = {"xrt": 100.0, "drums": 6.0, "bass": 12.0, "code_sum": 0.5, "max_kbps": 6.2}


def items_of(root, seconds: float) -> list[tuple[str, torch.Tensor]]:
    """The split's test mixtures end to end, cut into whole `seconds` items."""
    total = sum(track_frames(t) for t in list_tracks(root, "test"))   # headers only: no decoding
    T = int(round(seconds * 22050))
    n = max(1, total // T)
    x = concatenated_mixture(root, "test", n * seconds)[0, 0]
    return [(f"{Path(root).name}/{i}", x[i * T:(i + 1) * T]) for i in range(n)]


def code_sum(model, root) -> float:
    """Mean level-0 code-sum agreement over the test songs' (bass, drums) pairs."""
    vals = []
    for t in list_tracks(root, "test"):
        x = load_track(t)
        vals.append(code_sum_agreement(model, x[STEMS.index("bass")][None, None], x[STEMS.index("drums")][None, None]))
    return sum(vals) / len(vals)


def fmt(v, d=3):
    return "-" if v is None else f"{v:.{d}f}"


def quality_rows(name: str, ev, levels) -> list[str]:
    rows = []
    for lv in levels:
        s = ev.codec(lv)
        m = s.metrics
        rows.append(f"| {name} | {lv} | {fmt(s.file_kbps, 2)} | {fmt(m['mel_distance'])} | "
                    f"{fmt(m['log_mel_distance'])} | {fmt(m['si_sdr'], 2)} |")
    return rows


def run(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="codec model file (default: the shipped codec)")
    ap.add_argument("--compare", action="append", default=[], metavar="NAME=PATH",
                    help="more codecs scored at --compare-level on every set (e.g. the same-budget runs)")
    ap.add_argument("--compare-level", type=int, default=9)
    ap.add_argument("--set", action="append", default=None, metavar="NAME=ROOT", dest="sets",
                    help=f"test sets (split test); default {' '.join(SETS)}")
    ap.add_argument("--levels", default="8,9,12", help="codebooks evaluated (comma-separated)")
    ap.add_argument("--item-seconds", type=float, default=60.0)
    ap.add_argument("--speed-seconds", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--write", action="store_true", help="replace --section of benchmarks/RESULTS.md")
    ap.add_argument("--section", default="codec_v2")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    machine_line, load0 = machine(args.threads), os.getloadavg()[0]
    path = resolve_model(args.model, "codec")
    model = Codec.load(path).eval()
    levels = [int(v) for v in args.levels.split(",")]
    sets = dict(parse_named(args.sets or list(SETS), "--set"))
    compare = {n: Codec.load(p).eval() for n, p in parse_named(args.compare, "--compare")}
    prov = read_header(path).get("provenance") or {}
    mid = model_file_id(path)

    L = ["## Codec v2 (issue #16)", "",
         f"Machine: {machine_line}; date {today()}; command `{command_line(__file__, argv)}`.", "",
         f"Model: `{path}` ({model.config.get('architecture', 'conv')}, hop {model.hop_length}, "
         f"{model.num_codebooks} x {model.codebook_size} codes; trained {prov.get('steps', '?')} steps in "
         f"{prov.get('wall_time_s', 0) / 60:.0f} min). Items: each set's 20 test mixtures end to end, cut into "
         f"{args.item_seconds:g} s items. kbps = the .lmxc file size x 8 / duration (header and CRC included); "
         "Opus kbps = its measured payload rate. Lower is better for both distances.", ""]
    verdict_rows, passes = [], []
    for sname, root in sets.items():
        items = items_of(root, args.item_seconds)
        ev = evaluate_codec(model, items, levels, metrics=METRICS, file_bitrate=True, model_id=mid,
                            chunk_frames=2048, opus_kbps=(8.0, 12.0), opus_match="file", opus_min_kbps=5.0,
                            progress=not args.quiet)
        L += [f"### {sname} (`{root}`, {len(items)} items of {args.item_seconds:g} s)", "",
              "| system | codebooks | kbps | mel distance | log-mel distance | SI-SDR (dB) |",
              "|---|---:|---:|---:|---:|---:|"]
        L += quality_rows("latentmix", ev, levels)
        for o in ev.opus_summaries():
            m = o.metrics
            L.append(f"| Opus (asked {fmt(o.request_kbps, 1)}) | - | {fmt(o.kbps, 2)} | {fmt(m['mel_distance'])} | "
                     f"{fmt(m['log_mel_distance'])} | {fmt(m['si_sdr'], 2)} |")
        for cname, cm in compare.items():
            cev = evaluate_codec(cm, items, [args.compare_level], metrics=METRICS, file_bitrate=True,
                                 chunk_frames=2048, progress=not args.quiet)
            L += quality_rows(cname, cev, [args.compare_level])
        L.append("")
        if sname in UNSEEN:
            ok_levels = [lv for lv in levels if ev.codec(lv).file_kbps <= TARGETS["max_kbps"]]
            opus8 = min(ev.opus_summaries(), key=lambda o: abs((o.request_kbps or 0) - 8.0))
            if ok_levels:
                s = ev.codec(max(ok_levels))
                win = all(s.metrics[k] < opus8.metrics[k] for k in ("mel_distance", "log_mel_distance"))
                passes.append(win)
                verdict_rows.append(
                    f"- {sname}: {max(ok_levels)} codebooks at {s.file_kbps:.2f} kbps: "
                    f"mel {s.metrics['mel_distance']:.3f} vs Opus 8 kbps {opus8.metrics['mel_distance']:.3f}, "
                    f"log-mel {s.metrics['log_mel_distance']:.3f} vs "
                    f"{opus8.metrics['log_mel_distance']:.3f} -> {'PASS' if win else 'MISS'}")

    x = concatenated_mixture(list(sets.values())[0], "test", args.speed_seconds)
    speed = codec_speed(model, x, args.threads)
    lass = evaluate_separation([CodecCeiling(model, stems=("bass", "drums"), num_codebooks=model.num_codebooks,
                                             path=path)], list(sets.values())[0], "test", "lass",
                               progress=not args.quiet)
    row = next(iter(lass.results.values())).summary
    bass, drums = float(row["bass"]), float(row["drums"])
    agree = code_sum(model, list(sets.values())[0])
    L += ["### Targets", ""] + verdict_rows + [
        f"- speed: {speed.best:.1f}x real time (encode all levels + decode, {args.threads} threads, best of 3 on "
        f"{args.speed_seconds:g} s; load {load0:.2f} at start) -> {'PASS' if speed.best >= TARGETS['xrt'] else 'MISS'}",
        f"- through-codec `lass` ceiling (all {model.num_codebooks} levels, built-in test songs): bass {bass:.2f} dB "
        f"(target >= {TARGETS['bass']:g}), drums {drums:.2f} dB (target >= {TARGETS['drums']:g}) -> "
        f"{'PASS' if bass >= TARGETS['bass'] and drums >= TARGETS['drums'] else 'MISS'}",
        f"- level-0 code-sum agreement (bass + drums of the built-in test songs): {100 * agree:.1f} % (target >= "
        f"{100 * TARGETS['code_sum']:.0f} %) -> {'PASS' if agree >= TARGETS['code_sum'] else 'MISS'}", ""]
    text = "\n".join(L)
    print(text)
    if args.write:
        print(f"wrote {write_section(args.section, text)}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    return run_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
