"""Songs composed and rendered while training (issue #19): every item a new song, seeded by (seed, index), so a run
is as reproducible and resumable as one on stored windows. A data root `synth:procedural` or `synth:soundfont=PATH`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import SAMPLE_RATE, STEMS
from ..errors import ConfigError, InputError
from . import augment

PREFIX = "synth:"
SONG_SALT = 0x5F12E54   # keeps training songs apart from `data synth`'s (same track_seed), whatever the seeds


def is_fresh(root) -> bool:
    """Whether a data root names on-the-fly songs rather than a folder."""
    return str(root).startswith(PREFIX)


def parse(root) -> tuple[str, str | None]:
    """`synth:procedural` -> ("procedural", None); `synth:soundfont=PATH` -> ("soundfont", PATH); else ConfigError."""
    spec = str(root)[len(PREFIX):]
    if spec == "procedural":
        return "procedural", None
    kind, eq, path = spec.partition("=")
    if kind == "soundfont" and eq and path:
        if not Path(path).expanduser().is_file():
            raise InputError(f"{path}: no such SoundFont file ({root})")
        return "soundfont", str(Path(path).expanduser())
    raise ConfigError(f"{root}: unknown song source (synth:procedural or synth:soundfont=PATH)")


def check_extra_roots(roots, fresh_ok: bool = False) -> None:
    """train.extra_data's roots: each a data folder, or (where fresh_ok: the separator) a valid `synth:` root;
    InputError / ConfigError naming the root otherwise."""
    for root in roots:
        if is_fresh(root) and fresh_ok:
            parse(root)
        elif not Path(root).is_dir():
            why = "; synth: roots are for the separator only" if is_fresh(root) else ""
            raise InputError(f"{root}: no such data folder (train.extra_data{why})")


class FreshSongs(torch.utils.data.Dataset):
    """Items (stems, window) float32 like StemWindows', each cut from a song composed and rendered for it.

    Item i: song seed data.build.track_seed(seed ^ SONG_SALT, i) (never a `data synth --seed` song), a `song_seconds` song (window + 2 s by default), a random
    start, per-stem gains uniform in `gain_db` and, with effects_p, random EQ / reverb / compression (drive_p: an
    amp drive on the guitar). `other_prob`
    gives songs an other part (a stem list without 'other' leaves it out of the window and of the mixture).
    zone_shift N (SoundFont songs): each pitched stem is played from sample zones k keys away, k uniform in
    [-N, N] per song and stem, and bent back to pitch (a timbre augmentation: formants moved k semitones).
    """

    def __init__(self, root: str, seconds: float = 3.0, seed: int = 0, length: int = 1000, stems=STEMS,
                 gain_db=(-6.0, 3.0), effects_p: float = 0.0, other_prob: float = 0.0,
                 song_seconds: float | None = None, drive_p: float = 0.0, zone_shift: int = 0):
        self.renderer, self.soundfont = parse(root)
        self.window = max(1, int(round(seconds * SAMPLE_RATE)))
        self.song_seconds = float(song_seconds or seconds + 2.0)
        if self.song_seconds * SAMPLE_RATE < self.window:
            raise ConfigError(f"{root}: songs of {self.song_seconds:g} s are shorter than the {seconds:g} s window")
        self.seed, self.length, self.stems = int(seed), int(length), tuple(stems)
        self.gain_db, self.effects_p, self.other_prob = gain_db, float(effects_p), float(other_prob)
        self.drive_p, self.zone_shift = float(drive_p), int(zone_shift)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        from .build import render_stems, track_seed
        from .composer import compose
        if not 0 <= index < self.length:
            raise IndexError(index)
        song = compose(track_seed(self.seed ^ SONG_SALT, index), self.song_seconds, self.other_prob)
        shifts = None
        if self.zone_shift and self.renderer == "soundfont":      # its own generator: other draws stay as they were
            gz = torch.Generator().manual_seed(track_seed(self.seed ^ 0x20E5, index) >> 1)
            shifts = {s: int(torch.randint(-self.zone_shift, self.zone_shift + 1, (), generator=gz))
                      for s in song.stems}
        rendered = render_stems(song, self.renderer, self.soundfont, zone_shift=shifts)
        n = len(next(iter(rendered.values())))
        y = torch.stack([torch.from_numpy(np.asarray(rendered[s], np.float32)) if s in rendered
                         else torch.zeros(n) for s in self.stems])
        g = torch.Generator().manual_seed(track_seed(self.seed ^ 0x5A5A, index) >> 1)
        start = int(torch.randint(max(1, n - self.window + 1), (), generator=g))
        y = torch.nn.functional.pad(y[:, start:start + self.window], (0, max(0, self.window - (n - start))))
        y = augment.random_gain(y, self.gain_db, generator=g)
        y = augment.random_effects(y, SAMPLE_RATE, self.effects_p, generator=g, drive_p=self.drive_p,
                                   drive_rows=augment.drive_rows(self.stems))
        return y.float().contiguous()
