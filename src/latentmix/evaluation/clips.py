"""The audio side of generation scoring: labelled real clips from a data root, clip features (log-mel statistics
and a tempogram), a small classifier of style and tempo bucket trained on them, its embedding and a Frechet distance.

Labels come from each track's metadata.json: `style` and `tempo` (bucketed by TEMPO_EDGES). Features: the mean
and standard deviation over time of a 64-band log-mel spectrogram (latentmix.audio) and librosa's
autocorrelation tempogram of the onset strength, averaged over time and read on a log-spaced 50-240 bpm grid.
The classifier is an MLP (features -> 128 -> EMBED_DIM, then one linear head per task); its EMBED_DIM-wide
hidden layer is the embedding of the Frechet distance. librosa does the tempogram (a solved problem).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import InputError

TEMPO_EDGES = (100.0, 130.0)          # bpm: slow < 100 <= medium < 130 <= fast
TEMPO_NAMES = ("slow", "medium", "fast")
N_MELS, HOP, N_FFT = 64, 256, 1024
BPM_GRID = np.geomspace(50.0, 240.0, 40)
EMBED_DIM = 64


def tempo_bucket(bpm: float) -> int:
    return int(np.searchsorted(TEMPO_EDGES, float(bpm), side="right"))


@dataclass
class Clips:
    """Clips `wav` (N, T) float32 at `sr`, with their track's style, tempo (bpm), caption and track name."""

    wav: np.ndarray
    sr: int
    style: list[str]
    tempo: list[float]
    caption: list[str]
    track: list[str]

    def __len__(self) -> int:
        return int(self.wav.shape[0])

    def subset(self, idx) -> Clips:
        idx = list(idx)
        return Clips(self.wav[idx], self.sr, [self.style[i] for i in idx], [self.tempo[i] for i in idx],
                     [self.caption[i] for i in idx], [self.track[i] for i in idx])

    def with_audio(self, wav) -> Clips:
        """The same labels over other audio (N, T) (e.g. the clips through the codec)."""
        wav = np.asarray(wav, dtype=np.float32).reshape(len(self), -1)
        return Clips(wav, self.sr, self.style, self.tempo, self.caption, self.track)


def metadata(track: Path) -> dict:
    meta = Path(track) / "metadata.json"
    try:
        d = json.loads(meta.read_text())
        return {"style": str(d["style"]), "tempo": float(d["tempo"]), "caption": str(d.get("caption", ""))}
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"{meta}: needs a metadata.json with 'style' and 'tempo'") from None


def real_clips(roots, split: str, seconds: float = 4.0, per_track: int = 5, sr: int = 22050,
               stem: str | None = None, max_tracks: int | None = None) -> Clips:
    """Up to `per_track` consecutive `seconds` clips from the start of every track of root/split (the mixture, or
    one stem), for each root in turn; at most `max_tracks` tracks per root."""
    from .. import STEMS
    from ..data.datasets import list_tracks, load_track
    n = int(round(seconds * sr))
    wavs, lab = [], {"style": [], "tempo": [], "caption": [], "track": []}
    for root in [roots] if isinstance(roots, (str, Path)) else roots:
        tracks = list_tracks(root, split)[:max_tracks]
        for t in tracks:
            meta = metadata(t)
            x = load_track(t, sr)
            x = x[STEMS.index(stem)] if stem is not None else x.sum(0)
            for j in range(min(per_track, x.shape[-1] // n)):
                wavs.append(x[j * n:(j + 1) * n].numpy())
                for k in ("style", "tempo", "caption"):
                    lab[k].append(meta[k])
                lab["track"].append(f"{Path(root).name}/{t.name}")
    if not wavs:
        raise InputError(f"{roots}: no {seconds} s clips in split '{split}'")
    return Clips(np.stack(wavs).astype(np.float32), sr, **lab)


def features(wav, sr: int = 22050) -> np.ndarray:
    """Clips (N, T) -> features (N, 2 * N_MELS + len(BPM_GRID)) float32."""
    import librosa
    from ..audio import mel_spectrogram
    x = torch.as_tensor(np.asarray(wav, dtype=np.float32)).reshape(len(wav), -1)
    mel = torch.log10(mel_spectrogram(x, N_FFT, HOP, N_MELS, sr, power=2.0) + 1e-6)      # (N, M, F)
    stats = torch.cat([mel.mean(-1), mel.std(-1)], -1).numpy()
    freqs = librosa.tempo_frequencies(384, hop_length=HOP, sr=sr)[1:]          # descending bpm of lags 1..
    rows = []
    for m in (10.0 * mel).numpy():
        onset = librosa.onset.onset_strength(S=m, sr=sr, hop_length=HOP)
        tg = librosa.feature.tempogram(onset_envelope=onset, sr=sr, hop_length=HOP, win_length=384).mean(-1)[1:]
        rows.append(np.interp(BPM_GRID, freqs[::-1], tg[::-1]))
    return np.concatenate([stats, np.stack(rows)], -1).astype(np.float32)


class ClipClassifier(nn.Module):
    """Standardised features -> 128 -> EMBED_DIM (the embedding) -> a linear head per task."""

    def __init__(self, dim: int, classes: dict[str, list[str]], hidden: int = 128):
        super().__init__()
        self.classes = {k: list(v) for k, v in classes.items()}
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.body = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(0.2),
                                  nn.Linear(hidden, EMBED_DIM), nn.ReLU())
        self.heads = nn.ModuleDict({k: nn.Linear(EMBED_DIM, len(v)) for k, v in classes.items()})

    def embed(self, feats) -> torch.Tensor:
        x = torch.as_tensor(feats, dtype=torch.float32)
        return self.body((x - self.mean) / self.std)

    def forward(self, feats) -> dict[str, torch.Tensor]:
        e = self.embed(feats)
        return {k: h(e) for k, h in self.heads.items()}

    @torch.no_grad()
    def predict(self, feats) -> dict[str, list[str]]:
        self.eval()
        return {k: [self.classes[k][i] for i in v.argmax(-1).tolist()] for k, v in self(feats).items()}

    @torch.no_grad()
    def embedding(self, feats) -> np.ndarray:
        self.eval()
        return self.embed(feats).numpy().astype(np.float64)


def targets(clips: Clips) -> dict[str, list[str]]:
    """The classifier's labels of clips: style and tempo bucket."""
    return {"style": list(clips.style), "tempo": [TEMPO_NAMES[tempo_bucket(b)] for b in clips.tempo]}


def train_classifier(feats: np.ndarray, labels: dict[str, list[str]], epochs: int = 400, lr: float = 3e-3,
                     seed: int = 0) -> ClipClassifier:
    """Full-batch Adam on the summed cross-entropies of every task; deterministic for a seed."""
    torch.manual_seed(seed)
    classes = {k: sorted(set(v)) for k, v in labels.items()}
    model = ClipClassifier(feats.shape[1], classes)
    x = torch.as_tensor(feats, dtype=torch.float32)
    model.mean.copy_(x.mean(0))
    model.std.copy_(x.std(0).clamp_min(1e-6))
    y = {k: torch.tensor([classes[k].index(s) for s in v]) for k, v in labels.items()}
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-3)
    model.train()
    for _ in range(epochs):
        out = model(x)
        loss = sum(nn.functional.cross_entropy(out[k], y[k]) for k in y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def accuracy(pred: dict[str, list[str]], want: dict[str, list[str]]) -> dict[str, float]:
    return {k: float(np.mean([a == b for a, b in zip(pred[k], want[k])])) for k in want}


def chance(train: dict[str, list[str]], want: dict[str, list[str]]) -> dict[str, float]:
    """The accuracy of always answering the training set's most common class, on `want`'s labels."""
    out = {}
    for k, v in want.items():
        top = max(set(train[k]), key=train[k].count)
        out[k] = float(np.mean([s == top for s in v]))
    return out


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to embeddings a (N, D) and b (M, D)."""
    from scipy import linalg
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise InputError("a Frechet distance needs at least 2 embeddings per set")
    mu = a.mean(0) - b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(ca @ cb)
    if not np.isfinite(covmean).all():
        eps = 1e-6 * np.eye(ca.shape[0])
        covmean = linalg.sqrtm((ca + eps) @ (cb + eps))
    covmean = np.real(covmean)
    return float(mu @ mu + np.trace(ca) + np.trace(cb) - 2.0 * np.trace(covmean))
