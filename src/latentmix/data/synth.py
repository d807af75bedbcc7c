"""Procedural numpy renderer: a composed Song -> per-stem waveforms with per-song random timbres.

Vectorised per note (no per-sample Python loops); Karplus-Strong runs one vector op per period. Shapes: (time,).
"""
from __future__ import annotations

import numpy as np
from scipy import signal

from .composer import (CLOSED_HAT, CRASH, KICK, OPEN_HAT, PEDAL_HAT, RIDE, RIM, SNARE, TOMS, Song)

_LEVEL_DB = {"bass": -17.0, "drums": -19.0, "guitar": -20.0, "piano": -20.0, "other": -21.0}


def _mtof(p):
    return 440.0 * 2.0 ** ((np.asarray(p, dtype=np.float64) - 69.0) / 12.0)


def _adsr(n: int, sr: int, gate: int, attack: float, decay: float, sustain: float, release: float) -> np.ndarray:
    """Amplitude envelope (n,): linear attack, exponential decay to `sustain`, exponential release after `gate`."""
    t = np.arange(n) / sr
    env = sustain + (1.0 - sustain) * np.exp(-np.maximum(t - attack, 0.0) / max(decay, 1e-4))
    env *= np.minimum(1.0, t / max(attack, 1e-4))
    if gate < n:
        rel = np.exp(-(t[gate:] - t[gate]) / max(release, 1e-4))
        env[gate:] = env[gate] * rel
    return env


def _fade(x: np.ndarray, sr: int, ms: float = 4.0) -> np.ndarray:
    k = min(len(x), max(1, int(sr * ms / 1000)))
    x[-k:] *= np.linspace(1.0, 0.0, k)
    return x


def karplus_strong(f0: float, n: int, sr: int, t60: float, bright: float, rng) -> np.ndarray:
    """Plucked string (n,) by Karplus-Strong, vectorised one period at a time.

    Loop filter taps y[n-N], y[n-N-1], y[n-N-2] with weights ((1-a)/2, 1/2, a/2) give delay N+0.5+a, so the
    pitch is exact; every tap is at least one period back, so a whole period is computed as one vector op.
    """
    period = sr / f0
    big_n = max(2, int(np.floor(period - 0.5)))
    a = float(np.clip(period - 0.5 - big_n, 0.0, 1.0))
    g = 10.0 ** (-3.0 * period / (sr * max(t60, 1e-3)))
    w0, w1, w2 = g * (1 - a) / 2, g * 0.5, g * a / 2
    exc = rng.uniform(-1.0, 1.0, big_n)
    exc = signal.lfilter([1.0 - bright], [1.0, -bright], exc)  # duller pluck for larger `bright`
    exc -= exc.mean()
    pad = big_n + 2
    y = np.zeros(pad + n + big_n)
    y[pad:pad + big_n] = exc
    for s in range(pad + big_n, pad + n, big_n):
        e = s + big_n
        y[s:e] = w0 * y[s - big_n:e - big_n] + w1 * y[s - big_n - 1:e - big_n - 1] + w2 * y[s - big_n - 2:e - big_n - 2]
    return y[pad:pad + n]


class _Timbres:
    """Per-song random timbre parameters for every stem, drawn from one generator."""

    def __init__(self, song: Song, rng: np.random.Generator, sr: int):
        self.sr = sr
        u = rng.uniform
        bass_prog, gtr_prog, pno_prog = (song.programs[s] for s in ("bass", "guitar", "piano"))
        self.bass = dict(
            kind=("fm" if bass_prog in (36, 37) else "sine" if bass_prog == 32 else
                  str(rng.choice(["saw", "square"])) if bass_prog in (38, 39) else str(rng.choice(["saw", "fm", "square"]))),
            lo=u(150, 400), hi=u(900, 3500), fdecay=u(0.04, 0.3), attack=u(0.002, 0.01), decay=u(0.1, 0.6),
            sustain=u(0.4, 0.85), release=u(0.03, 0.08), fm_ratio=float(rng.choice([1.0, 2.0, 0.5])),
            fm_index=u(0.8, 4.0), drive=u(1.0, 2.5))
        self.guitar = dict(kind="saw" if rng.random() < 0.25 else "ks", t60=u(0.8, 3.0) * (0.15 if gtr_prog == 28 else 1),
                           bright=u(0.0, 0.6), drive=u(3.0, 10.0) if gtr_prog in (29, 30) else 0.0,
                           lp=u(2500, 6000), release=u(0.03, 0.1))
        self.piano = dict(kind="ep" if pno_prog in (4, 5) else "pluck" if pno_prog in (6, 7) else "additive",
                          inharm=u(0.5e-4, 4e-4), tilt=u(1.0, 2.0), t60=u(1.5, 5.0), release=u(0.08, 0.2),
                          ep_index=u(0.5, 2.5), ep_ratio=float(rng.choice([1.0, 7.0, 14.0])), ep_tau=u(0.1, 0.5),
                          partials=int(rng.integers(6, 11)))
        self.drums = dict(kick_f0=u(110, 200), kick_f1=u(40, 62), kick_tau=u(0.015, 0.06), kick_decay=u(0.12, 0.4),
                          kick_click=u(0.05, 0.4), snare_tone=u(150, 250), snare_bp=u(1200, 5000),
                          snare_decay=u(0.08, 0.25), snare_mix=u(0.3, 0.7), hat_hp=u(5500, 8500),
                          hat_closed=u(0.025, 0.07), hat_open=u(0.2, 0.45), cym_decay=u(0.8, 1.8),
                          ride_ratio=u(1.2, 1.6), tom_decay=u(0.15, 0.4))
        self.reverb = dict(rt60=u(0.25, 1.1), wet={"bass": u(0.0, 0.05), "drums": u(0.02, 0.12),
                                                     "guitar": u(0.05, 0.25), "piano": u(0.05, 0.25)})


def _other_timbre(program: int, rng: np.random.Generator) -> dict:
    """Timbre of the 'other' part from its GM program: bowed strings (40-51), brass (56-63), synth lead (80-87) or
    a detuned-saw pad (88-95), with slower attacks and longer releases than the four stems."""
    u = rng.uniform
    kind = "bowed" if program <= 51 else "brass" if program <= 63 else "lead" if program <= 87 else "pad"
    attack, release = {"bowed": (u(0.08, 0.3), u(0.15, 0.4)), "brass": (u(0.03, 0.08), u(0.08, 0.2)),
                       "lead": (u(0.01, 0.04), u(0.05, 0.15)), "pad": (u(0.3, 0.9), u(0.4, 1.0))}[kind]
    return dict(kind=kind, attack=attack, release=release, decay=u(0.2, 0.8), sustain=u(0.6, 0.9),
                detune=u(6.0, 18.0), voices=int(rng.integers(3, 6)), lp=u(1200, 4000), hi=u(2500, 6000),
                vib_rate=u(4.5, 6.5), vib_depth=u(0.002, 0.006) if kind in ("bowed", "lead") else 0.0,
                vib_delay=u(0.15, 0.5), formants=(u(400, 700), u(1200, 2500)), scoop=u(0.01, 0.04),
                square=bool(rng.random() < 0.5))


# ------------------------------------------------------------------------------------ voices

def _bass_note(p: dict, f0: float, n: int, gate: int, sr: int, vel: float) -> np.ndarray:
    t = np.arange(n) / sr
    fenv = np.exp(-t / p["fdecay"]) * (0.4 + 0.6 * vel)
    if p["kind"] == "fm":
        x = np.sin(2 * np.pi * f0 * t + p["fm_index"] * fenv * np.sin(2 * np.pi * p["fm_ratio"] * f0 * t))
    elif p["kind"] == "sine":
        x = np.tanh(1.5 * np.sin(2 * np.pi * f0 * t))
    else:
        ph = (f0 * t) % 1.0
        raw = 2.0 * ph - 1.0 if p["kind"] == "saw" else np.where(ph < 0.5, 1.0, -1.0)
        lo = signal.sosfilt(signal.butter(2, min(p["lo"], 0.45 * sr), fs=sr, output="sos"), raw)
        hi = signal.sosfilt(signal.butter(2, min(p["hi"], 0.45 * sr), fs=sr, output="sos"), raw)
        x = lo + fenv * (hi - lo)
    x = np.tanh(p["drive"] * x) / np.tanh(p["drive"])
    return x * _adsr(n, sr, gate, p["attack"], p["decay"], p["sustain"], p["release"])


def _guitar_note(p: dict, f0: float, n: int, gate: int, sr: int, vel: float, rng) -> np.ndarray:
    if p["kind"] == "ks":
        x = karplus_strong(f0, n, sr, p["t60"] * (110.0 / f0) ** 0.3, p["bright"] * (1.2 - vel), rng)
        env = np.ones(n)
    else:
        t = np.arange(n) / sr
        x = 2.0 * ((f0 * t + rng.random()) % 1.0) - 1.0
        x = signal.sosfilt(signal.butter(2, min(p["lp"] * (0.5 + vel), 0.45 * sr), fs=sr, output="sos"), x)
        env = np.exp(-t / (p["t60"] / 6.9))
    if gate < n:
        env = env * np.concatenate([np.ones(gate), np.exp(-np.arange(n - gate) / (sr * p["release"]))])
    return x * env


def _piano_note(p: dict, f0: float, n: int, gate: int, sr: int, vel: float, rng) -> np.ndarray:
    t = np.arange(n) / sr
    t60 = p["t60"] * (261.6 / f0) ** 0.5
    if p["kind"] == "pluck":
        x = karplus_strong(f0, n, sr, t60 * 0.5, 0.1, rng)
    elif p["kind"] == "ep":
        mod = p["ep_index"] * (0.5 + vel) * np.exp(-t / p["ep_tau"])
        x = np.sin(2 * np.pi * f0 * t + mod * np.sin(2 * np.pi * p["ep_ratio"] * f0 * t)) * np.exp(-t / (t60 / 6.9))
    else:
        k = np.arange(1, p["partials"] + 1)
        fk = k * f0 * np.sqrt(1.0 + p["inharm"] * k ** 2)
        keep = fk < 0.45 * sr
        k, fk = k[keep], fk[keep]
        amp = k ** -(p["tilt"] - 0.6 * vel)
        dec = (t60 / 6.9) / (1.0 + 0.4 * (k - 1))
        x = (amp[:, None] * np.exp(-t[None, :] / dec[:, None])
             * np.sin(2 * np.pi * fk[:, None] * t[None, :])).sum(0) / amp.sum()
        h = min(n, int(0.004 * sr))
        x[:h] += rng.normal(0, 0.3 * vel, h) * np.linspace(1, 0, h)  # hammer thump
    x = x * np.minimum(1.0, t / 0.002)
    if gate < n:
        x[gate:] *= np.exp(-np.arange(n - gate) / (sr * p["release"]))
    return x


def _other_note(p: dict, f0: float, n: int, gate: int, sr: int, vel: float, rng) -> np.ndarray:
    t = np.arange(n) / sr
    env = _adsr(n, sr, gate, p["attack"], p["decay"], p["sustain"], p["release"])
    lowpass = lambda fc, x: signal.sosfilt(signal.butter(2, min(fc, 0.45 * sr), fs=sr, output="sos"), x)  # noqa: E731
    if p["kind"] == "pad":       # detuned saws, slowly filtered
        cents = np.linspace(-p["detune"], p["detune"], p["voices"])
        ph = f0 * 2.0 ** (cents[:, None] / 1200.0) * t[None, :] + rng.random((p["voices"], 1))
        return lowpass(p["lp"], (2.0 * (ph % 1.0) - 1.0).mean(0)) * env
    vib = 1.0 + p["vib_depth"] * np.minimum(1.0, t / p["vib_delay"]) * np.sin(2 * np.pi * p["vib_rate"] * t)
    if p["kind"] == "brass":     # a pitch scoop into the note
        vib = vib * (1.0 - p["scoop"] * np.exp(-t / 0.04))
    ph = np.cumsum(f0 * vib) / sr + rng.random()
    raw = np.where(ph % 1.0 < 0.5, 1.0, -1.0) if p["kind"] == "lead" and p["square"] else 2.0 * (ph % 1.0) - 1.0
    if p["kind"] == "bowed":     # two body resonances over a dull saw, plus bow noise
        body = sum(signal.sosfilt(signal.butter(2, [0.7 * fc, min(1.4 * fc, 0.45 * sr)], "bandpass", fs=sr,
                                                output="sos"), raw) for fc in p["formants"])
        x = lowpass(p["lp"], raw) + 1.5 * body + 0.02 * rng.normal(0, 1, n)
    elif p["kind"] == "brass":   # brightness follows the amplitude envelope
        lo, hi = lowpass(p["lp"] * 0.4, raw), lowpass(p["hi"] * (0.6 + 0.6 * vel), raw)
        x = lo + env * (hi - lo)
    else:
        x = lowpass(p["hi"], raw)
    return x * env


def _drum_voice(p: dict, key: int, sr: int, rng) -> np.ndarray:
    def sweep(f_hi, f_lo, tau, decay, length):
        t = np.arange(int(length * sr)) / sr
        f = f_lo + (f_hi - f_lo) * np.exp(-t / tau)
        return np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / decay)

    def noise(length, decay, sos=None):
        m = int(length * sr)
        x = rng.normal(0, 1, m)
        if sos is not None:
            x = signal.sosfilt(sos, x)
        return x * np.exp(-np.arange(m) / sr / decay)

    hp = signal.butter(4, min(p["hat_hp"], 0.45 * sr), "highpass", fs=sr, output="sos")
    if key == KICK:
        x = sweep(p["kick_f0"], p["kick_f1"], p["kick_tau"], p["kick_decay"], 0.6)
        x[:int(0.003 * sr)] += p["kick_click"] * rng.normal(0, 1, int(0.003 * sr))
    elif key in (SNARE, RIM):
        bp = signal.butter(2, [p["snare_bp"] * 0.5, min(p["snare_bp"] * 1.8, 0.45 * sr)], "bandpass", fs=sr,
                           output="sos")
        scale = 0.35 if key == RIM else 1.0
        tone = sweep(p["snare_tone"] * 1.3 * (2 if key == RIM else 1), p["snare_tone"], 0.01, 0.05, 0.4 * scale)
        nz = noise(0.4 * scale, p["snare_decay"] * scale, bp)
        nz /= np.abs(nz).max() + 1e-9
        x = (1 - p["snare_mix"]) * tone + p["snare_mix"] * nz
    elif key in (CLOSED_HAT, PEDAL_HAT):
        x = noise(0.25, p["hat_closed"] * (0.7 if key == PEDAL_HAT else 1.0), hp) * 0.6
    elif key == OPEN_HAT:
        x = noise(0.8, p["hat_open"], hp) * 0.6
    elif key in (CRASH, RIDE):
        length = p["cym_decay"] * 2.5
        t = np.arange(int(length * sr)) / sr
        freqs = 300 * p["ride_ratio"] ** np.arange(6) * (1.0 + 0.07 * rng.random(6))
        metal = np.sign(np.sin(2 * np.pi * freqs[:, None] * t[None, :])).sum(0)
        metal = signal.sosfilt(hp, metal) * np.exp(-t / p["cym_decay"])
        nz = noise(length, p["cym_decay"] * (0.6 if key == RIDE else 1.0), hp)
        x = (0.5 * metal / 6 + nz * (0.3 if key == RIDE else 0.7)) * (0.7 if key == RIDE else 1.0)
        if key == RIDE:
            x[:int(0.01 * sr)] *= 2.0
    else:  # toms
        idx = TOMS.index(key) if key in TOMS else 1
        f = p["kick_f0"] * (1.6 - 0.15 * idx)
        x = sweep(f * 1.4, f, 0.03, p["tom_decay"], 0.7)
    x = x - x.mean()
    return _fade(x, sr)


# ------------------------------------------------------------------------------------ stems

def _place(out: np.ndarray, start: int, wave: np.ndarray, gain: float) -> None:
    end = min(len(out), start + len(wave))
    if end > start:
        out[start:end] += gain * wave[:end - start]


def _render_stem(song: Song, stem: str, tim: _Timbres, n_total: int, sr: int, rng) -> np.ndarray:
    out = np.zeros(n_total)
    notes = song.stem_notes(stem)
    if stem == "drums":
        voices: dict = {}
        for k, nt in enumerate(notes):
            key = (nt.pitch, k % 3)  # three round-robin variants per drum voice
            if key not in voices:
                voices[key] = _drum_voice(tim.drums, nt.pitch, sr, rng)
            _place(out, int(round(nt.start_s * sr)), voices[key], (nt.velocity / 127.0) ** 1.5)
        return out
    cache: dict = {}
    release = getattr(tim, stem)["release"]
    for nt in notes:
        gate = int(round(nt.dur_s * 100))            # 10 ms buckets so repeated notes share one rendering
        vb = min(7, nt.velocity // 16)
        key = (nt.pitch, gate, vb)
        if key not in cache:
            g = int(gate * sr / 100)
            n = min(g + int(5 * release * sr) + 1, int(6 * sr))
            f0, v = float(_mtof(nt.pitch)), (vb + 0.5) / 8
            if stem == "bass":
                w = _bass_note(tim.bass, f0, n, g, sr, v)
            elif stem == "guitar":
                w = _guitar_note(tim.guitar, f0, n, g, sr, v, rng)
            elif stem == "other":
                w = _other_note(tim.other, f0, n, g, sr, v, rng)
            else:
                w = _piano_note(tim.piano, f0, n, g, sr, v, rng)
            w = w - w.mean()
            cache[key] = _fade(w, sr)
        _place(out, int(round(nt.start_s * sr)), cache[key], (nt.velocity / 127.0) ** 1.2)
    if stem == "guitar" and tim.guitar["drive"] > 0:
        d = tim.guitar["drive"]
        out = np.tanh(d * out / (np.abs(out).max() + 1e-9)) / np.tanh(d)
        out = signal.sosfilt(signal.butter(2, min(tim.guitar["lp"], 0.45 * sr), fs=sr, output="sos"), out)
    return out


def _active_rms(x: np.ndarray, sr: int) -> float:
    hop = max(1, sr // 20)
    m = len(x) // hop
    if m == 0:
        return float(np.sqrt(np.mean(x ** 2)) + 1e-12)
    e = (x[:m * hop].reshape(m, hop) ** 2).mean(1)
    active = e[e > e.max() * 1e-3] if e.max() > 0 else e
    return float(np.sqrt(active.mean()) + 1e-12)


def render_song(song: Song, sr: int = 22050, seed: int | None = None) -> dict[str, np.ndarray]:
    """Render `song` to {stem: float32 (time,)} at `sr`; the mixture is the exact sum of the stems.

    Timbres come from `seed` (default: the song's seed), so one seed gives byte-identical output. Stems are
    high-passed and mean-free; one song-level gain brings the mixture (and every stem) peak to <= 0.95. A song's
    'other' part draws from a generator of its own (the four stems' timbres do not depend on it).
    """
    seed = song.seed if seed is None else int(seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, 0x5EED]))
    tim = _Timbres(song, rng, sr)
    n_total = max(1, int(round(song.seconds * sr)))
    rt = tim.reverb["rt60"]
    t_ir = np.arange(int(min(rt, 1.0) * sr)) / sr
    ir = rng.normal(0, 1, len(t_ir)) * np.exp(-6.9 * t_ir / rt)
    ir /= np.sqrt((ir ** 2).sum()) + 1e-9
    hp = signal.butter(2, 25.0, "highpass", fs=sr, output="sos")
    orng = np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, 0x5EED, 0x07E4]))
    if "other" in song.stems:
        tim.other = _other_timbre(song.programs["other"], orng)
        tim.reverb["wet"]["other"] = orng.uniform(0.1, 0.35)
    stems = {}
    for stem in song.stems:
        r = orng if stem == "other" else rng
        x = _render_stem(song, stem, tim, n_total, sr, np.random.default_rng(r.integers(2 ** 63)))
        wet = tim.reverb["wet"][stem]
        if wet > 0 and len(ir) > 1:
            x = x + wet * signal.fftconvolve(x, ir)[:n_total] * 3.0
        x = signal.sosfilt(hp, x)
        x[:min(n_total, 64)] *= np.linspace(0, 1, min(n_total, 64))
        _fade(x, sr, 10.0)
        x -= x.mean()
        target = 10 ** ((_LEVEL_DB[stem] + r.uniform(-3, 3)) / 20)
        stems[stem] = (x * (target / _active_rms(x, sr))).astype(np.float32)
    mix = np.sum([stems[s] for s in song.stems], axis=0, dtype=np.float32)
    peak = max([float(np.abs(mix).max())] + [float(np.abs(v).max()) for v in stems.values()])
    gain = np.float32(0.945 / peak) if peak > 0.945 else np.float32(1.0)
    out = {}
    for s in song.stems:
        y = stems[s] * gain
        out[s] = (y - y.mean(dtype=np.float64)).astype(np.float32)
    return out
