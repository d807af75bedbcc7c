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

Speed: encode (all codebooks) + decode of a 30 s mixture under torch.inference_mode, best and median of 3, with
2 and 1 torch threads; FLOPs counted by torch.utils.flop_counter.FlopCounterMode (convolutions and matmuls only).
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, machine, nproc, today, write_section  # noqa: E402

from latentmix import SAMPLE_RATE  # noqa: E402
from latentmix.audio import resample, stft  # noqa: E402
from latentmix.checkpoint import read_header  # noqa: E402
from latentmix.codec.model import Codec  # noqa: E402
from latentmix.data.datasets import list_tracks, load_track  # noqa: E402
from latentmix.metrics.codec import mel_distance, multi_resolution_stft_distance  # noqa: E402
from latentmix.metrics.sisdr import si_sdr  # noqa: E402
from latentmix.pretrained.registry import resolve_model  # noqa: E402

OPUS_REFERENCE_KBPS = (6.0, 8.0, 12.0)
OPUS_FRAME_MS = 20
OPUS_CBR_STEP = 8 * 1000 / OPUS_FRAME_MS        # bit/s: hard CBR spends a whole number of bytes per frame
MIN_COMPARE_KBPS = 6.0
TARGET_XRT = 100.0
SPEED_SECONDS = 30.0
MAX_LAG = 64                                    # samples searched either side by the alignment check


# ------------------------------------------------------------------ data and metrics
def load_excerpts(data, split, seconds: float, max_tracks: int) -> list[tuple[str, torch.Tensor]]:
    """[(track name, mixture excerpt (T,))]: the sum of the stems, `seconds` from the middle of the track."""
    out = []
    T = int(round(seconds * SAMPLE_RATE))
    for track in list_tracks(data, split)[:max_tracks]:
        mix = load_track(track).sum(0)
        start = max(0, (mix.shape[-1] - T) // 2)
        out.append((track.name, mix[start:start + T].contiguous()))
    return out


def speed_mixture(data, split, seconds: float) -> torch.Tensor:
    """A `seconds` mixture (1, 1, T): the split's track mixtures end to end."""
    need, parts, have = int(round(seconds * SAMPLE_RATE)), [], 0
    tracks = list_tracks(data, split)
    for i in range(10_000):
        mix = load_track(tracks[i % len(tracks)]).sum(0)
        parts.append(mix)
        have += mix.shape[-1]
        if have >= need:
            break
    return torch.cat(parts)[:need].reshape(1, 1, -1)


BAND_HZ = 250.0
BANDWIDTH_DB = -20.0


def band_power(y: torch.Tensor) -> np.ndarray:
    """Long-term power of (..., T) audio in 250 Hz bands (2048-point Hann STFT, summed over frames and batch)."""
    p = stft(y.reshape(-1, y.shape[-1]).float(), 2048, 512).abs().pow(2).sum(dim=(0, -1)).double().numpy()
    f = np.fft.rfftfreq(2048, 1 / SAMPLE_RATE)
    return np.bincount((f // BAND_HZ).astype(int), weights=p)


def bandwidth_khz(est_power: np.ndarray, ref_power: np.ndarray) -> float:
    """Upper edge (kHz) of the highest 250 Hz band whose output power is within 20 dB of the input's."""
    ok = (ref_power > 1e-9 * ref_power.max()) & (est_power > ref_power * 10 ** (BANDWIDTH_DB / 10))
    idx = np.nonzero(ok)[0]
    return min(SAMPLE_RATE / 2, (idx[-1] + 1) * BAND_HZ) / 1000 if len(idx) else 0.0


def quality(est: torch.Tensor, ref: torch.Tensor) -> dict[str, np.ndarray]:
    """est (B, 1, T), ref (1, 1, T) -> {metric: (B,)}."""
    ref = ref.expand_as(est)
    return {"sisdr": si_sdr(est, ref, zero_mean=True).reshape(-1).numpy(),
            "mel": mel_distance(est, ref, reduction="none").numpy(),
            "mrstft": multi_resolution_stft_distance(est, ref, reduction="none").numpy()}


# ------------------------------------------------------------------ codec
def evaluate_codec(model: Codec, excerpts, quiet: bool):
    """-> ({n: {metric: mean}}, full-bitrate codes (K, frames of all excerpts), codec delay (samples) per excerpt)."""
    N = model.num_codebooks
    sums: dict[int, dict[str, list]] = {n: {"sisdr": [], "mel": [], "mrstft": []} for n in range(1, N + 1)}
    full, lags, ref_pow, est_pow = [], [], 0, {n: 0 for n in range(1, N + 1)}
    for _, x in tqdm(excerpts, desc="codec", disable=quiet, file=sys.stderr):
        T = x.shape[-1]
        x3 = x.reshape(1, 1, T)
        ys = []
        for n in range(1, N + 1):
            codes = model.encode(x3, n)
            ys.append(model.decode(codes)[..., :T])
            if n == N:
                full.append(codes[0])
        y = torch.cat(ys)
        for k, v in quality(y, x3).items():
            for n in range(1, N + 1):
                sums[n][k].append(float(v[n - 1]))
        lags.append(xcorr_lag(ys[-1].reshape(-1).numpy(), x.numpy()))
        ref_pow = ref_pow + band_power(x)
        for n in range(1, N + 1):
            est_pow[n] = est_pow[n] + band_power(ys[n - 1])
    means = {n: {k: float(np.mean(v)) for k, v in d.items()} for n, d in sums.items()}
    for n in means:
        means[n]["bw"] = bandwidth_khz(est_pow[n], ref_pow)
    return means, torch.cat(full, -1), lags


def code_usage(codes: torch.Tensor, codebook_size: int) -> list[dict]:
    """codes (K, frames) -> per level: fraction of the codebook used, perplexity exp(H), entropy H in bits."""
    out = []
    for level in codes:
        counts = torch.bincount(level.reshape(-1), minlength=codebook_size).double()
        p = counts[counts > 0] / counts.sum()
        h = float(-(p * p.log()).sum())
        out.append({"used": float((counts > 0).double().mean()), "perplexity": math.exp(h), "bits": h / math.log(2)})
    return out


# ------------------------------------------------------------------ opus
def xcorr_lag(y: np.ndarray, x: np.ndarray, max_lag: int = MAX_LAG) -> float:
    """Delay of y relative to x in samples (y[t + lag] ~ x[t]), parabolic-interpolated cross-correlation peak."""
    n = 1 << int(math.ceil(math.log2(len(x) + len(y))))
    c = np.fft.irfft(np.fft.rfft(y, n) * np.conj(np.fft.rfft(x, n)), n)
    window = np.concatenate([c[-max_lag:], c[:max_lag + 1]])          # lags -max_lag .. max_lag
    j = int(np.argmax(window))
    frac = 0.0
    if 0 < j < len(window) - 1:
        a, b, d = window[j - 1], window[j], window[j + 1]
        den = a - 2 * b + d
        frac = 0.5 * (a - d) / den if den != 0 else 0.0
    return j - max_lag + frac


def shift(y: np.ndarray, lag: float) -> np.ndarray:
    """y advanced by `lag` samples (fractional, via the FFT; zero padding so nothing wraps around)."""
    if lag == 0:
        return y
    pad = int(math.ceil(abs(lag))) + 8
    z = np.pad(y.astype(np.float64), (pad, pad))
    f = np.fft.rfftfreq(len(z))
    out = np.fft.irfft(np.fft.rfft(z) * np.exp(2j * np.pi * f * lag), len(z))
    return out[pad:pad + len(y)].astype(np.float32)


def ogg_packets(path) -> list[int]:
    """Sizes in bytes of the packets of an Ogg stream (the Opus header and tags packets included)."""
    data, i, sizes, cur = Path(path).read_bytes(), 0, [], 0
    while i < len(data):
        if data[i:i + 4] != b"OggS":
            raise ValueError(f"{path}: not an Ogg page at byte {i}")
        nseg = data[i + 26]
        lacing = data[i + 27:i + 27 + nseg]
        i += 27 + nseg + sum(lacing)
        for s in lacing:
            cur += s
            if s < 255:
                sizes.append(cur)
                cur = 0
    return sizes


def opus_kbps_request(bitrate_bps: float, mode: str) -> float:
    """kbit/s to ask opusenc for so that Opus gets at least `bitrate_bps` (hard CBR: next 400 bit/s step)."""
    if mode == "hard-cbr":
        return math.ceil(bitrate_bps / OPUS_CBR_STEP - 1e-9) * OPUS_CBR_STEP / 1000
    return bitrate_bps / 1000


def opus_roundtrip(x: np.ndarray, kbps: float, tmp: Path, mode: str) -> tuple[np.ndarray, float]:
    """x (T,) at 22050 Hz -> (decoded (T,) at 22050 Hz, measured Opus payload kbit/s)."""
    wav_in, enc, wav_out = tmp / "in.wav", tmp / "enc.opus", tmp / "out.wav"
    sf.write(wav_in, x, SAMPLE_RATE, subtype="PCM_16")
    flag = "--hard-cbr" if mode == "hard-cbr" else "--vbr"
    subprocess.run(["opusenc", "--quiet", flag, "--music", "--framesize", str(OPUS_FRAME_MS),
                    "--bitrate", f"{kbps:.3f}", str(wav_in), str(enc)], check=True, capture_output=True)
    subprocess.run(["opusdec", "--quiet", "--float", "--rate", "48000", str(enc), str(wav_out)],
                   check=True, capture_output=True)
    y, sr = sf.read(wav_out, dtype="float32", always_2d=True)
    y = resample(y[:, 0], sr, SAMPLE_RATE)
    if abs(len(y) - len(x)) > 2:
        raise RuntimeError(f"opusdec returned {len(y)} samples for {len(x)} (pre-skip/end trimming broken?)")
    y = np.pad(y, (0, max(0, len(x) - len(y))))[:len(x)]
    audio_packets = ogg_packets(enc)[2:]                     # OpusHead, OpusTags
    payload = sum(audio_packets) * 8 / (len(audio_packets) * OPUS_FRAME_MS / 1000) / 1000
    return y, payload


def evaluate_opus(excerpts, kbps_list, mode: str, quiet: bool) -> list[dict]:
    """One row per requested bitrate: measured kbps, metrics (aligned), raw SI-SDR and the lags found."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="latentmix_opus_") as tmp:
        for kbps in tqdm(kbps_list, desc="opus", disable=quiet, file=sys.stderr):
            decoded, payloads, lags = [], [], []
            for _, x in excerpts:
                y, rate = opus_roundtrip(x.numpy(), kbps, Path(tmp), mode)
                decoded.append(y)
                payloads.append(rate)
                lags.append(xcorr_lag(y, x.numpy()))
            lag = float(np.median(lags))
            m = {"sisdr": [], "mel": [], "mrstft": [], "sisdr_raw": []}
            ref_pow, est_pow = 0, 0
            for (_, x), y in zip(excerpts, decoded):
                ref = x.reshape(1, 1, -1)
                ref_pow, est_pow = ref_pow + band_power(x), est_pow + band_power(torch.from_numpy(y))
                for k, v in quality(torch.from_numpy(shift(y, lag)).reshape(1, 1, -1), ref).items():
                    m[k].append(float(v[0]))
                m["sisdr_raw"].append(float(si_sdr(torch.from_numpy(y), x, zero_mean=True)))
            rows.append({"request": kbps, "kbps": float(np.mean(payloads)), "lag": lag, "lags": lags,
                         "bw": bandwidth_khz(est_pow, ref_pow),
                         **{k: float(np.mean(v)) for k, v in m.items()}})
    return rows


# ------------------------------------------------------------------ speed
def time_codec(model: Codec, x: torch.Tensor, threads: int, repeats: int = 3) -> dict:
    """Encode (all codebooks) + decode of x (1, 1, T): x real time, best and median of `repeats` (1 warm-up)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    audio_s = x.shape[-1] / model.sample_rate
    times, cpu = [], []
    try:
        with torch.inference_mode():
            model.decode(model.encode(x))
            for _ in range(repeats):
                t, c = time.perf_counter(), time.process_time()
                model.decode(model.encode(x))
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
    finally:
        torch.set_num_threads(before)
    return {"threads": threads, "best": audio_s / min(times), "median": audio_s / statistics.median(times),
            "per_cpu_s": audio_s / min(cpu), "times": times, "audio_s": audio_s}


def flops_per_second(model: Codec, seconds: float = 4.0) -> float:
    """GFLOP per audio second of encode + decode (FlopCounterMode: convolutions and matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode
    x = torch.zeros(1, model.channels, int(seconds * model.sample_rate))
    # no_grad, not inference_mode: FlopCounterMode's module tracker fails on inference-mode weight-norm weights
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.decode(model.encode(x))
    return counter.get_total_flops() / seconds / 1e9


def profile_summary(model: Codec, x: torch.Tensor, threads: int, top: int = 6) -> list[tuple[str, float, float]]:
    """[(op, self CPU ms, % of self CPU)] of one encode + decode of x, the `top` most expensive ops."""
    from torch.profiler import ProfilerActivity, profile
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            model.decode(model.encode(x))
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                model.decode(model.encode(x))
    finally:
        torch.set_num_threads(before)
    events = [e for e in prof.key_averages()]
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [(e.key, e.self_cpu_time_total / 1000, 100 * e.self_cpu_time_total / total) for e in events[:top]]


# ------------------------------------------------------------------ report
def match_opus(bitrate_kbps: float, opus_rows: list[dict]) -> dict | None:
    """The Opus row with the smallest measured rate >= bitrate_kbps, if within 10% above it."""
    ok = [r for r in opus_rows if bitrate_kbps - 1e-6 <= r["kbps"] <= 1.1 * bitrate_kbps]
    return min(ok, key=lambda r: r["kbps"]) if ok else None


def render(args, argv, model: Codec, header: dict, model_path: Path, excerpts, codec_rows, usage, frames, codec_lags,
           opus_rows, opus_note, speeds, gflops, params, buffers, prof) -> tuple[str, list[str]]:
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
    L.append(f"Data: `{args.data}` split `{args.split}`, {len(excerpts)} tracks; the mixture (sum of the 4 stems) "
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
        L.append(f"| codec, {n} codebook{'s' if n > 1 else ''} | {model.bitrate(n) / 1000:.2f} | {r['sisdr']:.2f} | "
                 f"{r['mel']:.3f} | {r['mrstft']:.3f} | {r['bw']:.2f} |")
    for r in opus_rows:
        L.append(f"| Opus {args.opus_mode} (asked {r['request']:.2f}) | {r['kbps']:.2f} | {r['sisdr']:.2f} | "
                 f"{r['mel']:.3f} | {r['mrstft']:.3f} | {r['bw']:.2f} |")
    L.append("")
    L += ["### Opus alignment", ""]
    if opus_rows:
        L += [opus_note, "",
              "| Opus kbps | lag (samples): median [min, max] | SI-SDR raw (dB) | SI-SDR aligned (dB) |",
              "|---:|---|---:|---:|"]
        for r in opus_rows:
            L.append(f"| {r['kbps']:.2f} | {r['lag']:+.2f} [{min(r['lags']):+.2f}, {max(r['lags']):+.2f}] | "
                     f"{r['sisdr_raw']:.2f} | {r['sisdr']:.2f} |")
    else:
        L.append(opus_note)
    L.append("")
    L.append(f"Codec delay by the same cross-correlation (n = {N}, not compensated): median "
             f"{float(np.median(codec_lags)):+.2f} samples [{min(codec_lags):+.2f}, {max(codec_lags):+.2f}].")
    L.append("")
    total_bits = sum(u["bits"] for u in usage)
    L += [f"### Code usage ({N} levels, {frames} frames of the {args.split} excerpts per level)", "",
          f"Entropy summed over levels: {total_bits:.1f} bits/frame = {total_bits * model.frame_rate / 1000:.2f} kbps "
          f"(vs {model.bitrate() / 1000:.2f} kbps raw).", "",
          "| level | codebook used | perplexity | entropy (bits) |", "|---:|---:|---:|---:|"]
    for i, u in enumerate(usage):
        L.append(f"| {i} | {100 * u['used']:.1f}% | {u['perplexity']:.1f} | {u['bits']:.2f} |")
    L.append("")
    L += [f"### Speed (encode {N} codebooks + decode, {SPEED_SECONDS:g} s mixture, torch.inference_mode)", "",
          "| torch threads | x real time, best of 3 | x real time, median of 3 | audio s per process CPU s |",
          "|---:|---:|---:|---:|"]
    for s in speeds:
        L.append(f"| {s['threads']} | {s['best']:.1f} | {s['median']:.1f} | {s['per_cpu_s']:.1f} |")
    if args.load_at_start >= 0.5:
        L += ["", f"Measured while other processes were running (1-min load average {args.load_at_start:.2f} on "
                  f"{nproc()} CPUs when the script started): speeds are lower bounds; rerun on an idle machine."]
    if prof:
        L += ["", f"Profile (one encode + decode, {speeds[0]['threads']} threads, torch.profiler, top ops by self CPU):",
              "", "| op | self CPU (ms) | share |", "|---|---:|---:|"]
        L += [f"| `{name}` | {ms:.1f} | {pct:.0f}% |" for name, ms, pct in prof]
    L.append("")

    # targets
    s2 = next(s for s in speeds if s["threads"] == speeds[0]["threads"])
    speed_ok = s2["best"] >= TARGET_XRT
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
        better = codec_rows[n]["mel"] < o["mel"]
        sdr_pairs.append(f"{b:.2f} kbps {codec_rows[n]['sisdr']:.2f} vs Opus {o['kbps']:.2f} kbps {o['sisdr']:.2f} dB")
        verdicts.append(better)
        pairs.append(f"{b:.2f} kbps {codec_rows[n]['mel']:.3f} {'<' if better else '>='} Opus {o['kbps']:.2f} kbps "
                     f"{o['mel']:.3f} (Opus bandwidth {o['bw']:.1f} kHz)")
    if not pairs:
        mel_verdict = "n/a (no codec bitrate >= 6 kbps)"
    elif not opus_rows or None in verdicts:
        mel_verdict = "n/a (Opus rows missing)"
    else:
        mel_verdict = "PASS" if all(verdicts) else "MISS"
    L += ["### Targets", "",
          f"- >= {TARGET_XRT:g}x real time (encode + decode, {s2['threads']} threads, best of 3): "
          f"{s2['best']:.1f}x -> {'PASS' if speed_ok else 'MISS'}"
          + (" (measured under load, see Speed)" if args.load_at_start >= 0.5 else ""),
          f"- mel distance better than Opus at the same bitrate at >= {MIN_COMPARE_KBPS:g} kbps (Opus at the smallest "
          f"measured rate >= the codec's, within 10%): {mel_verdict}" + (f" ({'; '.join(pairs)})" if pairs else "")]
    if sdr_pairs:
        L.append(f"- for information, SI-SDR at the same pairs (not a target; less sensitive to Opus's band limit): "
                 f"{'; '.join(sdr_pairs)}")
    return "\n".join(L), verdicts


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="codec model file (default: the shipped codec)")
    ap.add_argument("--data", default="data/slakhlike")
    ap.add_argument("--split", default="test")
    ap.add_argument("--seconds", type=float, default=8.0, help="excerpt per track")
    ap.add_argument("--max-tracks", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the quality part (speed: 2 and 1)")
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

    excerpts = load_excerpts(args.data, args.split, args.seconds, args.max_tracks)
    with torch.inference_mode():
        codec_rows, full_codes, codec_lags = evaluate_codec(model, excerpts, args.quiet)
    usage = code_usage(full_codes, model.codebook_size)

    opus_rows, opus_note = [], ""
    if shutil.which("opusenc") and shutil.which("opusdec"):
        wanted = set(OPUS_REFERENCE_KBPS)
        wanted |= {opus_kbps_request(model.bitrate(n), args.opus_mode) for n in range(1, model.num_codebooks + 1)
                   if model.bitrate(n) / 1000 >= MIN_COMPARE_KBPS}
        opus_rows = evaluate_opus(excerpts, sorted(round(k, 3) for k in wanted), args.opus_mode, args.quiet)
        version = subprocess.run(["opusenc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        opus_note = (f"{version}; `opusenc --{args.opus_mode} --music --framesize {OPUS_FRAME_MS} --bitrate K` on "
                     f"16-bit 22050 Hz WAV, `opusdec --float --rate 48000`, soxr to 22050 Hz. opusdec removes the "
                     f"pre-skip (output length = input length); the remaining delay is the cross-correlation peak "
                     f"(parabolic interpolation, +-{MAX_LAG} samples); the median over excerpts is compensated by a "
                     f"fractional shift before every Opus metric.")
    else:
        opus_note = "opusenc/opusdec not found (Debian package opus-tools): Opus rows skipped."
        print(f"note: {opus_note}", file=sys.stderr)

    x30 = speed_mixture(args.data, args.split, SPEED_SECONDS)
    gflops = flops_per_second(model)
    speeds = [time_codec(model, x30, 2), time_codec(model, x30, 1)]
    prof = None if args.no_profile else profile_summary(model, x30, 2)

    text, _ = render(args, argv, model, header, model_path, excerpts, codec_rows, usage, full_codes.shape[-1],
                     codec_lags, opus_rows, opus_note, speeds, gflops, params, buffers, prof)
    print(text)
    if args.write:
        print(f"wrote {write_section('codec', text)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
