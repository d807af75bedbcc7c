"""Generation, scored (issue #17): held-out NLL of a code prior beside unigram/bigram baselines, prompt adherence
and a Frechet distance through a clip classifier, tempo kept by continuations, and generation speed. Plain records.

- evaluate_nll(prior, held_out_folders, train_folders, window): bits per token per level on non-overlapping
  `window`-frame windows of held-out code shards (a text prior with each track's caption, and without it),
  beside code_ngrams' unigram and bigram fitted on the training shards and scored on the same windows.
- evaluate_adherence(generator, classifier, held_out, ...): the classifier (evaluation.clips) on real held-out
  clips, on those clips through the codec at the prior's levels, on unconditional clips and on clips prompted
  with held-out captions at each CFG coefficient; accuracy against the prompts' labels, Frechet distance of the
  classifier embedding against real clips of other held-out tracks, and the real-vs-real floor.
- evaluate_continuation(generator, tracks, ...): the song's first seconds continued; librosa's beat tracker on
  the prompt (through the codec) and on the continued part; same tempo within 5 %, half, double or other; the
  real song's next seconds against its own prompt are the tracker's reference.
- evaluate_levels(codec, clips, levels): what dropping the finer levels costs: held-out clips through the codec
  at each number of levels, mel / log-mel distance and SI-SDR against the clip (a prior models its first K).
- evaluate_speed(generator, ...): seconds to make N s of audio (codes, decode), tokens/s with and without the KV
  cache at given batches, an RQ-Transformer of matched size beside it, and a torch.profiler summary.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ConfigError
from . import clips as C
from .code_ngrams import CodeNGrams
from .records import Record


# ------------------------------------------------------------------------------------------------ held-out NLL
@dataclass
class LevelNLL(Record):
    level: int
    prior: float                       # bits per token
    unigram: float
    bigram: float
    prior_uncond: float | None = None  # a text prior without its caption


@dataclass
class NLLResult(Record):
    windows: int
    window_frames: int
    tokens_per_level: int
    train_tokens_per_level: int
    levels: list[LevelNLL] = field(default_factory=list)

    def mean(self, name: str) -> float | None:
        vals = [getattr(lv, name) for lv in self.levels]
        return None if any(v is None for v in vals) else float(np.mean(vals))


def code_windows(tracks, frames: int, max_per_track: int | None = None) -> tuple[np.ndarray, list[int]]:
    """Non-overlapping `frames`-frame windows (N, K, frames) int64 from (K, F) code arrays, with each window's
    track index; tracks shorter than one window give none."""
    out, owner = [], []
    for i, codes in enumerate(tracks):
        n = codes.shape[1] // frames
        for j in range(n if max_per_track is None else min(n, max_per_track)):
            out.append(np.asarray(codes[:, j * frames:(j + 1) * frames], dtype=np.int64))
            owner.append(i)
    if not out:
        raise ConfigError(f"no held-out track holds a {frames}-frame window")
    return np.stack(out), owner


@torch.inference_mode()
def prior_bits(prior, windows: np.ndarray, cond: torch.Tensor | None = None, batch: int = 16) -> np.ndarray:
    """(L,) summed bits per level of the prior over windows (N, >= L, W) (cond (N, 1, D) or None)."""
    levels = int(prior.config["num_codebooks"])
    sums = np.zeros(levels)
    for i in range(0, len(windows), batch):
        x = torch.as_tensor(windows[i:i + batch, :levels])
        c = None if cond is None else cond[i:i + batch]
        out = prior.loss(x, c)
        sums += np.array([float(out[f"prior/nll_l{k}"]) for k in range(levels)]) * x.shape[0] * x.shape[-1]
    return sums / math.log(2)


def evaluate_nll(prior, held_out: list, train: list, frames: int, captions: list[str] | None = None,
                 max_per_track: int | None = None, encoder=None) -> NLLResult:
    """held_out/train: lists of (K, F) code arrays (CodeWindows(...).codes); `captions` per held-out track for a
    text prior (`encoder` encodes them; default priors.text.TextEncoder)."""
    levels, vocab = int(prior.config["num_codebooks"]), int(prior.config["codebook_size"])
    windows, owner = code_windows(held_out, frames, max_per_track)
    grams = CodeNGrams(levels, vocab).fit(train)
    base = grams.bits(windows)
    cond = None
    if int(prior.config.get("cond_dim", 0)) > 0:
        if captions is None:
            raise ConfigError("a text prior's NLL needs the held-out captions")
        if encoder is None:
            from ..priors.text import TextEncoder
            encoder = TextEncoder()
        emb = encoder.encode(list(captions))
        cond = emb[torch.as_tensor(owner)]
    bits = prior_bits(prior, windows, cond)
    unc = prior_bits(prior, windows, None) if cond is not None else None
    n = len(windows) * frames
    rows = [LevelNLL(k, bits[k] / n, base["unigram"][k] / n, base["bigram"][k] / n,
                     None if unc is None else unc[k] / n) for k in range(levels)]
    return NLLResult(len(windows), frames, n, grams.tokens, rows)


# --------------------------------------------------------------------------------------------- clip generation
def generate_clips(generator, prompts: list[str] | None, n: int, seconds: float, cfg: float = 3.0,
                   seed: int = 0, batch: int = 16, **kw) -> np.ndarray:
    """(n, T) audio: clips for `prompts` (n of them), or n unconditional clips (a text prior's null prefix)."""
    from ..priors import CodeTransformer
    from ..priors.sampling import generate
    out = []
    for i in range(0, n, batch):
        b = min(batch, n - i)
        if prompts is not None:
            wav = generator.generate(prompts[i:i + b], seconds=seconds, cfg=cfg, seed=seed + i, **kw)
        else:
            frames = int(round(seconds * generator.codec.frame_rate))
            with torch.inference_mode():
                if isinstance(generator.prior, CodeTransformer):
                    codes = generate(generator.prior, frames, batch=b, seed=seed + i, **kw)
                else:
                    codes = generator.prior.generate(frames, batch=b, seed=seed + i, **kw)
                wav = generator.codec.decode_chunked(codes).clamp(-1, 1)
        out.append(wav[:, 0].numpy())
    return np.concatenate(out)


@torch.inference_mode()
def through_codec(codec, wav: np.ndarray, levels: int, batch: int = 16) -> np.ndarray:
    """Clips (N, T) encoded with the first `levels` levels and decoded: what a perfect prior could give."""
    out = []
    for i in range(0, len(wav), batch):
        x = torch.as_tensor(wav[i:i + batch])[:, None]
        y = codec.decode_chunked(codec.encode_chunked(x, levels))[..., :x.shape[-1]]
        out.append(y[:, 0].clamp(-1, 1).numpy())
    return np.concatenate(out)


# ---------------------------------------------------------------------------------------------- adherence, FD
@dataclass
class ClipScores(Record):
    condition: str                     # "real", "real via codec", "unconditional", "cfg 3", ...
    clips: int
    accuracy: dict[str, float]
    frechet: float | None = None
    seconds: float | None = None       # wall time to generate (and decode) them


@dataclass
class AdherenceResult(Record):
    clip_seconds: float
    train_clips: int
    held_out_clips: int
    prompts: int
    reference_clips: int               # real clips of the other held-out tracks (the FD reference)
    chance: dict[str, float]           # the training set's majority class, on the prompts' labels
    uniform: dict[str, float]          # 1 / number of classes
    real_accuracy: dict[str, float]    # the classifier on every real held-out clip
    rows: list[ClipScores] = field(default_factory=list)


def fit_classifier(train: C.Clips, epochs: int = 400, seed: int = 0):
    """(classifier, training labels) from labelled clips."""
    labels = C.targets(train)
    return C.train_classifier(C.features(train.wav, train.sr), labels, epochs=epochs, seed=seed), labels


def _split_prompts(held_out: C.Clips, n: int) -> tuple[C.Clips, C.Clips]:
    """(prompt clips: the first clip of n held-out tracks spread over the list, reference: every clip of the
    other tracks)."""
    tracks = list(dict.fromkeys(held_out.track))
    if n >= len(tracks):
        raise ConfigError(f"{n} prompts need more than {n} held-out tracks (have {len(tracks)})")
    chosen = {tracks[int(i)] for i in np.linspace(0, len(tracks) - 1, n).round()}
    first = [held_out.track.index(t) for t in tracks if t in chosen]
    ref = [i for i, t in enumerate(held_out.track) if t not in chosen]
    return held_out.subset(first), held_out.subset(ref)


def _score(name, classifier, wav, sr, want, ref_emb, seconds=None) -> ClipScores:
    f = C.features(wav, sr)
    acc = C.accuracy(classifier.predict(f), want)
    return ClipScores(name, len(wav), acc, C.frechet_distance(classifier.embedding(f), ref_emb), seconds)


def evaluate_adherence(generator, classifier, train_labels: dict, held_out: C.Clips, prompts: int = 32,
                       cfgs=(1.0, 2.0, 3.0, 4.0, 5.0), seed: int = 0, batch: int = 16, **kw) -> AdherenceResult:
    """Score real, codec round-trip, unconditional and prompted clips (len(held_out.wav[0]) samples each)."""
    sr, seconds = held_out.sr, held_out.wav.shape[1] / held_out.sr
    real_acc = C.accuracy(classifier.predict(C.features(held_out.wav, sr)), C.targets(held_out))
    sel, ref = _split_prompts(held_out, prompts)
    want = C.targets(sel)
    ref_emb = classifier.embedding(C.features(ref.wav, sr))
    res = AdherenceResult(seconds, len(train_labels["style"]), len(held_out), len(sel), len(ref),
                          C.chance(train_labels, want),
                          {k: 1.0 / len(v) for k, v in classifier.classes.items()}, real_acc)
    res.rows.append(_score("real", classifier, sel.wav, sr, want, ref_emb))
    res.rows.append(_score(f"real via codec ({generator.levels} levels)", classifier,
                           through_codec(generator.codec, sel.wav, generator.levels, batch), sr, want, ref_emb))
    t = time.perf_counter()
    wav = generate_clips(generator, None, len(sel), seconds, seed=seed, batch=batch, **kw)
    res.rows.append(_score("unconditional", classifier, wav, sr, want, ref_emb, time.perf_counter() - t))
    if generator.conditional:
        for cfg in cfgs:
            t = time.perf_counter()
            wav = generate_clips(generator, sel.caption, len(sel), seconds, cfg=cfg, seed=seed, batch=batch, **kw)
            res.rows.append(_score(f"cfg {cfg:g}", classifier, wav, sr, want, ref_emb, time.perf_counter() - t))
    return res


# ------------------------------------------------------------------------------------------------ continuation
def beat_tempo(wav: np.ndarray, sr: int) -> float:
    """Tempo (bpm) of a mono clip by librosa's beat tracker (0.0 where it finds no beat)."""
    import librosa
    tempo, _ = librosa.beat.beat_track(y=np.asarray(wav, dtype=np.float32), sr=sr)
    return float(np.atleast_1d(tempo)[0])


def tempo_relation(bpm: float, reference: float, tol: float = 0.05) -> str:
    """'same' within tol of the reference, 'double' / 'half' within tol of twice / half of it, else 'other'."""
    if bpm <= 0 or reference <= 0:
        return "other"
    r = bpm / reference
    for name, target in (("same", 1.0), ("double", 2.0), ("half", 0.5)):
        if abs(r / target - 1.0) <= tol:
            return name
    return "other"


@dataclass
class ContinuationItem(Record):
    track: str
    tempo: float                       # metadata.json
    prompt_bpm: float                  # tracker, on the prompt through the codec
    continued_bpm: float               # tracker, on the generated continuation
    real_prompt_bpm: float             # tracker, on the real prompt
    real_next_bpm: float               # tracker, on the song's real next seconds
    generated: str                     # tempo_relation(continued, prompt)
    real: str                          # tempo_relation(real next, real prompt)


@dataclass
class ContinuationResult(Record):
    prompt_seconds: float
    continue_seconds: float
    cfg: float
    items: list[ContinuationItem] = field(default_factory=list)

    def fractions(self, which: str) -> dict[str, float]:
        n = max(1, len(self.items))
        return {k: sum(getattr(i, which) == k for i in self.items) / n for k in ("same", "half", "double", "other")}


def evaluate_continuation(generator, held_out: C.Clips, prompt_seconds: float, cfg: float = 3.0, seed: int = 0,
                          batch: int = 8, **kw) -> ContinuationResult:
    """held_out clips (N, P + S samples) from the start of held-out songs: the first prompt_seconds are the prompt,
    the rest the real continuation; the generator continues each prompt (with its caption for a text prior)."""
    sr = held_out.sr
    p = int(round(prompt_seconds * sr))
    rest = held_out.wav.shape[1] - p
    if p <= 0 or rest <= 0:
        raise ConfigError(f"the clips must be longer than the {prompt_seconds} s prompt")
    res = ContinuationResult(prompt_seconds, rest / sr, cfg)
    for i in range(0, len(held_out), batch):
        part = held_out.subset(range(i, min(len(held_out), i + batch)))
        prompt = torch.as_tensor(part.wav[:, :p])[:, None]
        caps = part.caption if generator.conditional else None
        with torch.inference_mode():
            codes = generator.generate_codes(caps, seconds=rest / sr, batch=len(part), prompt_audio=prompt,
                                             cfg=cfg, seed=seed + i, **kw)
            wav = generator.codec.decode_chunked(codes).clamp(-1, 1)[:, 0].numpy()
        cut = generator.encode_prompt(prompt).shape[-1] * generator.codec.hop_length
        for j in range(len(part)):
            pb, cb = beat_tempo(wav[j, :cut], sr), beat_tempo(wav[j, cut:], sr)
            rp, rn = beat_tempo(part.wav[j, :p], sr), beat_tempo(part.wav[j, p:], sr)
            res.items.append(ContinuationItem(part.track[j], part.tempo[j], pb, cb, rp, rn,
                                              tempo_relation(cb, pb), tempo_relation(rn, rp)))
    return res


# ------------------------------------------------------------------------------------------------------- speed
@dataclass
class SpeedRow(Record):
    model: str
    params: int
    batch: int
    cache: bool
    frames: int
    seconds: float
    cpu_seconds: float                 # process CPU time (all threads): the cost apart from other processes' load
    tokens_per_s: float                # codes (batch x levels x frames) per wall-clock second


@dataclass
class SpeedResult(Record):
    threads: int
    audio_seconds: float
    cfg: float
    codes_seconds: float               # sampling the codes of audio_seconds at batch 1 (CFG doubles the rows)
    decode_seconds: float
    cpu_seconds: float                 # process CPU time of codes + decode (all threads)
    rq_config: dict
    rows: list[SpeedRow] = field(default_factory=list)
    profile: list[dict] = field(default_factory=list)   # torch.profiler: op, self CPU ms, share, calls

    @property
    def total_seconds(self) -> float:
        return self.codes_seconds + self.decode_seconds

    @property
    def realtime_factor(self) -> float:
        return self.audio_seconds / self.total_seconds


# ------------------------------------------------------------------------------------------------ levels modelled
@dataclass
class LevelsRow(Record):
    levels: int
    mel: float                         # metrics.spectral.mel_distance (DAC's 7 scales, summed)
    log_mel: float                     # the bandwidth-neutral log-mel distance (codec v2 issue)
    si_sdr: float


@dataclass
class LevelsResult(Record):
    clips: int
    clip_seconds: float
    modelled: int                      # the levels the prior models
    total: int                         # the codec's levels
    rows: list[LevelsRow] = field(default_factory=list)


@torch.inference_mode()
def evaluate_levels(codec, wavs, levels, modelled: int, sr: int = 22050) -> LevelsResult:
    """Held-out clips wavs (N, T) encoded once with all levels, decoded with the first K of each `levels`; the
    distances (mean over clips) say what the levels a prior drops would have added."""
    from ..metrics.sisdr import si_sdr
    from ..metrics.spectral import log_mel_distance, mel_distance
    x = torch.as_tensor(np.asarray(wavs, dtype=np.float32))[:, None]          # (N, 1, T)
    codes = torch.cat([codec.encode(c) for c in x.split(4)])
    res = LevelsResult(len(x), x.shape[-1] / sr, modelled, codec.num_codebooks)
    for k in sorted(set(int(v) for v in levels if 0 < v <= codec.num_codebooks)):
        y = torch.cat([codec.decode(c[:, :k], x.shape[-1]) for c in codes.split(4)])
        res.rows.append(LevelsRow(k, float(mel_distance(y, x).mean()), float(log_mel_distance(y, x).mean()),
                                  float(si_sdr(y[:, 0], x[:, 0]).mean())))
    return res


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def matched_rq(prior, max_depth: int = 12):
    """A random-init RQTransformer of the prior's width, levels, codebook and condition whose parameter count is
    nearest the prior's (spatial depth 1..max_depth, depth-transformer layers 1..3)."""
    from ..priors import RQTransformer
    c = prior.config
    want, best = n_params(prior), None
    for depth in range(1, max_depth + 1):
        for layers in (1, 2, 3):
            torch.manual_seed(0)
            m = RQTransformer(c["num_codebooks"], c["codebook_size"], dim=c["dim"], depth=depth, depth_layers=layers,
                              heads=c["heads"], cond_dim=c.get("cond_dim", 0), context=c.get("context", 1024))
            if best is None or abs(n_params(m) - want) < abs(n_params(best) - want):
                best = m
    return best.eval()


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of fn()."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def token_rate(model, name: str, frames: int, batch: int, cache: bool, seed: int = 0) -> SpeedRow:
    """Unconditional sampling of `frames` frames at `batch` (null prefix for a text prior), timed."""
    from ..priors import CodeTransformer
    from ..priors.sampling import generate
    if isinstance(model, CodeTransformer):
        s, cpu = _timed(lambda: generate(model, frames, batch=batch, seed=seed, use_cache=cache))
    else:
        if not cache:
            raise ConfigError("the RQ-Transformer is measured with its caches only")
        s, cpu = _timed(lambda: model.generate(frames, batch=batch, seed=seed))
    k = int(model.config["num_codebooks"])
    return SpeedRow(name, n_params(model), batch, cache, frames, s, cpu, batch * k * frames / s)


def profile_generation(generator, prompt, seconds: float, cfg: float, top: int = 10) -> list[dict]:
    """The top ops by self CPU time while generating `seconds` of codes (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        generator.generate_codes(prompt, seconds=seconds, cfg=cfg, seed=0)
    ev = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in ev) or 1.0
    return [{"op": e.key, "self_ms": e.self_cpu_time_total / 1e3, "share": e.self_cpu_time_total / total,
             "calls": int(e.count)} for e in ev[:top]]


def evaluate_speed(generator, seconds: float = 10.0, cfg: float = 3.0, prompt: str | None = None,
                   batches=(1, 64), frames: int = 64, threads: int = 2, profile_seconds: float = 1.0,
                   rq: bool = True) -> SpeedResult:
    """Wall-clock generation speed on `threads` torch threads (restored afterwards)."""
    old = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        cond = prompt if generator.conditional else None
        if cond is None:
            cfg = 1.0
        generator.generate_codes(cond, seconds=0.2, cfg=cfg, seed=0)                        # warm-up
        holder = {}
        t_codes, c_codes = _timed(lambda: holder.setdefault("c", generator.generate_codes(cond, seconds=seconds,
                                                                                          cfg=cfg, seed=0)))
        with torch.inference_mode():
            t_dec, c_dec = _timed(lambda: generator.codec.decode_chunked(holder["c"]))
        other = matched_rq(generator.prior) if rq else None
        res = SpeedResult(int(threads), seconds, cfg, t_codes, t_dec, c_codes + c_dec,
                          dict(other.config) if other else {})
        name = f"{generator.prior.config.get('pattern', '')} transformer".strip()
        for b in batches:
            for cache in (True, False):
                res.rows.append(token_rate(generator.prior, name, frames, b, cache))
            if other is not None:
                res.rows.append(token_rate(other, "RQ-Transformer (random init)", frames, b, True))
        res.profile = profile_generation(generator, cond, profile_seconds, cfg)
        return res
    finally:
        torch.set_num_threads(old)
