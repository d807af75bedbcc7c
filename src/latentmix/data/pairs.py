"""Bass + drums pair sets for Bayesian separation (LQ-VAE / seed 003 style) from any MSDM-layout data.

OUT/{train,test}/PairNNNNN/{bass,drums}.<ext> + metadata.json. The tracks of the chosen source splits are split
by track (seeded) into train and test (`test_fraction`, 0.3 by default), so no stem is in both; within each part
every track gives a coherent pair (its own bass and drums) and an incoherent one (its bass with the drums of
another track of the same part: a seeded derangement), as seed 003 pairs stems across songs. The mixture is the
lass protocol's 0.5 (bass + drums), formed by whoever reads the pair. The stem files are relative symbolic links
to the source files (copies with `copy=True`, or where links are not possible); metadata.json names the sources
and says `coherent` true or false.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..fileio import write_json

PAIR_STEMS = ("bass", "drums")


def _stem_file(track: Path, stem: str) -> Path | None:
    from ..audio import AUDIO_EXTENSIONS
    for ext in AUDIO_EXTENSIONS:
        if (track / f"{stem}{ext}").is_file():
            return track / f"{stem}{ext}"
    return None


def _link(src: Path, dst: Path, copy: bool) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    if not copy:
        try:
            os.symlink(os.path.relpath(src.resolve(), dst.parent.resolve()), dst)
            return
        except OSError:
            pass
    shutil.copyfile(src, dst)


def plan_pairs(tracks: list[Path], test_fraction: float = 0.3, seed: int = 0) -> dict[str, list[dict]]:
    """{'train': [...], 'test': [...]} pairs {bass: track, drums: track, coherent: bool}, seeded."""
    if not 0 <= test_fraction <= 1:
        raise ConfigError(f"test fraction must be in [0, 1], got {test_fraction}")
    rng = np.random.default_rng(int(seed))
    order = [tracks[i] for i in rng.permutation(len(tracks))]
    n_test = int(round(len(order) * test_fraction))
    parts = {"train": order[n_test:], "test": order[:n_test]}
    out: dict[str, list[dict]] = {}
    for split, part in parts.items():
        pairs = [{"bass": t, "drums": t, "coherent": True} for t in part]
        if len(part) >= 2:
            perm = rng.permutation(len(part))
            shifted = np.roll(perm, 1)                       # a derangement: every bass meets other drums
            pairs += [{"bass": part[a], "drums": part[b], "coherent": False} for a, b in zip(perm, shifted)]
        order_p = rng.permutation(len(pairs))
        out[split] = [pairs[i] for i in order_p]
    return out


def build_pairs(data, out, splits=("train", "validation", "test"), test_fraction: float = 0.3, seed: int = 0,
                copy: bool = False) -> dict:
    """Write the pair set of `data`'s `splits` into `out`; returns {'train': n, 'test': n} pairs written."""
    from .datasets import list_tracks
    data, out = Path(data), Path(out)
    tracks = []
    for split in splits:
        try:
            tracks += [Path(t) for t in list_tracks(data, split)]
        except InputError:
            continue
    tracks = [t for t in tracks if all(_stem_file(t, s) for s in PAIR_STEMS)]
    if len(tracks) < 1:
        raise InputError(f"{data}: no tracks with both bass and drums stems in {', '.join(splits)}")
    plan = plan_pairs(sorted(tracks), test_fraction, seed)
    counts = {}
    for split, pairs in plan.items():
        for i, p in enumerate(pairs):
            folder = out / split / f"Pair{i:05d}"
            for s in PAIR_STEMS:
                _link(_stem_file(p[s], s), folder / _stem_file(p[s], s).name, copy)
            write_json(folder / "metadata.json", {"coherent": p["coherent"], "bass": str(p["bass"]),
                                                  "drums": str(p["drums"]), "mixture": "0.5 (bass + drums)",
                                                  "seed": int(seed)})
        counts[split] = len(pairs)
    write_json(out / "dataset.json", {"kind": "bass-drums pairs", "source": str(data), "splits": list(splits),
                                      "test_fraction": test_fraction, "seed": int(seed), "pairs": counts,
                                      "coherent_and_incoherent": True})
    return counts


def iter_pairs(root, split: str = "train", sr: int = 22050):
    """(pair id: the pair folder's absolute path, bass (1, T), drums (1, T)) of every pair of a split."""
    from .datasets import list_tracks, load_track
    for t in list_tracks(root, split):
        x = load_track(t, sr, stems=PAIR_STEMS)
        yield str(Path(t).resolve()), x[0:1], x[1:2]
