"""The optional 'other' stem of a composed song: pads or strings on the harmony, a lead line, or brass stabs.

Called by composer.compose with a generator of its own, so a song's four stems never depend on it.
"""
from __future__ import annotations

import numpy as np

from .composer import _chord_at, _voicing

# role -> GM programs (strings 40-51, brass 56-63, synth lead 80-87, synth pad 88-95)
OTHER_ROLES = {"pad": (48, 49, 50, 51, 88, 89, 90, 91, 94, 95), "lead": (40, 56, 80, 81, 84, 87),
               "stabs": (57, 61, 62, 63)}


def compose_other(c, sections: list, key_pc: int, scale) -> list:
    """The other part's notes. c: a composer context whose rng is the part's own; sections: [(bar0, bar1, plays)].

    Picks a role (sustained chords 'pad', a 'lead' line or brass 'stabs') and a GM program of it (song.programs
    ['other']), plays in a random subset (at least one) of the sections and sets plays['other'] in each.
    """
    rng, song = c.rng, c.song
    role = ("pad", "lead", "stabs")[int(rng.choice(3, p=[0.5, 0.3, 0.2]))]
    song.programs["other"] = int(rng.choice(OTHER_ROLES[role]))
    on = [bool(rng.random() < 0.65) for _ in sections]
    if not any(on):
        on[int(rng.integers(len(sections)))] = True
    pitch = 72 + key_pc - (12 if key_pc > 5 else 0)       # the lead starts on the tonic, F#4..F5
    for (a, b, plays), play in zip(sections, on):
        plays["other"] = play
        if not play:
            continue
        for bar in range(a, b):
            dyn = float(np.clip(0.85 + 0.2 * (bar - a) / max(1, b - a) + rng.normal(0, 0.04), 0.6, 1.1))
            if role == "lead":
                steps = [0, 4, 6, 8, 12] if rng.random() < 0.5 else [0, 2, 4, 8, 10, 12, 14]
                for k, s in enumerate(steps):
                    _, root, ivs = _chord_at(song, c.t(bar, s) + 1e-3)
                    tones = {(root + i) % 12 for i in ivs}
                    pitch += int(rng.choice([-2, -1, -1, 0, 1, 1, 2]))
                    pitch = int(np.clip(pitch, 65, 88))
                    if s % 4 == 0 and pitch % 12 not in tones:   # strong beats land on a chord tone
                        pitch = min((p for p in range(pitch - 3, pitch + 4) if p % 12 in tones),
                                    key=lambda p: abs(p - pitch))
                    elif (pitch - key_pc) % 12 not in scale:
                        pitch += 1
                    end = steps[k + 1] if k + 1 < len(steps) else 16
                    c.add("other", pitch, c.t(bar, s), (end - s) * c.beat / 4 * 0.9, 84 * dyn)
                continue
            for half in range(2):
                seg0 = half * 8
                t0 = c.t(bar, seg0)
                _, root, ivs = _chord_at(song, t0 + 1e-3)
                if role == "pad":
                    if half and _chord_at(song, c.t(bar, 0) + 1e-3)[1:] == (root, ivs):
                        continue                               # the same chord goes on sounding
                    nxt = next((ch[0] for ch in song.chords if ch[0] > t0 + 1e-3), song.seconds)
                    end = min(nxt, b * 4 * c.beat, song.seconds)
                    for p in _voicing(root, ivs, 55, 4, rng):
                        c.add("other", p, t0, end - t0 - 0.02, 70 * dyn)
                else:                                          # stabs on the 'and' of beats 1 and 2
                    for s in (2, 6) if rng.random() < 0.7 else (0, 3):
                        for p in _voicing(root, ivs, 58, 3, rng):
                            c.add("other", p, c.t(bar, seg0 + s), c.beat * 0.4, 92 * dyn)
    return c.notes
