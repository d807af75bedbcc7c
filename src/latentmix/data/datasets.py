"""Dataset loaders for the MSDM layout, the original Slakh2100 layout and plain folders of stem files.

`load_track` returns (stems, time) float32 in the canonical order bass, drums, guitar, piano (+ 'other' on request);
`StemWindows` serves random augmented training windows (stems, window), deterministic in (seed, index).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import yaml

from .. import SAMPLE_RATE, STEMS
from ..audio import AUDIO_EXTENSIONS, read_audio
from ..errors import InputError
from . import augment

SPLITS = ("train", "validation", "test")
_ALIASES = {"bass": "bass", "drum": "drums", "drums": "drums", "percussion": "drums", "guitar": "guitar",
            "guitars": "guitar", "gtr": "guitar", "piano": "piano", "keys": "piano", "keyboard": "piano"}


class MissingStemError(InputError):
    """A track lacks one of the requested stems and missing='skip' was asked for."""


def _audio_files(folder: Path) -> list[Path]:
    return sorted(q for q in folder.iterdir() if q.is_file() and q.suffix.lower() in AUDIO_EXTENSIONS)


def _is_slakh_track(d: Path) -> bool:
    return (d / "metadata.yaml").is_file()


def _is_msdm_track(d: Path) -> bool:
    """Exact lower-case stem names (bass.wav ...), and no audio files of other names besides mix/other."""
    if not any((d / f"{s}{ext}").is_file() for s in STEMS for ext in (".wav", ".flac")):
        return False
    return all(f.stem in STEMS + ("other", "mix", "mixture") for f in _audio_files(d))


def _is_folder_track(d: Path) -> bool:
    return d.is_dir() and bool(_audio_files(d))


def detect_layout(root) -> str:
    """'slakh', 'msdm' or 'folder' for a dataset root, a split folder or a single track folder."""
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root}: no such dataset folder")
    if not root.is_dir():
        raise InputError(f"{root}: is a file, expected a dataset folder")
    if _is_slakh_track(root):
        return "slakh"
    if _is_msdm_track(root):
        return "msdm"
    candidates = [d for d in sorted(root.iterdir()) if d.is_dir()]
    for split in SPLITS + ("omitted",):
        if (root / split).is_dir():
            candidates += [d for d in sorted((root / split).iterdir()) if d.is_dir()]
    if any(_is_slakh_track(d) for d in candidates):
        return "slakh"
    if any(_is_msdm_track(d) for d in candidates):
        return "msdm"
    if any(_is_folder_track(d) for d in candidates) or _audio_files(root):
        return "folder"
    raise InputError(f"{root}: no tracks found (expected MSDM, Slakh2100 or <song>/<stem>.wav folders)")


def list_tracks(root, split: str | None = None) -> list[Path]:
    """Sorted track folders of `root` (or of `root/split` when that folder exists); InputError if none."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such dataset folder")
    base = root
    if split is not None:
        base = root / split
        if not base.is_dir():
            raise InputError(f"{root}: has no '{split}' split folder")
    layout = detect_layout(base)
    check = {"slakh": _is_slakh_track, "msdm": _is_msdm_track, "folder": _is_folder_track}[layout]
    if check(base):
        return [base]
    tracks = [d for d in sorted(base.iterdir()) if d.is_dir() and check(d)]
    if split is None and not tracks:
        for s in SPLITS:
            if (base / s).is_dir():
                tracks += [d for d in sorted((base / s).iterdir()) if d.is_dir() and check(d)]
    if not tracks:
        raise InputError(f"{base}: no tracks found")
    return tracks


def _slakh_sources(track: Path) -> dict[str, list[Path]]:
    meta_path = track / "metadata.yaml"
    try:
        meta = yaml.safe_load(meta_path.read_text()) or {}
    except yaml.YAMLError as e:
        raise InputError(f"{meta_path}: invalid YAML ({str(e).splitlines()[0]})") from None
    stems = meta.get("stems") if isinstance(meta, dict) else None
    if not isinstance(stems, dict):
        raise InputError(f"{meta_path}: no 'stems:' mapping")
    out: dict[str, list[Path]] = {}
    for sid, info in sorted(stems.items()):
        info = info or {}
        if not info.get("audio_rendered", True):
            continue
        if info.get("is_drum"):
            cls = "drums"
        else:
            cls = _ALIASES.get(str(info.get("inst_class", "")).strip().lower(), "other")
        files = [track / "stems" / f"{sid}{ext}" for ext in (".flac", ".wav")]
        f = next((q for q in files if q.is_file()), None)
        if f is None:
            warnings.warn(f"{files[0]}: listed as rendered in metadata.yaml but missing; ignored")
            continue
        out.setdefault(cls, []).append(f)
    return out


def _msdm_sources(track: Path) -> dict[str, list[Path]]:
    out = {}
    for s in STEMS + ("other",):
        f = next((track / f"{s}{ext}" for ext in (".wav", ".flac") if (track / f"{s}{ext}").is_file()), None)
        if f is not None:
            out[s] = [f]
    return out


def _folder_sources(track: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for f in _audio_files(track):
        name = f.stem.lower()
        if name in ("mix", "mixture"):
            continue
        cls = _ALIASES.get(name) or next((v for k, v in _ALIASES.items() if name.startswith(k)), "other")
        out.setdefault(cls, []).append(f)
    return out


def track_sources(track_dir, layout: str = "auto") -> dict[str, list[Path]]:
    """{stem class: [audio files summed into it]} for one track folder."""
    track = Path(track_dir)
    if not track.is_dir():
        raise InputError(f"{track}: no such track folder")
    if layout == "auto":
        layout = "slakh" if _is_slakh_track(track) else "msdm" if _is_msdm_track(track) else "folder"
    fn = {"slakh": _slakh_sources, "msdm": _msdm_sources, "folder": _folder_sources}.get(layout)
    if fn is None:
        raise InputError(f"unknown layout '{layout}' (auto, msdm, slakh or folder)")
    src = fn(track)
    if not src:
        raise InputError(f"{track}: no stem audio files found")
    return src


def load_track(track_dir, sr: int = SAMPLE_RATE, layout: str = "auto", missing: str = "zeros",
               stems=STEMS) -> torch.Tensor:
    """Load one track as float32 (len(stems), time) at `sr`, mono; stems of one class are summed.

    A missing stem is zeros (missing='zeros') or raises MissingStemError (missing='skip', for callers that skip).
    Stems of different lengths are zero-padded to the longest.
    """
    if missing not in ("zeros", "skip"):
        raise InputError(f"missing must be 'zeros' or 'skip', got '{missing}'")
    src = track_sources(track_dir, layout)
    if missing == "skip":
        absent = [s for s in stems if s not in src]
        if absent:
            raise MissingStemError(f"{track_dir}: missing stem(s) {', '.join(absent)}")
    wanted = set(stems)
    parts: dict[str, torch.Tensor] = {}
    for cls, files in src.items():
        target = cls if cls in wanted else ("other" if "other" in wanted else None)
        if target is None:
            continue
        for f in files:
            x = read_audio(f, sr=sr, mono=True)[0]
            if target in parts:
                a, b = parts[target], x
                n = max(len(a), len(b))
                parts[target] = torch.nn.functional.pad(a, (0, n - len(a))) + torch.nn.functional.pad(b, (0, n - len(b)))
            else:
                parts[target] = x
    n = max([len(v) for v in parts.values()] + [1])
    out = torch.zeros(len(stems), n)
    for i, s in enumerate(stems):
        if s in parts:
            out[i, :len(parts[s])] = parts[s]
    return out


def track_frames(track_dir, sr: int = SAMPLE_RATE, layout: str = "auto") -> int:
    """Length in samples at `sr` of a track (its longest stem file), read from headers only."""
    from ..audio import info
    n = 0
    for files in track_sources(track_dir, layout).values():
        for f in files:
            frames, fsr = info(f)
            n = max(n, int(round(frames * sr / fsr)))
    return n


class StemWindows(torch.utils.data.Dataset):
    """Random training windows from a split: items are float32 (stems, window) tensors.

    Item i is deterministic in (seed, i): it picks a track (or, with probability `remix_p`, one track per stem),
    a start, per-stem gains uniform in `gain_db` and, with `shift`, independent per-stem offsets up to
    `max_shift` seconds, and with `effects_p` > 0 per-stem random EQ / reverb / compression (augment.random_effects;
    `drive_p`: an amp drive on the guitar stem).
    Tracks are loaded lazily and cached in memory.
    """

    def __init__(self, root, split: str | None = "train", seconds: float = 4.0, sr: int = SAMPLE_RATE, seed: int = 0,
                 gain_db=(-6.0, 3.0), shift: bool = True, max_shift: float = 0.5, remix_p: float = 0.0,
                 length: int | None = None, missing: str = "zeros", stems=STEMS, layout: str = "auto",
                 effects_p: float = 0.0, drive_p: float = 0.0):
        self.tracks = list_tracks(root, split)
        self.effects_p, self.drive_p = float(effects_p), float(drive_p)
        self.sr, self.seed, self.stems, self.layout, self.missing = sr, int(seed), tuple(stems), layout, missing
        self.window = max(1, int(round(seconds * sr)))
        self.gain_db, self.shift, self.remix_p = gain_db, shift, float(remix_p)
        self.max_shift = int(round(max_shift * sr)) if shift else 0
        self._cache: dict[int, torch.Tensor | None] = {}
        if missing == "skip":
            self.tracks = [t for i, t in enumerate(self.tracks) if self._get(i) is not None]
            self._cache = {i: v for i, v in enumerate(v for v in self._cache.values() if v is not None)}
            if not self.tracks:
                raise InputError(f"{root}: every track misses a stem (missing='skip')")
        if length is None:
            total = sum(track_frames(t, sr, layout) for t in self.tracks)
            length = max(1, total // self.window)
        self.length = int(length)

    def __len__(self) -> int:
        return self.length

    def _get(self, i: int) -> torch.Tensor | None:
        if i not in self._cache:
            try:
                self._cache[i] = load_track(self.tracks[i], self.sr, self.layout, self.missing, self.stems)
            except MissingStemError:
                self._cache[i] = None
        return self._cache[i]

    def _excerpt(self, x: torch.Tensor, start: int, need: int) -> torch.Tensor:
        seg = x[:, start:start + need]
        return torch.nn.functional.pad(seg, (0, need - seg.shape[1])) if seg.shape[1] < need else seg

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.length:
            raise IndexError(index)
        g = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed & 0xFFFFFFFF, int(index)])
                                              .generate_state(1, np.uint64)[0] >> 1))
        n_tr, n_st = len(self.tracks), len(self.stems)
        need = self.window + 2 * self.max_shift
        if self.remix_p > 0 and n_tr > 1 and torch.rand((), generator=g).item() < self.remix_p:
            picks = torch.randint(n_tr, (n_st,), generator=g).tolist()
        else:
            picks = [int(torch.randint(n_tr, (), generator=g))] * n_st
        rows, starts = [], {}
        for k, ti in enumerate(picks):
            x = self._get(ti)
            if ti not in starts:   # stems of one song share a start (remixed stems each get their own)
                starts[ti] = int(torch.randint(max(1, x.shape[1] - need + 1), (), generator=g))
            rows.append(self._excerpt(x, starts[ti], need)[k])
        y = torch.stack(rows)
        if self.shift:
            y = augment.shift(y, self.window, generator=g)
        else:
            y = y[:, :self.window]
        y = augment.random_gain(y, self.gain_db, generator=g)
        y = augment.random_effects(y, self.sr, self.effects_p, generator=g, drive_p=self.drive_p,
                                   drive_rows=augment.drive_rows(self.stems))
        return y.float().contiguous()
