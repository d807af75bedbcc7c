"""data/fresh.py: songs composed and rendered per training window (issue #19): the root syntax, items like
StemWindows' (shape, reproducible per seed and index, new songs per index), and the separator task using them."""
from pathlib import Path

import pytest
import torch

from latentmix.data.fresh import FreshSongs, is_fresh, parse
from latentmix.errors import ConfigError, InputError

SR = 22050
GM = Path("/usr/share/sounds/sf2/sf_GMbank.sf2")   # a training SoundFont (never FluidR3_GM / TimGM6mb)


def test_root_syntax(tmp_path):
    assert is_fresh("synth:procedural") and not is_fresh("data/slakhlike")
    assert parse("synth:procedural") == ("procedural", None)
    sf2 = tmp_path / "x.sf2"
    sf2.write_bytes(b"RIFF")
    assert parse(f"synth:soundfont={sf2}") == ("soundfont", str(sf2))
    with pytest.raises(InputError, match="nope.sf2: no such SoundFont"):
        parse(f"synth:soundfont={tmp_path / 'nope.sf2'}")
    for bad in ("synth:", "synth:fm", "synth:soundfont", "synth:soundfont="):
        with pytest.raises(ConfigError, match="unknown song source"):
            parse(bad)


def test_fresh_songs_are_never_a_data_synth_song():
    from latentmix.data.build import track_seed
    from latentmix.data.composer import compose
    from latentmix.data.fresh import SONG_SALT
    ours = compose(track_seed(0 ^ SONG_SALT, 0), 3.0)
    assert ours.seed != compose(track_seed(0, 0), 3.0).seed


def test_items_are_new_songs_reproducible_per_seed_and_index():
    ds = FreshSongs("synth:procedural", seconds=1.0, seed=3, length=6)
    a = ds[2]
    assert len(ds) == 6 and a.shape == (4, SR) and a.dtype == torch.float32 and torch.isfinite(a).all()
    assert torch.equal(a, FreshSongs("synth:procedural", seconds=1.0, seed=3, length=6)[2])
    assert not torch.equal(a, ds[3])
    assert not torch.equal(a, FreshSongs("synth:procedural", seconds=1.0, seed=4, length=6)[2])
    assert sum(bool(ds[i].abs().amax(1).gt(0).sum() >= 2) for i in range(3)) == 3   # a mix, not one stem
    with pytest.raises(IndexError):
        ds[6]
    five = FreshSongs("synth:procedural", seconds=1.0, seed=0, length=8,
                      stems=("bass", "drums", "guitar", "piano", "other"), other_prob=1.0, song_seconds=8.0)
    assert any(five[i][4].abs().max() > 0 for i in range(8))
    with pytest.raises(ConfigError, match="shorter than"):
        FreshSongs("synth:procedural", seconds=4.0, song_seconds=2.0)


@pytest.mark.skipif(not GM.is_file(), reason="Debian's csound-soundfont (sf_GMbank.sf2) is not installed")
def test_soundfont_songs():
    x = FreshSongs(f"synth:soundfont={GM}", seconds=1.0, seed=1, length=2)[0]
    assert x.shape == (4, SR) and torch.isfinite(x).all() and x.abs().max() > 0


def test_separator_task_takes_fresh_songs_as_a_root(tiny_dataset):
    from latentmix.train.tasks.separator import SeparatorTask
    spec = dict(arch="spec", channels=8, hidden=8, layers=1, segment_seconds=1.0)
    cfg = {"model": spec, "train": {"steps": 10, "batch_size": 100, "segment_seconds": 1.0,
                                    "extra_data": ["synth:procedural"]}}
    ds = SeparatorTask(cfg, str(tiny_dataset), 0).train_dataset()
    assert isinstance(ds.datasets[1], FreshSongs) and len(ds.datasets[1]) == 500
    assert ds.datasets[0].effects_p == ds.datasets[1].effects_p == 0.0
    cfg["train"]["effects_p"] = 0.4
    ds = SeparatorTask(cfg, str(tiny_dataset), 0).train_dataset()
    assert ds.datasets[0].effects_p == ds.datasets[1].effects_p == 0.4       # both kinds of root get it
    assert ds[len(ds) - 1].shape == (4, SR)
    cfg["train"]["extra_data"] = ["synth:fm"]
    with pytest.raises(ConfigError, match="synth:fm"):
        SeparatorTask(cfg, str(tiny_dataset), 0).train_dataset()


def _tone_midi(path, program: int, key: int, bend: int | None = None):
    import mido
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.Message("program_change", channel=0, program=program, time=0))
    if bend is not None:
        tr.append(mido.Message("pitchwheel", channel=0, pitch=bend, time=0))
    tr.append(mido.Message("note_on", channel=0, note=key, velocity=100, time=0))
    tr.append(mido.Message("note_off", channel=0, note=key, velocity=0, time=960))
    mid.save(path)
    return path


def _pitch(x) -> float:
    import numpy as np
    seg = x[2000:2000 + 16384] * np.hanning(16384)
    spec = np.abs(np.fft.rfft(seg, 4 * 16384))
    spec[:int(30 * 4 * 16384 / SR)] = 0
    strong = np.flatnonzero(spec > 0.3 * spec.max())      # the fundamental: the lowest strong peak
    end = strong[0] + int(np.argmax(np.diff(strong) > 1)) if (np.diff(strong) > 1).any() else strong[-1]
    return float((strong[0] + np.argmax(spec[strong[0]:end + 1])) * SR / (4 * 16384))


@pytest.mark.skipif(not GM.is_file(), reason="Debian's csound-soundfont (sf_GMbank.sf2) is not installed")
def test_zone_shift_keeps_the_pitch_and_changes_the_sample(tmp_path):
    """render_midi(zone_shift=...): a note played from a zone k keys away sounds at its written pitch (a song's own
    wheel still bends it by its amount), its waveform differs; a later unshifted render is the same as before."""
    import numpy as np
    from latentmix.data.soundfont import render_midi
    plain = _tone_midi(tmp_path / "a.mid", 33, 45)
    ref = render_midi(plain, GM, tail=0.2)["bass"]
    for k in (-7, 5):
        moved = render_midi(plain, GM, tail=0.2, zone_shift={"bass": k})["bass"]
        assert abs(_pitch(moved) / _pitch(ref) - 1) < 0.01
        assert not np.allclose(moved, ref, atol=1e-3)
    bent = _tone_midi(tmp_path / "b.mid", 33, 45, bend=8191)    # +2 semitones on the default range
    up = render_midi(bent, GM, tail=0.2)["bass"]
    assert abs(_pitch(up) / _pitch(ref) - 2 ** (2 / 12)) < 0.01
    assert abs(_pitch(render_midi(bent, GM, tail=0.2, zone_shift={"bass": 5})["bass"]) / _pitch(up) - 1) < 0.01
    assert np.array_equal(render_midi(plain, GM, tail=0.2)["bass"], ref)     # the cached synth's range put back
    import mido          # a song's own data entry, RPN 0 selection or controller reset must not undo the shift
    for name, ccs in (("c", [(6, 24)]), ("d", [(101, 0), (100, 0), (6, 24)]), ("e", [(121, 0)])):
        song = mido.MidiFile(plain)
        for i, (cc, val) in enumerate(ccs):
            song.tracks[0].insert(1 + i, mido.Message("control_change", channel=0, control=cc, value=val, time=0))
        song.save(tmp_path / f"{name}.mid")
        assert abs(_pitch(render_midi(tmp_path / f"{name}.mid", GM, tail=0.2, zone_shift={"bass": 5})["bass"])
                   / _pitch(ref) - 1) < 0.01, name


@pytest.mark.skipif(not GM.is_file(), reason="Debian's csound-soundfont (sf_GMbank.sf2) is not installed")
def test_fresh_songs_zone_shift():
    """N > 0 changes the pitched stems, reproducibly per index; it leaves nothing behind in the cached
    synthesiser: an unshifted item drawn after shifted ones (zone_shift 0) is the one drawn before them."""
    root = f"synth:soundfont={GM}"
    a = FreshSongs(root, seconds=1.0, seed=3, length=2)[1]
    b = FreshSongs(root, seconds=1.0, seed=3, length=2, zone_shift=3)
    assert torch.equal(b[1], b[1]) and not torch.equal(b[1], a)
    assert torch.equal(FreshSongs(root, seconds=1.0, seed=3, length=2, zone_shift=0)[1], a)


def test_zone_shift_setting_is_checked():
    from latentmix.train.settings import train_settings
    sf = {"extra_data": ["synth:soundfont=/x/GM.sf2"]}
    assert train_settings({"train": {"zone_shift": 2, **sf}})["zone_shift"] == 2
    with pytest.raises(ConfigError, match="zone_shift 2 shifts the notes of synth:soundfont=PATH songs"):
        train_settings({"train": {"zone_shift": 2, "extra_data": ["synth:procedural"]}})   # nothing to shift
    with pytest.raises(ConfigError, match="zone_shift"):
        train_settings({"train": {"zone_shift": 13}})
