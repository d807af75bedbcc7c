"""Writes datasets in the MSDM layout: synthetic songs (procedural or SoundFont) or rendered MIDI files.

`ROOT/{train,validation,test}/TrackNNNNN/{bass,drums,guitar,piano}.wav` (22050 Hz mono float32; other.wav when
the song has an other part), mix.wav (their sum), song.mid and metadata.json; track i's seed derives from
(seed, i), so one seed gives byte-identical files.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import sys
from pathlib import Path

import numpy as np

from .. import SAMPLE_RATE, STEMS
from ..fileio import atomic_path
from ..errors import ConfigError, InputError

SPLITS = ("train", "validation", "test")
SUBTYPE = "FLOAT"   # float32 WAV: the written stems sum exactly to the mixture


def track_seed(seed: int, index: int) -> int:
    """The song seed of track `index` of a dataset built with `seed` (stable across versions and machines)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]).generate_state(1)[0])


def split_counts(n: int, splits=(0.8, 0.1, 0.1)) -> tuple[int, int, int]:
    """Tracks per split; validation and test each get at least one track when n >= 3 and their share > 0."""
    if len(splits) != 3 or any(s < 0 for s in splits) or sum(splits) <= 0:
        raise ConfigError(f"splits must be three non-negative fractions, got {splits}")
    tot = float(sum(splits))
    val = int(round(n * splits[1] / tot))
    test = int(round(n * splits[2] / tot))
    if splits[0] == 0:                 # no training share (e.g. a test-only set): rounding left-overs go to test
        test = n - val if splits[2] > 0 else 0
        val = n - test
        return 0, val, test
    if n >= 3:
        val = max(val, 1 if splits[1] > 0 else 0)
        test = max(test, 1 if splits[2] > 0 else 0)
    else:
        val = test = 0
    train = n - val - test
    if train < 0 or (splits[0] > 0 and train == 0 and n > 0):
        train = max(1, n - val - test) if n > 0 else 0
        val = min(val, n - train)
        test = n - train - val
    return train, val, test


def _split_of(n: int, splits) -> list[str]:
    a, b, c = split_counts(n, splits)
    return ["train"] * a + ["validation"] * b + ["test"] * c


def write_wav(path, wav: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """Write (time,) float32 audio as a float WAV, atomically and byte-reproducibly.

    latentmix.audio.write_audio is not used here because libsndfile stamps the wall-clock time into the PEAK
    chunk of float WAVs; we write to memory with soundfile, zero that timestamp, then rename into place.
    """
    import io

    import soundfile as sf
    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(wav, np.float32), -1.0, 1.0), sr, subtype=SUBTYPE, format="WAV")
    data = bytearray(buf.getvalue())
    k = data.find(b"PEAK", 12, 200)
    if k >= 0:
        data[k + 12:k + 16] = b"\0\0\0\0"
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(bytes(data))


def write_mix(tdir: Path, stems) -> None:
    """TRACK/mix.wav: the float32 sum of the stems as written (what `latentmix separate TRACK` separates)."""
    write_wav(tdir / "mix.wav", np.sum(np.stack([np.asarray(s, np.float32) for s in stems]), 0, dtype=np.float32))


def write_json(path, obj) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _pad(stems: dict, n: int) -> dict:
    return {k: np.pad(v, (0, max(0, n - len(v))))[:n].astype(np.float32) for k, v in stems.items()}


def render_stems(song, renderer: str = "procedural", soundfont=None, zone_shift=None) -> dict[str, np.ndarray]:
    """{stem: float32 (time,)} of a composed Song, every stem of song.stems at the song's length (SAMPLE_RATE):
    the procedural synthesiser, or `soundfont` (peaks of the mixture and stems held to <= 0.945; zone_shift: see
    soundfont.render_midi)."""
    if renderer == "soundfont":
        from .soundfont import render_midi
        n = int(round(song.seconds * SAMPLE_RATE))
        stems = _pad(render_midi(song, soundfont, sr=SAMPLE_RATE, tail=0.0, stems=song.stems,
                                 zone_shift=zone_shift), n)
        stems = {s: stems.get(s, np.zeros(n, np.float32)) for s in song.stems}
        peak = float(max(np.abs(sum(stems.values())).max(), max(np.abs(v).max() for v in stems.values())))
        if peak > 0.945:
            stems = {k: (v * np.float32(0.945 / peak)).astype(np.float32) for k, v in stems.items()}
        return stems
    from .synth import render_song
    return render_song(song, sr=SAMPLE_RATE)


def _synth_track(job: dict) -> str:
    from .composer import compose
    song = compose(job["song_seed"], job["seconds"], job.get("other_prob", 0.0))
    tdir = Path(job["dir"])
    stems = render_stems(song, job["renderer"], job.get("soundfont"))
    for s in song.stems:
        write_wav(tdir / f"{s}.wav", stems[s])
    write_mix(tdir, [stems[s] for s in song.stems])
    song.to_midi(tdir / "song.mid")
    meta = song.metadata()
    meta.update(track=tdir.name, split=job["split"], index=job["index"], dataset_seed=job["dataset_seed"],
                renderer=job["renderer"], sample_rate=SAMPLE_RATE, stems=list(song.stems))
    if job["renderer"] == "soundfont":
        meta["soundfont"] = Path(job["soundfont"]).name
    write_json(tdir / "metadata.json", meta)
    return tdir.name


def _run(jobs: list, fn, workers: int, progress: bool, desc: str) -> None:
    bar = None
    if progress and sys.stderr.isatty():
        from tqdm import tqdm
        bar = tqdm(total=len(jobs), desc=desc, unit="track", file=sys.stderr)
    workers = max(1, min(int(workers), len(jobs)))
    if workers == 1 or len(jobs) < 3:
        for j in jobs:
            fn(j)
            if bar:
                bar.update()
    else:
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ctx.Pool(workers) as pool:
            for _ in pool.imap_unordered(fn, jobs):
                if bar:
                    bar.update()
    if bar:
        bar.close()


def _default_workers() -> int:
    import os
    return min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def synth_dataset(out, tracks: int, seconds: float, seed: int = 0, splits=(0.8, 0.1, 0.1),
                  renderer: str = "procedural", soundfont=None, progress: bool = True,
                  workers: int | None = None, other_prob: float = 0.0) -> Path:
    """Compose and render `tracks` songs of `seconds` into `out` (MSDM layout); returns the root Path.

    other_prob: each song's chance of an other part (other.wav, included in mix.wav); 0 keeps the four stems only.
    """
    if int(tracks) != tracks or tracks <= 0:
        raise ConfigError(f"--tracks must be a positive integer, got {tracks}")
    if not seconds or seconds <= 0:
        raise ConfigError(f"--seconds must be positive, got {seconds}")
    if not 0.0 <= other_prob <= 1.0:
        raise ConfigError(f"--other-prob must be in [0, 1], got {other_prob}")
    if renderer not in ("procedural", "soundfont"):
        raise ConfigError(f"unknown renderer '{renderer}' (procedural or soundfont)")
    if renderer == "soundfont":
        if soundfont is None:
            raise ConfigError("the soundfont renderer needs --soundfont FILE.sf2")
        from .soundfont import _synth
        _synth(soundfont, SAMPLE_RATE)      # fail early, with one line, on a bad SoundFont
        soundfont = str(Path(soundfont).resolve())
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    names = _split_of(int(tracks), splits)
    jobs = [dict(index=i, song_seed=track_seed(seed, i), seconds=float(seconds), split=names[i],
                 dir=str(out / names[i] / f"Track{i:05d}"), renderer=renderer, soundfont=soundfont,
                 dataset_seed=int(seed), other_prob=float(other_prob)) for i in range(int(tracks))]
    _run(jobs, _synth_track, _default_workers() if workers is None else workers, progress, "synth")
    info = {"kind": "latentmix-synth", "tracks": int(tracks), "seconds": float(seconds), "seed": int(seed),
            "renderer": renderer, "sample_rate": SAMPLE_RATE, "splits": {s: names.count(s) for s in SPLITS}}
    if other_prob > 0:               # absent at 0, so that four-stem datasets stay byte-identical
        info["other_prob"] = float(other_prob)
    write_json(out / "dataset.json", info)
    return out


def _midi_track(job: dict) -> str:
    from .soundfont import load_midi, midi_events, render_midi
    midi = load_midi(job["midi"])
    _, length, programs = midi_events(midi)
    stems = render_midi(midi, job["soundfont"], sr=SAMPLE_RATE, tail=job["tail"])
    if not stems:
        raise InputError(f"{job['midi']}: MIDI file has no notes")
    n = max(len(v) for v in stems.values())
    stems = _pad(stems, n)
    for s in STEMS:
        stems.setdefault(s, np.zeros(n, np.float32))
    peak = float(max(np.abs(sum(stems.values())).max(), max(np.abs(v).max() for v in stems.values())))
    if peak > 0.945:
        stems = {k: (v * np.float32(0.945 / peak)).astype(np.float32) for k, v in stems.items()}
    tdir = Path(job["dir"])
    for s, wav in stems.items():
        write_wav(tdir / f"{s}.wav", wav)
    write_mix(tdir, list(stems.values()))
    with atomic_path(tdir / "song.mid") as tmp:
        Path(tmp).write_bytes(Path(job["midi"]).read_bytes())
    write_json(tdir / "metadata.json", {
        "source_midi": Path(job["midi"]).name, "seconds": round(n / SAMPLE_RATE, 5), "midi_seconds": round(length, 5),
        "programs": programs, "stems": sorted(stems, key=lambda s: (s not in STEMS, s)), "split": job["split"],
        "index": job["index"], "renderer": "soundfont", "soundfont": Path(job["soundfont"]).name,
        "sample_rate": SAMPLE_RATE, "dataset_seed": job["dataset_seed"]})
    return tdir.name


def find_midi(midi_file_or_dir) -> list[Path]:
    """MIDI files under a path (a file, or a folder searched recursively), sorted; InputError if none."""
    p = Path(midi_file_or_dir)
    if not p.exists():
        raise InputError(f"{p}: no such MIDI file or folder")
    if p.is_file():
        return [p]
    files = sorted(q for q in p.rglob("*") if q.suffix.lower() in (".mid", ".midi") and q.is_file())
    if not files:
        raise InputError(f"{p}: folder contains no .mid/.midi files")
    return files


def render_midi_dataset(midi_file_or_dir, soundfont, out, seed: int = 0, splits=(0.8, 0.1, 0.1),
                        tail: float = 1.0, progress: bool = True, workers: int | None = None) -> Path:
    """Render MIDI files through `soundfont` into the MSDM layout (plus other.wav when a song has other parts).

    Files are assigned to splits after a shuffle seeded by `seed`; returns the root Path.
    """
    files = find_midi(midi_file_or_dir)
    from .soundfont import _synth, load_midi
    _synth(soundfont, SAMPLE_RATE)
    for f in files:
        load_midi(f)                         # fail before writing anything on a corrupt file
    order = np.random.default_rng(int(seed) & 0xFFFFFFFF).permutation(len(files)) if len(files) > 2 else \
        np.arange(len(files))
    names = _split_of(len(files), splits)
    out = Path(out)
    jobs = [dict(index=i, midi=str(files[j].resolve()), split=names[i], dir=str(out / names[i] / f"Track{i:05d}"),
                 soundfont=str(Path(soundfont).resolve()), tail=float(tail), dataset_seed=int(seed))
            for i, j in enumerate(order)]
    _run(jobs, _midi_track, _default_workers() if workers is None else workers, progress, "render")
    write_json(out / "dataset.json", {"kind": "latentmix-midi", "tracks": len(files), "seed": int(seed),
                                      "renderer": "soundfont", "sample_rate": SAMPLE_RATE,
                                      "splits": {s: names.count(s) for s in SPLITS}})
    return out
