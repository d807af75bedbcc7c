"""Codec round trips, scored: a codec at chosen numbers of codebooks, and Opus at chosen bitrates, over audio
items. The codec benchmark, the peers' codec comparison and the demo go through `evaluate_codec`; its records are
what they render.

Codec: anything with encode(wav (1, C, T), n) -> codes (1, n, F), decode(codes) -> wav, bitrate(n) (bit/s),
num_codebooks, codebook_size, sample_rate (latentmix.codec.Codec, the EnCodec peer). For every item x and level
n: y = decode(encode(x, n))[..., :T] (encode_chunked/decode_chunked with `chunk_frames`, as `latentmix codec`
does on long files; a continuous (VAE) codec goes through its latents at level None), timed around encode +
decode, under torch.inference_mode.

Metrics (latentmix.metrics, est against ref, one value per item; `metrics=` picks any of them):
  si_sdr            zero-mean SI-SDR, dB (higher is better)
  mel_distance      DAC's 7-scale log10-mel L1 sum (lower is better)
  log_mel_distance  the bandwidth-neutral log-mel distance of issue #16 (mean over 512/1024/2048-point STFTs)
  mrstft_distance   spectral convergence + log-magnitude over 512/1024/2048-point STFTs
plus, always: the bandwidth (upper edge of the highest 250 Hz band whose long-term output power is within
20 dB of the input's; the summary's is over the summed powers of all items) and the delay of the output
(cross-correlation peak, parabolic interpolation, +-64 samples). Bitrates: nominal (bitrate(n)) and, with
`file_bitrate=True`, the size of the .lmxc file latentmix would write for the item (header, codes, CRC) x 8 /
duration.

Opus (Debian opus-tools): the item as 16-bit WAV -> `opusenc --hard-cbr --music --framesize 20 --bitrate K`
(opusenc resamples to 48 kHz) -> `opusdec --float --rate 48000` -> soxr back to the item's rate. opusdec
removes the pre-skip; the residual delay is measured per item and the median over the items of one bitrate is
compensated (a fractional shift) before every metric; the raw SI-SDR is kept too. An Opus row's kbps is the
measured payload rate (Ogg framing not counted; the codec's nominal rate is likewise its raw code rate). Hard
CBR only reaches multiples of 400 bit/s at 20 ms frames: `opus_kbps_request` gives the smallest reachable rate
>= a wanted one, so Opus never gets fewer bits than the codec it is compared with.

Everything the later measurements need is an argument, not a new loop: Opus at the codec's file bitrate and at
fixed rates (`opus_match="file"`, `opus_kbps=(8, 12)`), the bandwidth-neutral distance (`metrics`), other test
sets (`load_items(data, split, source=...)`); the through-codec separation ceiling is
evaluation.separation.CodecCeiling under any protocol.
"""
from __future__ import annotations

import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import SAMPLE_RATE, STEMS
from ..errors import ConfigError, InputError
from .records import Record

OPUS_FRAME_MS = 20
OPUS_CBR_STEP = 8 * 1000 / OPUS_FRAME_MS        # bit/s: hard CBR spends a whole number of bytes per frame
MIN_COMPARE_KBPS = 6.0
MAX_LAG = 64                                    # samples searched either side by the alignment check
BAND_HZ = 250.0
BANDWIDTH_DB = -20.0


# ------------------------------------------------------------------ metrics
def _si_sdr(est, ref, sr):
    from ..metrics.sisdr import si_sdr
    return si_sdr(est, ref, zero_mean=True).reshape(est.shape[0], -1).mean(-1)


def _mel(est, ref, sr):
    from ..metrics.codec import mel_distance
    return mel_distance(est, ref, sr=sr, reduction="none")


def _log_mel(est, ref, sr):
    from ..metrics.codec import log_mel_distance
    return log_mel_distance(est, ref, sr=sr, reduction="none")


def _mrstft(est, ref, sr):
    from ..metrics.codec import multi_resolution_stft_distance
    return multi_resolution_stft_distance(est, ref, reduction="none")


# name -> fn(est (B, C, T), ref (B, C, T), sample rate) -> (B,)
METRICS = {"si_sdr": _si_sdr, "mel_distance": _mel, "log_mel_distance": _log_mel, "mrstft_distance": _mrstft}
DEFAULT_METRICS = tuple(METRICS)


def score(est: torch.Tensor, ref: torch.Tensor, metrics=DEFAULT_METRICS,
          sr: int = SAMPLE_RATE) -> dict[str, np.ndarray]:
    """est (B, C, T) against ref (1 or B, C, T) -> {metric: (B,) float64}."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ConfigError(f"unknown codec metric '{unknown[0]}' (known: {', '.join(METRICS)})")
    ref = ref.expand_as(est)
    return {m: METRICS[m](est, ref, sr).double().reshape(-1).numpy() for m in metrics}


def band_power(y: torch.Tensor, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Long-term power of (..., T) audio in 250 Hz bands (2048-point Hann STFT, summed over frames and batch)."""
    from ..audio import stft
    p = stft(y.reshape(-1, y.shape[-1]).float(), 2048, 512).abs().pow(2).sum(dim=(0, -1)).double().numpy()
    f = np.fft.rfftfreq(2048, 1 / sr)
    return np.bincount((f // BAND_HZ).astype(int), weights=p)


def bandwidth_khz(est_power: np.ndarray, ref_power: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Upper edge (kHz) of the highest 250 Hz band whose output power is within 20 dB of the input's."""
    ok = (ref_power > 1e-9 * ref_power.max()) & (est_power > ref_power * 10 ** (BANDWIDTH_DB / 10))
    idx = np.nonzero(ok)[0]
    return min(sr / 2, (idx[-1] + 1) * BAND_HZ) / 1000 if len(idx) else 0.0


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


def code_usage(codes: torch.Tensor, codebook_size: int) -> list["CodeUsage"]:
    """codes (K, frames) -> per level: fraction of the codebook used, perplexity exp(H), entropy H in bits."""
    out = []
    for i, level in enumerate(codes):
        counts = torch.bincount(level.reshape(-1), minlength=codebook_size).double()
        p = counts[counts > 0] / counts.sum()
        h = float(-(p * p.log()).sum())
        out.append(CodeUsage(level=i, used=float((counts > 0).double().mean()), perplexity=math.exp(h),
                             bits=h / math.log(2)))
    return out


# ------------------------------------------------------------------ items
def load_items(data, split: str | None = "test", seconds: float | None = 8.0, max_tracks: int | None = None,
               source: str = "mixture", sr: int = SAMPLE_RATE) -> list[tuple[str, torch.Tensor]]:
    """[(name, audio (T,))] from the tracks of a split: `seconds` from the middle of each (None: all of it).

    source: 'mixture' (the sum of the four stems; name = the track), a stem name (that stem; name = the track)
    or 'stems' (every stem as its own item, named TRACK/STEM)."""
    from ..data.datasets import list_tracks, load_track
    if source not in ("mixture", "stems") and source not in STEMS:
        raise ConfigError(f"unknown item source '{source}' (known: mixture, stems, {', '.join(STEMS)})")
    out = []
    T = None if seconds is None else int(round(seconds * sr))
    for track in list_tracks(data, split)[:max_tracks]:
        stems = load_track(track, sr)
        if source == "mixture":
            parts = [(track.name, stems.sum(0))]
        elif source == "stems":
            parts = [(f"{track.name}/{s}", stems[i]) for i, s in enumerate(STEMS)]
        else:
            parts = [(track.name, stems[STEMS.index(source)])]
        for name, x in parts:
            if T is not None:
                start = max(0, (x.shape[-1] - T) // 2)
                x = x[start:start + T]
            out.append((name, x.contiguous()))
    return out


def concatenated_mixture(data, split: str | None, seconds: float, sr: int = SAMPLE_RATE) -> torch.Tensor:
    """A `seconds` mixture (1, 1, T): the split's track mixtures end to end (repeated when too short)."""
    from ..data.datasets import list_tracks, load_track
    need, parts, have = int(round(seconds * sr)), [], 0
    tracks = list_tracks(data, split)
    for i in range(10_000):
        mix = load_track(tracks[i % len(tracks)], sr).sum(0)
        parts.append(mix)
        have += mix.shape[-1]
        if have >= need:
            break
    return torch.cat(parts)[:need].reshape(1, 1, -1)


# ------------------------------------------------------------------ records
@dataclass
class CodecRecord(Record):
    """One item through one system at one bitrate. system: the codec's name or 'opus'; level: codebooks
    (None: Opus or a continuous codec); kbps: nominal code rate (codec) or measured payload rate (Opus);
    metrics: {name: value} (Opus: after delay compensation); lag: measured delay of the output (samples);
    seconds: wall time of encode + decode (Opus: opusenc + opusdec + resampling)."""
    system: str
    item: str
    level: int | None
    kbps: float
    metrics: dict[str, float]
    bandwidth_khz: float
    lag: float
    seconds: float
    samples: int
    file_kbps: float | None = None
    request_kbps: float | None = None
    shift: float | None = None
    si_sdr_raw: float | None = None


@dataclass
class CodecSummary(Record):
    """One system at one bitrate over every item: metric means, the bandwidth of the summed band powers, the
    median delay and every item's, the mean rates, total time and audio."""
    system: str
    level: int | None
    kbps: float
    items: int
    metrics: dict[str, float]
    bandwidth_khz: float
    lag: float
    lags: list[float]
    seconds: float
    audio_seconds: float
    file_kbps: float | None = None
    request_kbps: float | None = None
    si_sdr_raw: float | None = None

    @property
    def xrt(self) -> float:
        return self.audio_seconds / max(self.seconds, 1e-9)


@dataclass
class CodeUsage(Record):
    """One RVQ level over the codes of every item: fraction of the codebook used, perplexity, entropy (bits)."""
    level: int
    used: float
    perplexity: float
    bits: float


@dataclass
class CodecEvaluation(Record):
    """A codec (and optionally Opus) over a list of items: per-item records and per-bitrate summaries, in
    level order then Opus in requested-rate order. usage: code usage at the highest evaluated level
    (`code_usage=True`), over `usage_frames` frames per level. opus: the opusenc version line, or None with
    `opus_skipped` saying why when Opus was asked for but not run."""
    name: str
    sample_rate: int
    hop_length: int | None
    num_codebooks: int | None
    codebook_size: int | None
    continuous: bool
    levels: list[int | None]
    metric_names: list[str]
    items: list[str]
    item_samples: list[int]
    records: list[CodecRecord] = field(default_factory=list)
    summaries: list[CodecSummary] = field(default_factory=list)
    usage: list[CodeUsage] | None = None
    usage_frames: int | None = None
    opus: str | None = None
    opus_mode: str | None = None
    opus_skipped: str | None = None

    def codec(self, level: int | None = None) -> CodecSummary:
        """The codec's summary at `level` codebooks (default: the highest evaluated)."""
        rows = [s for s in self.summaries if s.system == self.name]
        if level is None:
            return rows[-1]
        for s in rows:
            if s.level == level:
                return s
        raise KeyError(f"level {level} was not evaluated (levels: {self.levels})")

    def codec_summaries(self) -> dict:
        """{level: summary} of the codec."""
        return {s.level: s for s in self.summaries if s.system == self.name}

    def opus_summaries(self) -> list[CodecSummary]:
        return [s for s in self.summaries if s.system == "opus"]


# ------------------------------------------------------------------ opus
def opus_available() -> bool:
    return bool(shutil.which("opusenc") and shutil.which("opusdec"))


def opus_version() -> str:
    return subprocess.run(["opusenc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]


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


def opus_kbps_request(bitrate_bps: float, mode: str = "hard-cbr") -> float:
    """kbit/s to ask opusenc for so that Opus gets at least `bitrate_bps` (hard CBR: next 400 bit/s step)."""
    if mode == "hard-cbr":
        return math.ceil(bitrate_bps / OPUS_CBR_STEP - 1e-9) * OPUS_CBR_STEP / 1000
    return bitrate_bps / 1000


def opus_roundtrip(x: np.ndarray, kbps: float, tmp: Path, mode: str = "hard-cbr",
                   sr: int = SAMPLE_RATE) -> tuple[np.ndarray, float]:
    """x (T,) at `sr` -> (decoded (T,) at `sr`, measured Opus payload kbit/s)."""
    import soundfile as sf
    from ..audio import resample
    wav_in, enc, wav_out = tmp / "in.wav", tmp / "enc.opus", tmp / "out.wav"
    sf.write(wav_in, x, sr, subtype="PCM_16")
    flag = "--hard-cbr" if mode == "hard-cbr" else "--vbr"
    subprocess.run(["opusenc", "--quiet", flag, "--music", "--framesize", str(OPUS_FRAME_MS),
                    "--bitrate", f"{kbps:.3f}", str(wav_in), str(enc)], check=True, capture_output=True)
    subprocess.run(["opusdec", "--quiet", "--float", "--rate", "48000", str(enc), str(wav_out)],
                   check=True, capture_output=True)
    y, rate = sf.read(wav_out, dtype="float32", always_2d=True)
    y = resample(y[:, 0], rate, sr)
    if abs(len(y) - len(x)) > 2:
        raise RuntimeError(f"opusdec returned {len(y)} samples for {len(x)} (pre-skip/end trimming broken?)")
    y = np.pad(y, (0, max(0, len(x) - len(y))))[:len(x)]
    audio_packets = ogg_packets(enc)[2:]                     # OpusHead, OpusTags
    payload = sum(audio_packets) * 8 / (len(audio_packets) * OPUS_FRAME_MS / 1000) / 1000
    return y, payload


def _mono_items(items) -> list[tuple[str, torch.Tensor]]:
    out = []
    for name, x in items:
        x = torch.as_tensor(x)
        if x.dim() == 2 and x.shape[0] == 1:
            x = x[0]
        if x.dim() != 1:
            raise ConfigError(f"{name}: Opus rows need mono items, got shape {tuple(x.shape)}")
        out.append((name, x))
    return out


def evaluate_opus(items, kbps_list, mode: str = "hard-cbr", metrics=DEFAULT_METRICS, sr: int = SAMPLE_RATE,
                  progress: bool = False) -> tuple[list[CodecRecord], list[CodecSummary]]:
    """Opus at each requested kbit/s over the (mono) items -> (records, one summary per request)."""
    from tqdm import tqdm
    from ..metrics.sisdr import si_sdr
    items = _mono_items(items)
    records, summaries = [], []
    with tempfile.TemporaryDirectory(prefix="latentmix_opus_") as tmp:
        for kbps in tqdm(kbps_list, desc="opus", disable=None if progress else True, file=sys.stderr):
            decoded, payloads, lags, secs = [], [], [], []
            for _, x in items:
                t0 = time.perf_counter()
                y, rate = opus_roundtrip(x.numpy(), kbps, Path(tmp), mode, sr)
                secs.append(time.perf_counter() - t0)
                decoded.append(y)
                payloads.append(rate)
                lags.append(xcorr_lag(y, x.numpy()))
            lag = float(np.median(lags))
            vals = {m: [] for m in metrics}
            raw, bws = [], []
            ref_pow, est_pow = 0, 0
            for i, ((name, x), y) in enumerate(zip(items, decoded)):
                ref = x.reshape(1, 1, -1)
                rp, ep = band_power(x, sr), band_power(torch.from_numpy(y), sr)
                ref_pow, est_pow = ref_pow + rp, est_pow + ep
                q = score(torch.from_numpy(shift(y, lag)).reshape(1, 1, -1), ref, metrics, sr)
                r = float(si_sdr(torch.from_numpy(y), x, zero_mean=True))
                for m in metrics:
                    vals[m].append(float(q[m][0]))
                raw.append(r)
                bws.append(bandwidth_khz(ep, rp, sr))
                records.append(CodecRecord(system="opus", item=name, level=None, kbps=payloads[i],
                                           metrics={m: float(q[m][0]) for m in metrics}, bandwidth_khz=bws[-1],
                                           lag=lags[i], seconds=secs[i], samples=int(x.shape[-1]),
                                           request_kbps=float(kbps), shift=lag, si_sdr_raw=r))
            summaries.append(CodecSummary(
                system="opus", level=None, kbps=float(np.mean(payloads)), items=len(items),
                metrics={m: float(np.mean(v)) for m, v in vals.items()},
                bandwidth_khz=bandwidth_khz(est_pow, ref_pow, sr),
                lag=lag, lags=[float(v) for v in lags], seconds=float(sum(secs)),
                audio_seconds=sum(x.shape[-1] for _, x in items) / sr, request_kbps=float(kbps),
                si_sdr_raw=float(np.mean(raw))))
    return records, summaries


def match_opus(bitrate_kbps: float, opus_rows) -> CodecSummary | None:
    """The Opus summary with the smallest measured rate >= bitrate_kbps, if within 10% above it."""
    ok = [r for r in opus_rows if bitrate_kbps - 1e-6 <= r.kbps <= 1.1 * bitrate_kbps]
    return min(ok, key=lambda r: r.kbps) if ok else None


# ------------------------------------------------------------------ the codec loop
def _as_batch(x: torch.Tensor, channels: int) -> torch.Tensor:
    x = torch.as_tensor(x).float()
    if x.dim() == 1:
        x = x[None]
    if x.dim() != 2 or x.shape[0] != channels:
        raise InputError(f"an item of shape {tuple(x.shape)} does not fit a {channels}-channel codec")
    return x[None]                                                             # (1, C, T)


def _levels(codec, levels, continuous: bool, file_bitrate: bool, code_usage_stats: bool) -> list:
    if continuous:
        if file_bitrate or code_usage_stats:
            raise ConfigError("a continuous (VAE) codec has no codes: no file bitrate or code usage")
        return [None]
    N = int(codec.num_codebooks)
    levels = list(range(1, N + 1)) if levels is None else list(dict.fromkeys(int(n) for n in levels))
    bad = [n for n in levels if not 1 <= n <= N]
    if bad or not levels:
        raise ConfigError(f"levels must be in 1..{N}, got {levels}")
    return levels


def _roundtrip(codec, x3, n, continuous: bool, chunk_frames):
    """(codes or None, reconstruction (1, C, >= T)) of x3 (1, C, T) at n codebooks."""
    if continuous:
        return None, codec.decode_latents(codec.encode_latents(x3))
    if chunk_frames:
        codes = codec.encode_chunked(x3, n, chunk_frames)
        return codes, codec.decode_chunked(codes, chunk_frames)
    codes = codec.encode(x3, n)
    return codes, codec.decode(codes)


def _score_item(codec, name, item, x3, ys, per, metrics, sr, acc, records) -> None:
    """Score one item's reconstructions ys (one per level) into the accumulators and records."""
    T = x3.shape[-1]
    q = score(torch.cat(ys), x3, metrics, sr)
    xm = x3[0].mean(0)
    rp = band_power(x3, sr)
    for i, (n, dt, fk) in enumerate(per):
        a = acc[n]
        ep = band_power(ys[i], sr)
        a["ref"], a["est"] = a["ref"] + rp, a["est"] + ep
        lag = xcorr_lag(ys[i][0].mean(0).numpy(), xm.numpy())
        vals = {m: float(q[m][i]) for m in metrics}
        for m in metrics:
            a["vals"][m].append(vals[m])
        a["lags"].append(lag)
        a["secs"] += dt
        if fk is not None:
            a["files"].append(fk)
        records.append(CodecRecord(system=name, item=item, level=n, kbps=nominal_kbps(codec, n), metrics=vals,
                                   bandwidth_khz=bandwidth_khz(ep, rp, sr), lag=lag, seconds=dt, samples=int(T),
                                   file_kbps=fk))


def _add_opus(ev, codec, items, opus_kbps, opus_match, opus_min_kbps, opus_mode, metrics, sr, channels,
              progress) -> None:
    """Opus rows beside the codec's: at `opus_kbps` and (opus_match) at the codec's nominal or file rates."""
    wanted = {float(k) for k in opus_kbps}
    if opus_match is not None and not ev.continuous:
        for s in list(ev.summaries):
            rate = codec.bitrate(s.level) if opus_match == "nominal" else s.file_kbps * 1000
            if rate / 1000 >= opus_min_kbps:
                wanted.add(opus_kbps_request(rate, opus_mode))
    if not wanted:
        return
    ev.opus_mode = opus_mode
    if not opus_available():
        ev.opus_skipped = "opusenc/opusdec not found (Debian package opus-tools)"
        return
    if channels != 1:
        raise ConfigError("Opus rows need a mono codec")
    orecs, osums = evaluate_opus([(n, x3[0, 0]) for n, x3 in items], sorted({round(k, 3) for k in wanted}),
                                 opus_mode, metrics, sr, progress)
    ev.records += orecs
    ev.summaries += osums
    ev.opus = opus_version()


def evaluate_codec(codec, items, levels=None, *, name: str = "codec", metrics=DEFAULT_METRICS,
                   file_bitrate: bool = False, model_id: dict | None = None, chunk_frames: int | None = None,
                   warmup: bool = False, code_usage_stats: bool = False, opus_kbps=(), opus_match: str | None = None,
                   opus_min_kbps: float = MIN_COMPARE_KBPS, opus_mode: str = "hard-cbr", progress: bool = False,
                   on_decoded=None) -> CodecEvaluation:
    """Round-trip every item through `codec` at every level, score it, and optionally Opus beside it.

    items: [(name, audio (T,) or (C, T))] at the codec's rate (load_items). levels: numbers of codebooks
    (default 1..num_codebooks; ignored for a continuous codec). metrics: names in METRICS.
    file_bitrate: also measure the size of the .lmxc file `latentmix codec encode` would write (model_id: the
    model file's identity in its header). chunk_frames: chunked encode/decode (None: whole items). warmup: one
    untimed encode + decode of the first item first. code_usage_stats: per-level code usage at the highest level.
    Opus: at each of `opus_kbps` (kbit/s asked of opusenc) and, with opus_match 'nominal' or 'file', at the
    smallest reachable rate >= the codec's nominal or file rate at every evaluated level of at least
    `opus_min_kbps`; skipped (opus_skipped says why) when opus-tools are missing. on_decoded(item, level,
    y (C, T)) sees every reconstruction.
    """
    from tqdm import tqdm
    if opus_match not in (None, "nominal", "file"):
        raise ConfigError(f"opus_match must be None, 'nominal' or 'file', not {opus_match!r}")
    if opus_match == "file" and not file_bitrate:
        raise ConfigError("opus_match='file' needs file_bitrate=True")
    sr, channels = int(codec.sample_rate), int(getattr(codec, "channels", 1))
    continuous = bool(getattr(codec, "is_continuous", False))
    levels = _levels(codec, levels, continuous, file_bitrate, code_usage_stats)
    items = [(str(n), _as_batch(x, channels)) for n, x in items]
    if not items:
        raise InputError("no items to evaluate")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ConfigError(f"unknown codec metric '{unknown[0]}' (known: {', '.join(METRICS)})")
    top = None if continuous else max(levels)
    acc = {n: {"vals": {m: [] for m in metrics}, "lags": [], "secs": 0.0, "files": [], "ref": 0, "est": 0}
           for n in levels}
    records, full = [], []
    with tempfile.TemporaryDirectory(prefix="latentmix_codec_") as tmp, torch.inference_mode():
        if warmup:
            _roundtrip(codec, items[0][1], top, continuous, chunk_frames)
        for item, x3 in tqdm(items, desc=name, disable=None if progress else True, file=sys.stderr):
            T = x3.shape[-1]
            ys, per = [], []
            for n in levels:
                t0 = time.perf_counter()
                codes, y = _roundtrip(codec, x3, n, continuous, chunk_frames)
                dt = time.perf_counter() - t0
                ys.append(y[..., :T])
                fk = file_kbps(codec, codes, T, Path(tmp) / "item.lmxc", chunk_frames, model_id, source=item) \
                    if file_bitrate else None
                if n == top and code_usage_stats:
                    full.append(codes[0])
                per.append((n, dt, fk))
                if on_decoded is not None:
                    on_decoded(item, n, ys[-1][0])
            _score_item(codec, name, item, x3, ys, per, metrics, sr, acc, records)
    audio_s = sum(x3.shape[-1] for _, x3 in items) / sr
    summaries = [CodecSummary(
        system=name, level=n, kbps=nominal_kbps(codec, n), items=len(items),
        metrics={m: float(np.mean(v)) for m, v in acc[n]["vals"].items()},
        bandwidth_khz=bandwidth_khz(acc[n]["est"], acc[n]["ref"], sr), lag=float(np.median(acc[n]["lags"])),
        lags=[float(v) for v in acc[n]["lags"]], seconds=acc[n]["secs"], audio_seconds=audio_s,
        file_kbps=float(np.mean(acc[n]["files"])) if acc[n]["files"] else None) for n in levels]
    ev = CodecEvaluation(name=name, sample_rate=sr, hop_length=getattr(codec, "hop_length", None),
                         num_codebooks=None if continuous else int(codec.num_codebooks),
                         codebook_size=None if continuous else int(codec.codebook_size), continuous=continuous,
                         levels=list(levels), metric_names=list(metrics), items=[n for n, _ in items],
                         item_samples=[int(x3.shape[-1]) for _, x3 in items], records=records, summaries=summaries)
    if code_usage_stats:
        codes = torch.cat(full, -1)
        ev.usage, ev.usage_frames = code_usage(codes, int(codec.codebook_size)), int(codes.shape[-1])
    _add_opus(ev, codec, items, opus_kbps, opus_match, opus_min_kbps, opus_mode, metrics, sr, channels, progress)
    return ev


def file_kbps(codec, codes: torch.Tensor, length: int, path: Path, chunk_frames: int | None = None,
              model_id: dict | None = None, **extra) -> float:
    """Write codes (1, K, F) of a `length`-sample signal as a .lmxc file at `path` -> its size x 8 / duration
    in kbit/s (header, codes and CRC: what storing the item costs), with the codec contract's header."""
    from ..codec.codefile import write_codes
    write_codes(path, codes, codec.code_header(length, chunk_frames, model_id, **extra))
    return Path(path).stat().st_size * 8 / (length / codec.sample_rate) / 1000


def nominal_kbps(codec, n) -> float:
    """The codec's raw code rate at n codebooks in kbit/s (NaN for a continuous codec)."""
    return float("nan") if n is None else codec.bitrate(n) / 1000


# ------------------------------------------------------------------ speed
@dataclass
class CodecSpeed(Record):
    """Encode (all codebooks) + decode of `audio_s` seconds: x real time, best and median of the repeats, and
    audio seconds per process CPU second."""
    threads: int
    best: float
    median: float
    per_cpu_s: float
    times: list[float]
    audio_s: float


def codec_speed(codec, x: torch.Tensor, threads: int, repeats: int = 3) -> CodecSpeed:
    """Time encode + decode of x (1, C, T) with `threads` torch threads: one warm-up, then `repeats` runs (a
    continuous codec: through its latents)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    audio_s = x.shape[-1] / codec.sample_rate
    times, cpu = [], []
    if getattr(codec, "is_continuous", False):
        def trip():
            return codec.decode_latents(codec.encode_latents(x))
    else:
        def trip():
            return codec.decode(codec.encode(x))
    try:
        with torch.inference_mode():
            trip()
            for _ in range(repeats):
                t, c = time.perf_counter(), time.process_time()
                trip()
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
    finally:
        torch.set_num_threads(before)
    return CodecSpeed(threads=threads, best=audio_s / min(times), median=audio_s / statistics.median(times),
                      per_cpu_s=audio_s / min(cpu), times=times, audio_s=audio_s)


def flops_per_second(codec, seconds: float = 4.0) -> float:
    """GFLOP per audio second of encode + decode (FlopCounterMode: convolutions and matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode
    x = torch.zeros(1, codec.channels, int(seconds * codec.sample_rate))
    # no_grad, not inference_mode: FlopCounterMode's module tracker fails on inference-mode weight-norm weights
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        codec.decode(codec.encode(x))
    return counter.get_total_flops() / seconds / 1e9


def profile_summary(codec, x: torch.Tensor, threads: int, top: int = 6) -> list[tuple[str, float, float]]:
    """[(op, self CPU ms, % of self CPU)] of one encode + decode of x, the `top` most expensive ops."""
    from torch.profiler import ProfilerActivity, profile
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            codec.decode(codec.encode(x))
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                codec.decode(codec.encode(x))
    finally:
        torch.set_num_threads(before)
    events = [e for e in prof.key_averages()]
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [(e.key, e.self_cpu_time_total / 1000, 100 * e.self_cpu_time_total / total) for e in events[:top]]
