"""Seeded procedural composer: a Song of note events (bass, drums, guitar, piano, optionally other) with style,
harmony and a caption. `compose(seed, seconds)` is pure and deterministic; `Song.to_midi` writes a track per stem.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

STEM_ORDER = ("bass", "drums", "guitar", "piano")
STYLES = ("rock", "funk", "pop", "jazz", "electronic", "ballad")
KEY_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MIDI_CHANNEL = {"bass": 0, "guitar": 1, "piano": 2, "other": 3, "drums": 9}
# General MIDI drum keys
KICK, SNARE, RIM, CLOSED_HAT, OPEN_HAT, PEDAL_HAT, CRASH, RIDE = 36, 38, 37, 42, 46, 44, 49, 51
TOMS = (50, 47, 45, 43)

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)

# style -> (tempo range, swing range, progressions as scale degrees (0-based), chords per bar)
_STYLE = {
    "rock": ((100, 160), (0.5, 0.5), [(0, 4, 5, 3), (0, 3, 4, 3), (0, 6, 3, 0), (5, 3, 0, 4)], 1),
    "funk": ((92, 124), (0.5, 0.58), [(0, 3, 0, 3), (0, 0, 3, 4), (1, 4, 0, 0), (0, 6, 3, 0)], 1),
    "pop": ((90, 132), (0.5, 0.52), [(0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4), (3, 0, 4, 5)], 1),
    "jazz": ((96, 170), (0.6, 0.68), [(1, 4, 0, 0), (0, 5, 1, 4), (2, 5, 1, 4), (3, 6, 2, 5)], 2),
    "electronic": ((112, 140), (0.5, 0.54), [(0, 5, 3, 4), (5, 3, 0, 6), (0, 0, 5, 3), (0, 3, 5, 4)], 1),
    "ballad": ((70, 92), (0.5, 0.56), [(0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 2, 3, 4)], 1),
}
# Slakh/GM programs: bass 32-39, guitar 24-31, piano 0-7
_PROGRAMS = {
    "rock": {"bass": (33, 34), "guitar": (29, 30, 27), "piano": (0, 1)},
    "funk": {"bass": (36, 37, 33), "guitar": (27, 28), "piano": (4, 7, 5)},
    "pop": {"bass": (33, 34, 38), "guitar": (25, 27, 24), "piano": (0, 1, 4)},
    "jazz": {"bass": (32, 35), "guitar": (26, 24), "piano": (0, 4, 2)},
    "electronic": {"bass": (38, 39), "guitar": (27, 28, 31), "piano": (4, 5, 6)},
    "ballad": {"bass": (33, 35, 32), "guitar": (24, 25), "piano": (0, 2, 4)},
}
PROGRAM_NAMES = {
    0: "acoustic piano", 1: "bright piano", 2: "electric grand", 3: "honky-tonk piano", 4: "electric piano",
    5: "FM electric piano", 6: "harpsichord", 7: "clavinet", 24: "nylon guitar", 25: "steel-string guitar",
    26: "jazz guitar", 27: "clean electric guitar", 28: "muted guitar", 29: "overdriven guitar",
    30: "distorted guitar", 31: "guitar harmonics", 32: "upright bass", 33: "fingered bass", 34: "picked bass",
    35: "fretless bass", 36: "slap bass", 37: "slap bass", 38: "synth bass", 39: "synth bass",
    40: "violin", 48: "string ensemble", 49: "slow strings", 50: "synth strings", 51: "synth strings",
    56: "trumpet", 57: "trombone", 61: "brass section", 62: "synth brass", 63: "synth brass", 80: "square lead",
    81: "sawtooth lead", 84: "charang lead", 87: "bass-and-lead synth", 88: "new age pad", 89: "warm pad",
    90: "polysynth pad", 91: "choir pad", 94: "halo pad", 95: "sweep pad",
}
_STYLE_NOUN = {"rock": "rock song", "funk": "funk groove", "pop": "pop tune", "jazz": "swinging jazz tune",
               "electronic": "electronic track", "ballad": "ballad"}
_KIT = {"rock": "a driving drum kit", "funk": "a tight drum kit", "pop": "a steady drum kit",
        "jazz": "a ride-cymbal swing kit", "electronic": "four-on-the-floor drums", "ballad": "soft drums"}


@dataclass
class Note:
    """One note event; drums use General MIDI drum keys as `pitch`."""
    stem: str
    pitch: int
    start_s: float
    dur_s: float
    velocity: int


@dataclass
class Song:
    """A composed song: attributes, chord list [(start_s, root_pc, intervals)], sections and note events."""
    seed: int
    seconds: float
    tempo: float
    key: str
    mode: str
    style: str
    swing: float
    programs: dict
    chords: list
    sections: list            # [(start_s, end_s, {stem: plays})]
    notes: list = field(default_factory=list)
    caption: str = ""

    @property
    def stems(self) -> tuple[str, ...]:
        """The song's stems: STEM_ORDER, plus 'other' when the song has an other part."""
        return STEM_ORDER + (("other",) if "other" in self.programs else ())

    def stem_notes(self, stem: str) -> list:
        return [n for n in self.notes if n.stem == stem]

    def metadata(self) -> dict:
        return {"seed": self.seed, "seconds": self.seconds, "tempo": round(self.tempo, 3), "key": self.key,
                "mode": self.mode, "style": self.style, "swing": round(self.swing, 3), "programs": self.programs,
                "caption": self.caption, "n_notes": {s: len(self.stem_notes(s)) for s in self.stems}}

    def to_mido(self):
        """The song as a mido.MidiFile: a tempo track then one track per stem (drums on channel 10)."""
        import mido
        tpb = 480
        mf = mido.MidiFile(ticks_per_beat=tpb, type=1)
        meta = mido.MidiTrack()
        meta.append(mido.MetaMessage("set_tempo", tempo=int(round(60e6 / self.tempo)), time=0))
        meta.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
        mf.tracks.append(meta)
        ticks = lambda s: int(round(s * self.tempo / 60.0 * tpb))  # noqa: E731
        for stem in self.stems:
            tr = mido.MidiTrack()
            tr.append(mido.MetaMessage("track_name", name=stem, time=0))
            ch = MIDI_CHANNEL[stem]
            if stem != "drums":
                tr.append(mido.Message("program_change", channel=ch, program=self.programs[stem], time=0))
            ev = []
            for n in self.stem_notes(stem):
                on, off = ticks(n.start_s), max(ticks(n.start_s + n.dur_s), ticks(n.start_s) + 1)
                ev.append((on, 1, n.pitch, n.velocity))
                ev.append((off, 0, n.pitch, 0))
            ev.sort(key=lambda e: (e[0], e[1], e[2]))
            now = 0
            for t, is_on, pitch, vel in ev:
                typ = "note_on" if is_on else "note_off"
                tr.append(mido.Message(typ, channel=ch, note=pitch, velocity=vel, time=t - now))
                now = t
            mf.tracks.append(tr)
        return mf

    def to_midi(self, path) -> None:
        """Write the song as a type-1 MIDI file (atomic)."""
        from ..fileio import atomic_path
        with atomic_path(path) as tmp:
            self.to_mido().save(str(tmp))


# ----------------------------------------------------------------------------------- composition

class _Ctx:
    def __init__(self, rng, song: Song, beat: float):
        self.rng, self.song, self.beat = rng, song, beat
        self.notes: list[Note] = []

    def t(self, bar: int, step16: float) -> float:
        """Time of a 16th step inside a bar, with swing applied to off-beat 8ths (and 16ths)."""
        beat_i, sub = divmod(step16, 4)
        sw = self.song.swing
        frac = {0: 0.0, 1: sw / 2, 2: sw, 3: sw + (1 - sw) / 2}.get(sub, sub / 4)
        return (bar * 4 + beat_i + frac) * self.beat

    def add(self, stem, pitch, start, dur, vel):
        if start >= self.song.seconds - 0.02:
            return
        j = self.rng.normal(0, 0.006) if stem != "drums" else self.rng.normal(0, 0.003)
        start = max(0.0, start + j)
        dur = max(0.03, min(dur, self.song.seconds - start))
        vel = int(np.clip(round(vel + self.rng.normal(0, 5)), 12, 127))
        self.notes.append(Note(stem, int(pitch), round(float(start), 5), round(float(dur), 5), vel))


def _chord_at(song: Song, t: float):
    cur = song.chords[0]
    for c in song.chords:
        if c[0] <= t + 1e-6:
            cur = c
    return cur


def _drums(c: _Ctx, bar: int, fill: bool, crash: bool, dyn: float):
    rng, style = c.rng, c.song.style
    v = lambda base: base * dyn  # noqa: E731
    if crash:
        c.add("drums", CRASH, c.t(bar, 0), 1.5, v(110))
    hat = RIDE if style == "jazz" else CLOSED_HAT
    if style == "jazz":
        for s in (0, 4, 6, 8, 12, 14):
            c.add("drums", RIDE, c.t(bar, s), 0.3, v(80 if s % 4 else 95))
        for s in (4, 12):
            c.add("drums", PEDAL_HAT, c.t(bar, s), 0.1, v(70))
        c.add("drums", KICK, c.t(bar, 0), 0.2, v(60))
        if rng.random() < 0.5:
            c.add("drums", SNARE, c.t(bar, int(rng.choice([6, 10, 14]))), 0.1, v(55))
    else:
        kick = {"rock": [0, 8, 10], "funk": [0, 3, 10, 13], "pop": [0, 6, 8],
                "electronic": [0, 4, 8, 12], "ballad": [0, 10]}[style]
        if style in ("rock", "funk", "pop") and rng.random() < 0.4:
            kick = sorted(set(kick + [int(rng.choice([2, 7, 11, 14]))]))
        for s in kick:
            c.add("drums", KICK, c.t(bar, s), 0.25, v(112 if s == 0 else 100))
        for s in (4, 12):
            c.add("drums", RIM if style == "ballad" else SNARE, c.t(bar, s), 0.2, v(108))
        if style == "funk":
            for s in (7, 9, 15):
                if rng.random() < 0.5:
                    c.add("drums", SNARE, c.t(bar, s), 0.1, v(45))  # ghost notes
        step = 1 if style in ("funk", "electronic") else 2
        for s in range(0, 16, step):
            if style == "electronic":
                if s % 4 == 2:
                    c.add("drums", OPEN_HAT, c.t(bar, s), 0.25, v(90))
                elif s % 2 == 0 or rng.random() < 0.3:
                    c.add("drums", CLOSED_HAT, c.t(bar, s), 0.06, v(60))
                continue
            acc = 92 if s % 4 == 0 else 70
            if style == "rock" and s == 14 and rng.random() < 0.3:
                c.add("drums", OPEN_HAT, c.t(bar, s), 0.2, v(85))
            else:
                c.add("drums", hat, c.t(bar, s), 0.08, v(acc))
    if fill:  # last beat(s) of a section: snare/tom roll replaces what was there
        start_beat = 3 if rng.random() < 0.6 else 2
        t0 = c.t(bar, start_beat * 4)
        c.notes = [n for n in c.notes if not (n.stem == "drums" and n.start_s >= t0 - 0.01
                                              and n.start_s < (bar + 1) * 4 * c.beat)]
        for k, s in enumerate(range(start_beat * 4, 16)):
            pitch = SNARE if rng.random() < 0.4 else TOMS[min(k * len(TOMS) // (16 - start_beat * 4), 3)]
            c.add("drums", pitch, c.t(bar, s), 0.15, v(70 + 3 * k))


def _bass(c: _Ctx, bar: int, dyn: float):
    rng, song = c.rng, c.song
    style = song.style
    for half in range(2 if style == "jazz" else 1):
        seg0 = half * 8
        _, root, ivs = _chord_at(song, c.t(bar, seg0) + 1e-3)
        base = 28 + (root - 4) % 12        # E1..D#2
        fifth, octave = base + 7, base + 12
        third = base + ivs[1]
        if style == "jazz":  # walking quarters with a chromatic approach into the next chord
            nxt = _chord_at(song, c.t(bar, seg0 + 8) + 1e-3)[1]
            tgt = 28 + (nxt - 4) % 12
            line = [base, third if rng.random() < 0.5 else fifth, fifth if rng.random() < 0.5 else octave,
                    tgt + (1 if rng.random() < 0.5 else -1)]
            for k, p in enumerate(line[:2] if half == 0 else line[2:]):
                c.add("bass", p, c.t(bar, seg0 + 4 * k), c.beat * 0.9, 85 * dyn)
            continue
        pats = {"rock": [(s, base, 1.7) for s in range(0, 16, 2)],
                "pop": [(0, base, 5), (6, base, 1.7), (8, fifth, 3.5), (12, base, 2), (14, octave, 1.7)],
                "funk": [(0, base, 1), (3, octave, 0.5), (6, base, 0.8), (7, fifth, 0.5), (10, base, 1),
                         (12, octave, 0.5), (14, base - 2 if base > 30 else base + 10, 0.8)],
                "electronic": [(s, base if s % 8 else octave, 1.6) for s in range(2, 16, 4)] + [(0, base, 1.6)],
                "ballad": [(0, base, 7.5), (8, fifth if rng.random() < 0.5 else base, 7.5)]}[style]
        for s, p, d in pats:
            if style == "funk" and s not in (0, 10) and rng.random() < 0.25:
                continue
            c.add("bass", p, c.t(bar, s), d * c.beat / 4 * 0.95, (100 if s == 0 else 88) * dyn)


def _voicing(root_pc: int, ivs, low: int, n: int, rng) -> list[int]:
    """Close voicing of the chord tones starting at/above `low`, `n` notes, random inversion."""
    tones = [(root_pc + i) % 12 for i in ivs]
    start = int(rng.integers(len(tones)))
    out, p = [], low
    for k in range(n):
        pc = tones[(start + k) % len(tones)]
        p = p + ((pc - p) % 12)
        if out and p <= out[-1]:
            p += 12
        out.append(p)
    return out


def _guitar(c: _Ctx, bar: int, dyn: float, arpeggio: bool):
    rng, style = c.rng, c.song.style
    for half in range(2):
        seg0 = half * 8
        _, root, ivs = _chord_at(c.song, c.t(bar, seg0) + 1e-3)
        if style == "rock" and c.song.programs["guitar"] in (29, 30):
            r = 40 + (root - 4) % 12
            chord = [r, r + 7, r + 12]          # power chord
        else:
            chord = _voicing(root, ivs, 52, 4 if style != "jazz" else 3, rng)
        if arpeggio:
            order = chord + chord[1:-1][::-1]
            for k, s in enumerate(range(seg0, seg0 + 8, 1 if style == "electronic" else 2)):
                c.add("guitar", order[k % len(order)], c.t(bar, s), c.beat * 0.9, 75 * dyn)
            continue
        if style == "jazz":
            hits, dur = [(seg0 + 4, 0.4)], c.beat * 0.45
        elif style == "funk":
            hits, dur = [(seg0 + s, 0.25) for s in (0, 2, 3, 6) if rng.random() < 0.75], c.beat * 0.18
        elif style == "ballad":
            hits, dur = [(seg0, 1.0)], c.beat * 3.8
        else:
            hits, dur = [(seg0 + s, 0.5) for s in (0, 3, 6)], c.beat * 0.9
        for s, _ in hits:
            down = (s % 4) == 0
            strum = chord if down else chord[::-1]
            for k, p in enumerate(strum):
                c.add("guitar", p, c.t(bar, s) + k * 0.012, dur, (90 if down else 72) * dyn)


def _piano(c: _Ctx, bar: int, dyn: float):
    rng, style = c.rng, c.song.style
    for half in range(2):
        seg0 = half * 8
        _, root, ivs = _chord_at(c.song, c.t(bar, seg0) + 1e-3)
        rh = _voicing(root, ivs, 60, len(ivs) if style == "jazz" else 3, rng)
        lh = 36 + (root - 0) % 12 + (12 if root < 4 else 0)
        if style == "jazz":
            hits = [(seg0 + int(rng.choice([2, 3, 6])), c.beat * 0.6)]
            chord = [lh + ivs[1] + 12 if len(ivs) > 1 else lh] + rh[1:]
        elif style == "ballad":
            hits, chord = [(seg0, c.beat * 1.9), (seg0 + 4, c.beat * 1.9)] if rng.random() < 0.5 else \
                [(seg0, c.beat * 3.8)], [lh] + rh
        elif style == "funk":
            hits, chord = [(seg0 + s, c.beat * 0.2) for s in (2, 5) if rng.random() < 0.8], rh
        elif style == "electronic":
            hits, chord = [(seg0, c.beat * 3.9)], rh + [rh[0] + 12]
        else:
            hits, chord = [(seg0 + s, c.beat * 0.95) for s in (0, 4)], [lh] + rh
        for s, d in hits:
            for k, p in enumerate(chord):
                c.add("piano", p, c.t(bar, s) + k * 0.002, d, (82 - 6 * (k == 0)) * dyn)


def _plan_sections(rng, n_bars: int) -> list[tuple[int, int, dict]]:
    """Sections of 2 or 4 bars with the stems that play; every stem plays somewhere, and some rest exists."""
    sec_len = 4 if n_bars >= 8 else 2
    bounds = [(b, min(b + sec_len, n_bars)) for b in range(0, n_bars, sec_len)]
    plays = [{s: bool(rng.random() < 0.8) for s in STEM_ORDER} for _ in bounds]
    if len(bounds) < 3:   # too short for a stem to sit out a whole section
        plays = [{s: True for s in STEM_ORDER} for _ in bounds]
    else:  # guarantee at least one rest and that every stem plays in a full section
        if all(all(p.values()) for p in plays[:-1]):
            plays[int(rng.integers(len(bounds)))][STEM_ORDER[int(rng.integers(4))]] = False
    full = max(1, len(bounds) - 1)
    for k, s in enumerate(STEM_ORDER):
        if not any(p[s] for p in plays[:full]):
            plays[(k + int(rng.integers(full))) % full][s] = True
    for p in plays:  # never fewer than two stems at once
        while sum(p.values()) < 2:
            p[STEM_ORDER[int(rng.integers(4))]] = True
    return [(a, b, p) for (a, b), p in zip(bounds, plays)]


def compose(seed: int, seconds: float, other_prob: float = 0.0) -> Song:
    """Compose a song of `seconds` length, fully determined by `seed` (same seed -> identical Song).

    With probability `other_prob` (decided by a generator of its own, so the four stems do not depend on it) the
    song has an 'other' part: pad, lead or brass stabs on a strings/brass/synth program, MIDI channel 4.
    """
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    if not 0.0 <= other_prob <= 1.0:
        raise ValueError("other_prob must be in [0, 1]")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0xC0FFEE]))
    style = STYLES[int(rng.integers(len(STYLES)))]
    (t_lo, t_hi), (s_lo, s_hi), progs, chords_per_bar = _STYLE[style]
    tempo = float(round(rng.uniform(t_lo, t_hi)))
    swing = float(rng.uniform(s_lo, s_hi))
    key_pc = int(rng.integers(12))
    mode = "minor" if rng.random() < (0.6 if style in ("funk", "ballad", "electronic") else 0.4) else "major"
    scale = MINOR if mode == "minor" else MAJOR
    programs = {s: int(rng.choice(_PROGRAMS[style][s])) for s in ("bass", "guitar", "piano")}
    programs["drums"] = 0
    beat = 60.0 / tempo
    n_bars = max(1, math.ceil(seconds / (4 * beat)))
    prog = progs[int(rng.integers(len(progs)))]
    chords = []
    for bar in range(n_bars):
        for h in range(chords_per_bar):
            deg = prog[(bar * chords_per_bar + h) % len(prog)]
            root = (key_pc + scale[deg]) % 12
            third = (scale[(deg + 2) % 7] - scale[deg]) % 12
            fifth = (scale[(deg + 4) % 7] - scale[deg]) % 12
            ivs = (0, third, fifth)
            if style == "jazz" or (style in ("funk", "ballad") and rng.random() < 0.5):
                ivs = ivs + ((scale[(deg + 6) % 7] - scale[deg]) % 12,)
            chords.append((round((bar * 4 + h * 4 / chords_per_bar) * beat, 5), root, ivs))
    sections = _plan_sections(rng, n_bars)
    song = Song(seed=int(seed), seconds=float(seconds), tempo=tempo, key=KEY_NAMES[key_pc], mode=mode, style=style,
                swing=swing, programs=programs, chords=chords,
                sections=[(round(a * 4 * beat, 5), round(min(b * 4 * beat, seconds), 5), p) for a, b, p in sections])
    c = _Ctx(rng, song, beat)
    guitar_arp = style in ("ballad", "electronic") or (style == "pop" and rng.random() < 0.4)
    for si, (a, b, plays) in enumerate(sections):
        for bar in range(a, b):
            dyn = float(np.clip(0.8 + 0.25 * (bar - a) / max(1, b - a) + rng.normal(0, 0.04), 0.6, 1.1))
            if style == "ballad":
                dyn *= 0.8
            if plays["drums"]:
                _drums(c, bar, fill=(bar == b - 1 and b - a >= 2), crash=(bar == a and si > 0), dyn=dyn)
            if plays["bass"]:
                _bass(c, bar, dyn)
            if plays["guitar"]:
                _guitar(c, bar, dyn, guitar_arp)
            if plays["piano"]:
                _piano(c, bar, dyn)
    orng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0x07E4]))
    if orng.random() < other_prob:
        from .other_part import compose_other
        c.notes += compose_other(_Ctx(orng, song, beat), sections, key_pc, scale)
    song.notes = sorted(c.notes, key=lambda n: (n.start_s, n.stem, n.pitch))
    for s in song.stems:  # a very short song might end before a stem's first note: give it one
        if not song.stem_notes(s):
            pitch = {"bass": 40, "drums": KICK, "guitar": 52, "piano": 60, "other": 67}[s]
            song.notes.append(Note(s, pitch, 0.0, min(0.5, seconds), 80))
    song.notes.sort(key=lambda n: (n.start_s, n.stem, n.pitch))
    mood = ("an energetic" if tempo >= 135 else "an upbeat" if tempo >= 108 else
            "a mid-tempo" if tempo >= 88 else "a slow")
    if mode == "minor" and tempo < 100:
        mood = "a moody"
    names = [PROGRAM_NAMES[programs[s]] for s in song.stems if s != "drums"]
    song.caption = (f"{mood} {_STYLE_NOUN[style]} in {song.key} {mode} at {int(tempo)} bpm with "
                    f"{', '.join(names)} and {_KIT[style]}")
    return song
