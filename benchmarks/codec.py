"""Codec benchmark: reconstruction quality at every bitrate against Opus, code usage, and speed.

Run `python benchmarks/codec.py [--model PATH] [--data data/slakhlike] [--split test] [--seconds 8]
[--max-tracks 20] [--write]`; --write replaces the `codec` section of benchmarks/RESULTS.md.

Quality: for each track of the split, the mixture (sum of the 4 stems) is cut to a `--seconds` excerpt from its
middle; for n = 1..N codebooks, y = decode(encode(x, n))[..., :T]. Metrics (latentmix.metrics): zero-mean
SI-SDR (dB, higher is better), DAC-style mel distance and multi-resolution STFT distance (lower is better),
averaged over tracks. Code usage and perplexity are per RVQ level over the full-bitrate codes of all excerpts.

Opus reference (Debian opus-tools): the excerpt as 16-bit 22050 Hz WAV -> `opusenc --hard-cbr --music
--framesize 20 --bitrate K` (opusenc resamples to 48 kHz) -> `opusdec --float --rate 48000` -> soxr back to
22050 Hz. opusdec removes the pre-skip; the residual delay is measured by cross-correlation per excerpt and
compensated (fractional, median over excerpts per bitrate) before the metrics; both raw and aligned SI-SDR are
shown. The bitrate shown for Opus is the measured Opus payload rate (Ogg framing not counted; the codec's
rate is likewise its raw code rate). Hard CBR only reaches multiples of 400 bit/s at 20 ms frames, so each codec
bitrate >= 6 kbps is compared with Opus at the smallest achievable rate >= it (Opus never gets fewer bits).

Speed: encode (all codebooks) + decode of a 30 s mixture (--speed-seconds) under torch.inference_mode, best and
median of 3, with 2 and 1 torch threads; FLOPs counted by torch.utils.flop_counter.FlopCounterMode (convolutions
and matmuls only).

The measuring (round trips, metrics, Opus, delay, code usage, speed) is latentmix.evaluation.codec's; this script
turns its records into the section.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, machine, nproc, run_main, today, write_section  # noqa: E402

from latentmix.checkpoint import read_header  # noqa: E402
from latentmix.codec.model import Codec  # noqa: E402
from latentmix.evaluation.codec import (MAX_LAG, MIN_COMPARE_KBPS, OPUS_FRAME_MS, codec_speed,  # noqa: E402
                                        concatenated_mixture, evaluate_codec, flops_per_second, load_items,
                                        match_opus, profile_summary)
from latentmix.pretrained.registry import resolve_model  # noqa: E402

OPUS_REFERENCE_KBPS = (6.0, 8.0, 12.0)
TARGET_XRT = 100.0
SPEED_SECONDS = 30.0
METRICS = ("si_sdr", "mel_distance", "mrstft_distance")


# ------------------------------------------------------------------ report
def render(args, argv, model: Codec, header: dict, model_path: Path, ev, opus_note, speeds, gflops, params,
           buffers, prof) -> tuple[str, list[str]]:
    """The codec section of RESULTS.md from the evaluation records (ev: latentmix.evaluation.codec)."""
    codec_rows, opus_rows, usage = ev.codec_summaries(), ev.opus_summaries(), ev.usage
    codec_lags = codec_rows[model.num_codebooks].lags
    N = model.num_codebooks
    L = ["## Codec", ""]
    L.append(f"Machine: {args.machine_line}; date {today()}; command `{command_line(__file__, argv)}`.")
    L.append("")
    prov = header.get("provenance") or {}
    trained = (f"trained {prov['steps']} steps" + (f" in {prov['wall_time_s'] / 60:.0f} min" if "wall_time_s" in prov
                                                    else "")) if "steps" in prov else "no training provenance"
    L.append(f"Model: `{model_path}` ({trained}); hop {model.hop_length} ({model.frame_rate:.2f} frames/s), "
             f"{N} RVQ levels x {model.codebook_size} codes = {model.bitrate() / 1000:.2f} kbps at full rate; "
             f"{params / 1e6:.3f} M parameters (+ {buffers / 1e6:.3f} M buffer values: codebooks and EMA state); "
             f"{gflops:.2f} GFLOP per audio second for encode + decode (FlopCounterMode: convolutions and matmuls).")
    L.append("")
    L.append(f"Data: `{args.data}` split `{args.split}`, {len(ev.items)} tracks; the mixture (sum of the 4 stems) "
             f"cut to {args.seconds:g} s from the middle of each track, 22050 Hz mono; figures are means over tracks.")
    L.append("")
    L += ["### Reconstruction", "",
          "SI-SDR is zero-mean (dB, higher is better); mel distance is DAC's 7-scale log10-mel L1 sum and MR-STFT is "
          "spectral convergence + log-magnitude over 512/1024/2048-point STFTs (`latentmix.metrics.codec`; lower is "
          "better). Opus kbps is the measured payload rate. Bandwidth: upper edge of the highest 250 Hz band whose "
          "long-term output power is within 20 dB of the input's (log-mel distances punish missing bands hard).", "",
          "| system | kbps | SI-SDR (dB) | mel distance | MR-STFT distance | bandwidth (kHz) |",
          "|---|---:|---:|---:|---:|---:|"]
    for n in range(1, N + 1):
        r = codec_rows[n]
        m = r.metrics
        L.append(f"| codec, {n} codebook{'s' if n > 1 else ''} | {model.bitrate(n) / 1000:.2f} | {m['si_sdr']:.2f} | "
                 f"{m['mel_distance']:.3f} | {m['mrstft_distance']:.3f} | {r.bandwidth_khz:.2f} |")
    for r in opus_rows:
        m = r.metrics
        L.append(f"| Opus {args.opus_mode} (asked {r.request_kbps:.2f}) | {r.kbps:.2f} | {m['si_sdr']:.2f} | "
                 f"{m['mel_distance']:.3f} | {m['mrstft_distance']:.3f} | {r.bandwidth_khz:.2f} |")
    L.append("")
    L += ["### Opus alignment", ""]
    if opus_rows:
        L += [opus_note, "",
              "| Opus kbps | lag (samples): median [min, max] | SI-SDR raw (dB) | SI-SDR aligned (dB) |",
              "|---:|---|---:|---:|"]
        for r in opus_rows:
            L.append(f"| {r.kbps:.2f} | {r.lag:+.2f} [{min(r.lags):+.2f}, {max(r.lags):+.2f}] | "
                     f"{r.si_sdr_raw:.2f} | {r.metrics['si_sdr']:.2f} |")
    else:
        L.append(opus_note)
    L.append("")
    L.append(f"Codec delay by the same cross-correlation (n = {N}, not compensated): median "
             f"{float(np.median(codec_lags)):+.2f} samples [{min(codec_lags):+.2f}, {max(codec_lags):+.2f}].")
    L.append("")
    total_bits = sum(u.bits for u in usage)
    L += [f"### Code usage ({N} levels, {ev.usage_frames} frames of the {args.split} excerpts per level)", "",
          f"Entropy summed over levels: {total_bits:.1f} bits/frame = {total_bits * model.frame_rate / 1000:.2f} kbps "
          f"(vs {model.bitrate() / 1000:.2f} kbps raw).", "",
          "| level | codebook used | perplexity | entropy (bits) |", "|---:|---:|---:|---:|"]
    for u in usage:
        L.append(f"| {u.level} | {100 * u.used:.1f}% | {u.perplexity:.1f} | {u.bits:.2f} |")
    L.append("")
    L += [f"### Speed (encode {N} codebooks + decode, {args.speed_seconds:g} s mixture, torch.inference_mode)", "",
          "| torch threads | x real time, best of 3 | x real time, median of 3 | audio s per process CPU s |",
          "|---:|---:|---:|---:|"]
    for s in speeds:
        L.append(f"| {s.threads} | {s.best:.1f} | {s.median:.1f} | {s.per_cpu_s:.1f} |")
    if args.load_at_start >= 0.5:
        L += ["", f"Measured while other processes were running (1-min load average {args.load_at_start:.2f} on "
                  f"{nproc()} CPUs when the script started): speeds are lower bounds; rerun on an idle machine."]
    if prof:
        L += ["", f"Profile (one encode + decode, {speeds[0].threads} threads, torch.profiler, top ops by self CPU):",
              "", "| op | self CPU (ms) | share |", "|---|---:|---:|"]
        L += [f"| `{name}` | {ms:.1f} | {pct:.0f}% |" for name, ms, pct in prof]
    L.append("")

    # targets
    s2 = next(s for s in speeds if s.threads == speeds[0].threads)
    speed_ok = s2.best >= TARGET_XRT
    pairs, verdicts, sdr_pairs = [], [], []
    for n in range(1, N + 1):
        b = model.bitrate(n) / 1000
        if b < MIN_COMPARE_KBPS:
            continue
        o = match_opus(b, opus_rows)
        if o is None:
            pairs.append(f"{b:.2f} kbps: no Opus row within 10%")
            verdicts.append(None)
            continue
        c, om = codec_rows[n].metrics, o.metrics
        better = c["mel_distance"] < om["mel_distance"]
        sdr_pairs.append(f"{b:.2f} kbps {c['si_sdr']:.2f} vs Opus {o.kbps:.2f} kbps {om['si_sdr']:.2f} dB")
        verdicts.append(better)
        pairs.append(f"{b:.2f} kbps {c['mel_distance']:.3f} {'<' if better else '>='} Opus {o.kbps:.2f} kbps "
                     f"{om['mel_distance']:.3f} (Opus bandwidth {o.bandwidth_khz:.1f} kHz)")
    if not pairs:
        mel_verdict = "n/a (no codec bitrate >= 6 kbps)"
    elif not opus_rows or None in verdicts:
        mel_verdict = "n/a (Opus rows missing)"
    else:
        mel_verdict = "PASS" if all(verdicts) else "MISS"
    L += ["### Targets", "",
          f"- >= {TARGET_XRT:g}x real time (encode + decode, {s2.threads} threads, best of 3): "
          f"{s2.best:.1f}x -> {'PASS' if speed_ok else 'MISS'}"
          + (" (measured under load, see Speed)" if args.load_at_start >= 0.5 else ""),
          f"- mel distance better than Opus at the same bitrate at >= {MIN_COMPARE_KBPS:g} kbps (Opus at the smallest "
          f"measured rate >= the codec's, within 10%): {mel_verdict}" + (f" ({'; '.join(pairs)})" if pairs else "")]
    if sdr_pairs:
        L.append(f"- for information, SI-SDR at the same pairs (not a target; less sensitive to Opus's band limit): "
                 f"{'; '.join(sdr_pairs)}")
    return "\n".join(L), verdicts


def main(argv=None) -> int:
    return run_main(run, argv)


def run(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="codec model file (default: the shipped codec)")
    ap.add_argument("--data", default="data/slakhlike")
    ap.add_argument("--split", default="test")
    ap.add_argument("--seconds", type=float, default=8.0, help="excerpt per track")
    ap.add_argument("--max-tracks", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the quality part (speed: 2 and 1)")
    ap.add_argument("--speed-seconds", type=float, default=SPEED_SECONDS, help="mixture timed for the speed figures")
    ap.add_argument("--opus-mode", choices=("hard-cbr", "vbr"), default="hard-cbr")
    ap.add_argument("--no-profile", action="store_true", help="skip the torch.profiler summary")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--write", action="store_true", help="replace the codec section of benchmarks/RESULTS.md")
    ap.add_argument("--force", action="store_true", help="--write even for a model without training provenance")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    args.machine_line = machine(args.threads)          # load average before this script adds its own
    args.load_at_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0

    model_path = resolve_model(args.model, "codec")
    header = read_header(model_path)
    if args.write and "steps" not in (header.get("provenance") or {}) and not args.force:
        print(f"error: {model_path} has no training provenance (an untrained model?); not writing RESULTS.md "
              "(--force overrides)", file=sys.stderr)
        return 2
    model = Codec.load(model_path).eval()
    if model.is_continuous:
        print("error: this benchmark needs a discrete (RVQ/VQ) codec; the model has a VAE bottleneck", file=sys.stderr)
        return 2
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())

    items = load_items(args.data, args.split, args.seconds, args.max_tracks)
    ev = evaluate_codec(model, items, metrics=METRICS, code_usage_stats=True, opus_kbps=OPUS_REFERENCE_KBPS,
                        opus_match="nominal", opus_min_kbps=MIN_COMPARE_KBPS, opus_mode=args.opus_mode,
                        progress=not args.quiet)
    if ev.opus:
        opus_note = (f"{ev.opus}; `opusenc --{args.opus_mode} --music --framesize {OPUS_FRAME_MS} --bitrate K` on "
                     f"16-bit 22050 Hz WAV, `opusdec --float --rate 48000`, soxr to 22050 Hz. opusdec removes the "
                     f"pre-skip (output length = input length); the remaining delay is the cross-correlation peak "
                     f"(parabolic interpolation, +-{MAX_LAG} samples); the median over excerpts is compensated by a "
                     f"fractional shift before every Opus metric.")
    else:
        opus_note = f"{ev.opus_skipped}: Opus rows skipped."
        print(f"note: {opus_note}", file=sys.stderr)

    x30 = concatenated_mixture(args.data, args.split, args.speed_seconds)
    gflops = flops_per_second(model)
    speeds = [codec_speed(model, x30, 2), codec_speed(model, x30, 1)]
    prof = None if args.no_profile else profile_summary(model, x30, 2)

    text, _ = render(args, argv, model, header, model_path, ev, opus_note, speeds, gflops, params, buffers, prof)
    print(text)
    if args.write:
        print(f"wrote {write_section('codec', text)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
