"""Procedural and SoundFont rendering, and the dataset builder: determinism, levels, DC, speed."""
import json
import time
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from latentmix.data.build import render_midi_dataset, split_counts, synth_dataset
from latentmix.data.composer import compose
from latentmix.data.soundfont import render_midi, stem_of_program
from latentmix.data.synth import karplus_strong, render_song
from latentmix.errors import ConfigError, InputError

SF2 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
needs_sf2 = pytest.mark.skipif(not SF2.exists(), reason=f"{SF2} missing (Debian package fluid-soundfont-gm)")


def test_render_properties():
    song = compose(11, 6.0)
    stems = render_song(song)
    assert set(stems) == {"bass", "drums", "guitar", "piano"}
    mix = np.sum(list(stems.values()), axis=0, dtype=np.float32)
    assert np.abs(mix).max() <= 0.95
    for name, x in stems.items():
        assert x.dtype == np.float32 and x.shape == (int(6.0 * 22050),)
        assert abs(float(x.mean())) < 1e-3, name
        assert np.abs(x).max() > 1e-3, f"{name} silent"
        assert np.isfinite(x).all()


def test_render_deterministic_and_seed_changes_timbre():
    song = compose(5, 3.0)
    a, b = render_song(song), render_song(song)
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)
    c = render_song(song, seed=6)  # same notes, different timbre seed
    assert all(a[k].tobytes() != c[k].tobytes() for k in a)


def test_render_other_part():
    """An other part renders as a fifth non-silent stem; the mixture still peaks below 0.95."""
    song = compose(11, 6.0, other_prob=1.0)
    stems = render_song(song)
    assert list(stems) == ["bass", "drums", "guitar", "piano", "other"]
    assert np.abs(np.sum(list(stems.values()), axis=0, dtype=np.float32)).max() <= 0.95
    x = stems["other"]
    assert x.dtype == np.float32 and len(x) == len(stems["bass"]) and np.abs(x).max() > 1e-2
    assert abs(float(x.mean())) < 1e-3 and np.isfinite(x).all()
    family = {}                                  # one song of each timbre: bowed, brass, lead, pad
    for s in range(60):
        g = compose(s, 1.5, other_prob=1.0)
        family.setdefault(min((51, 63, 87, 95), key=lambda top: (top < g.programs["other"], top)), g)
    assert len(family) == 4
    for g in family.values():
        y = render_song(g)["other"]
        assert np.abs(y).max() > 1e-2 and np.isfinite(y).all(), g.programs["other"]


def test_karplus_strong_pitch():
    sr, f0 = 22050, 196.0
    x = karplus_strong(f0, sr, sr, t60=2.0, bright=0.2, rng=np.random.default_rng(0))
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    peaks = np.argsort(spec)[-6:] * sr / len(x)          # strongest partials sit on harmonics of f0
    ratio = peaks / f0
    assert np.all(np.abs(ratio - np.round(ratio)) < 0.02 * np.round(ratio)) and np.all(np.round(ratio) >= 1)


def test_render_speed():
    song = compose(2, 10.0)
    render_song(compose(1, 1.0))
    t = time.perf_counter()
    render_song(song)
    assert 10.0 / (time.perf_counter() - t) > 5.0   # loose (shared CI); the benchmark measures >= 20x


def test_split_counts():
    assert split_counts(6) == (4, 1, 1)
    assert split_counts(2, (0, 0, 1)) == (0, 0, 2) and split_counts(20, (0, 0, 1)) == (0, 0, 20)
    assert split_counts(2) == (2, 0, 0)
    assert sum(split_counts(37)) == 37


def test_dataset_byte_identical_and_varied(tmp_path, tiny_dataset):
    again = synth_dataset(tmp_path / "again", tracks=6, seconds=4.0, seed=0, progress=False, workers=1)
    files = sorted(p.relative_to(tiny_dataset) for p in tiny_dataset.rglob("*") if p.is_file())
    assert len(files) == 6 * 7 + 1                  # 4 stems, mix.wav, song.mid, metadata.json; dataset.json
    for rel in files:
        assert (tiny_dataset / rel).read_bytes() == (again / rel).read_bytes(), rel
    metas = [json.loads(p.read_text()) for p in sorted(tiny_dataset.glob("*/*/metadata.json"))]
    assert len({m["tempo"] for m in metas}) > 3 and len({m["style"] for m in metas}) > 2
    assert {p.parent.name for p in tiny_dataset.glob("*/Track*")} == {"train", "validation", "test"}
    other = synth_dataset(tmp_path / "other", tracks=1, seconds=4.0, seed=1, progress=False)
    a = (tiny_dataset / "train/Track00000/bass.wav").read_bytes()
    assert a != (other / "train/Track00000/bass.wav").read_bytes()
    x = {s: sf.read(tiny_dataset / f"train/Track00000/{s}.wav", dtype="float32")[0] for s in
         ("bass", "drums", "guitar", "piano")}
    info = sf.info(tiny_dataset / "train/Track00000/bass.wav")
    assert info.samplerate == 22050 and info.channels == 1 and info.subtype == "FLOAT"
    assert np.abs(sum(x.values())).max() <= 0.95
    mix = sf.read(tiny_dataset / "train/Track00000/mix.wav", dtype="float32")[0]
    assert np.array_equal(mix, np.sum(np.stack([x[s] for s in ("bass", "drums", "guitar", "piano")]), 0,
                                       dtype=np.float32))                 # what `separate TRACK` reads


def test_builder_errors(tmp_path):
    with pytest.raises(ConfigError):
        synth_dataset(tmp_path, tracks=0, seconds=2, seed=0, progress=False)
    with pytest.raises(ConfigError):
        synth_dataset(tmp_path, tracks=1, seconds=2, seed=0, renderer="soundfont", progress=False)
    with pytest.raises(InputError, match="bad.sf2"):
        (tmp_path / "bad.sf2").write_bytes(b"not a soundfont")
        synth_dataset(tmp_path / "x", tracks=1, seconds=2, seed=0, renderer="soundfont",
                      soundfont=tmp_path / "bad.sf2", progress=False)
    with pytest.raises(InputError, match="nothing.mid"):
        render_midi_dataset(tmp_path / "nothing.mid", tmp_path / "bad.sf2", tmp_path / "y", progress=False)


def test_program_mapping():
    assert [stem_of_program(p) for p in (0, 7, 8, 24, 31, 32, 39, 40)] == \
        ["piano", "piano", "other", "guitar", "guitar", "bass", "bass", "other"]
    assert stem_of_program(5, is_drum=True) == "drums"


def _two_bar_midi(path):
    mf = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mf.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    for ch, prog in ((0, 33), (1, 25), (2, 0), (3, 48)):
        tr.append(mido.Message("program_change", channel=ch, program=prog, time=0))
    ev = []
    for beat in range(8):
        t = beat * 480
        ev += [(t, "note_on", 0, 40, 100), (t + 400, "note_off", 0, 40, 0),
               (t, "note_on", 9, 36 if beat % 2 == 0 else 38, 110),
               (t + 100, "note_off", 9, 36 if beat % 2 == 0 else 38, 0)]
    for bar in range(2):
        t = bar * 1920
        for n in (52, 56, 59):
            ev += [(t, "note_on", 1, n, 90), (t + 1800, "note_off", 1, n, 0)]
        for n in (64, 68, 71):
            ev += [(t + 960, "note_on", 2, n, 80), (t + 1900, "note_off", 2, n, 0)]
        ev += [(t, "note_on", 3, 76, 70), (t + 1900, "note_off", 3, 76, 0)]
    now = 0
    for t, typ, ch, n, v in sorted(ev):
        tr.append(mido.Message(typ, channel=ch, note=n, velocity=v, time=t - now))
        now = t
    mf.save(path)


@needs_sf2
def test_soundfont_two_bars(tmp_path):
    _two_bar_midi(tmp_path / "two.mid")
    stems = render_midi(tmp_path / "two.mid", SF2, tail=0.5)
    assert set(stems) == {"bass", "drums", "guitar", "piano", "other"}
    n = len(stems["bass"])
    assert abs(n / 22050 - 4.5) < 0.1
    for k, x in stems.items():
        assert x.dtype == np.float32 and len(x) == n and np.abs(x).max() > 1e-3, k
    # clean stems: nothing of the other classes leaks into piano before its first note (beat 2)
    assert np.abs(stems["piano"][: int(0.9 * 22050)]).max() < 1e-4
    out = render_midi_dataset(tmp_path / "two.mid", SF2, tmp_path / "ds", progress=False)
    tdir = out / "train" / "Track00000"
    assert sorted(p.name for p in tdir.iterdir()) == ["bass.wav", "drums.wav", "guitar.wav", "metadata.json",
                                                      "mix.wav", "other.wav", "piano.wav", "song.mid"]
    meta = json.loads((tdir / "metadata.json").read_text())
    assert meta["programs"]["bass"] == [33] and meta["programs"]["other"] == [48]


@needs_sf2
def test_soundfont_renderer_dataset(tmp_path):
    out = synth_dataset(tmp_path / "sf", tracks=1, seconds=2.0, seed=3, renderer="soundfont", soundfont=SF2,
                        progress=False)
    x = sf.read(out / "train/Track00000/drums.wav")[0]
    assert len(x) == 44100 and np.abs(x).max() > 1e-3
    out = synth_dataset(tmp_path / "sf5", tracks=1, seconds=2.0, seed=3, renderer="soundfont", soundfont=SF2,
                        progress=False, other_prob=1.0)      # the other part on its own GM program
    y = sf.read(out / "train/Track00000/other.wav")[0]
    assert len(y) == 44100 and np.abs(y).max() > 1e-3
    assert json.loads((out / "train/Track00000/metadata.json").read_text())["programs"]["other"] in range(40, 96)


@needs_sf2
def test_render_midi_cli_test_only_split(tmp_path, capsys):
    """`--splits 0,0,1` puts every rendered song in the test split (the peers' second test set)."""
    from latentmix import cli
    for i in range(2):
        _two_bar_midi(tmp_path / f"m{i}.mid")
    rc = cli.main(["data", "render-midi", "--midi", str(tmp_path), "--soundfont", str(SF2), "--out",
                   str(tmp_path / "ds"), "--splits", "0,0,1", "--workers", "1", "--quiet", "--tail", "0.2"])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "ds" / "test").iterdir()) == ["Track00000", "Track00001"]
    assert not (tmp_path / "ds" / "train").exists() or not any((tmp_path / "ds" / "train").iterdir())
    rc = cli.main(["data", "render-midi", "--midi", str(tmp_path), "--soundfont", str(SF2), "--out",
                   str(tmp_path / "ds2"), "--splits", "all"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--splits" in err[-1]
