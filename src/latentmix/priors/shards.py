"""Code shards: a dataset encoded once by a codec into per-track uint16 code files, keyed by the codec's hash,
read back memory-mapped as random (K, frames) windows for prior training.

Layout: OUT/<codec hash>/<root name>-<root hash>/<split>[-<stem>]/TrackNNNNN.npy ((K, F) uint16) + index.json
(track, frames, caption): one folder per data root, so several roots (train.extra_data) never collide.
Encoding is resumable: a track whose file exists is skipped; each file is written atomically. Files are plain
.npy read with allow_pickle=False.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..fileio import atomic_path, write_json


def codec_hash(codec) -> str:
    """16 hex digits of a SHA-256 over the codec's config and weights (any change gives new shards)."""
    h = hashlib.sha256(json.dumps(codec.config, sort_keys=True).encode())
    for k, v in sorted(codec.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def shard_dir(out, codec, root, split: str, stem: str | None = None) -> Path:
    root = Path(root).resolve()
    key = f"{root.name}-{hashlib.sha256(str(root).encode()).hexdigest()[:6]}"
    return Path(out) / codec_hash(codec) / key / (split if stem is None else f"{split}-{stem}")


def _caption(track: Path) -> str:
    meta = track / "metadata.json"
    try:
        return str(json.loads(meta.read_text()).get("caption", "")) if meta.is_file() else ""
    except (ValueError, OSError):
        return ""


@torch.inference_mode()
def encode_dataset(codec, root, split: str, out, stem: str | None = None, chunk_seconds: float = 30.0,
                   progress=None) -> Path:
    """Encode every track of root/split (the mixture, or one `stem`) with all codec levels; returns the shard
    folder. Tracks already encoded (same codec hash) are skipped, so an interrupted run resumes."""
    from .. import STEMS
    from ..data.datasets import list_tracks, load_track
    if stem is not None and stem not in STEMS:
        raise InputError(f"--stem must be one of {', '.join(STEMS)}, got '{stem}'")
    folder = shard_dir(out, codec, root, split, stem)
    folder.mkdir(parents=True, exist_ok=True)
    chunk = max(1, int(chunk_seconds * codec.frame_rate))
    index = []
    for track in list_tracks(root, split):
        path = folder / f"{track.name}.npy"
        if not path.is_file():
            x = load_track(track, codec.sample_rate)
            wav = x[STEMS.index(stem)][None] if stem is not None else x.sum(0, keepdim=True)
            codes = codec.encode_chunked(wav[None], None, chunk)[0].numpy().astype(np.uint16)
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.save(f, codes, allow_pickle=False)
        frames = int(np.load(path, mmap_mode="r", allow_pickle=False).shape[1])
        index.append({"track": track.name, "frames": frames, "caption": _caption(track)})
        if progress is not None:
            progress(1)
    write_json(folder / "index.json", {"codec_hash": folder.parent.parent.name, "split": split, "stem": stem,
                                       "tracks": index})
    return folder


class CodeWindows(torch.utils.data.Dataset):
    """Random windows of `frames` frames from one or more shard folders: items (codes (K, frames) int64, track
    index into `captions`). Item i is deterministic in (seed, i); a track is drawn in proportion to its length;
    tracks shorter than the window are zero-padded (code 0) at the end.
    """

    def __init__(self, folders, frames: int, seed: int = 0, length: int | None = None):
        self.codes, self.captions = [], []
        for folder in [folders] if isinstance(folders, (str, Path)) else folders:
            folder = Path(folder)
            idx = folder / "index.json"
            if not idx.is_file():
                raise InputError(f"{folder}: no code shards here (index.json missing); encode the data first")
            index = json.loads(idx.read_text())["tracks"]
            self.codes += [np.load(folder / f"{t['track']}.npy", mmap_mode="r", allow_pickle=False) for t in index]
            self.captions += [t["caption"] for t in index]
        if not self.codes:
            raise InputError(f"{folders}: the code shards hold no tracks")
        lengths = np.array([c.shape[1] for c in self.codes], dtype=np.float64)
        self.weights = lengths / lengths.sum()
        self.frames, self.seed = int(frames), int(seed)
        self.length = int(length or max(1, sum(c.shape[1] for c in self.codes) // self.frames))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, int(i)])
        t = int(rng.choice(len(self.codes), p=self.weights))
        c = self.codes[t]
        start = int(rng.integers(max(1, c.shape[1] - self.frames + 1)))
        w = np.asarray(c[:, start:start + self.frames], dtype=np.int64)
        if w.shape[1] < self.frames:
            w = np.pad(w, ((0, 0), (0, self.frames - w.shape[1])))
        return torch.from_numpy(w), t
