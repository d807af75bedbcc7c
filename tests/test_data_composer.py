"""The composer: deterministic songs, style/tempo variety, rests, programs, captions and MIDI output."""
import mido
import pytest

from latentmix.data.composer import STEM_ORDER, STYLES, compose


def test_same_seed_same_song():
    a, b = compose(7, 12.0), compose(7, 12.0)
    assert a == b


def test_attributes_and_variety():
    songs = [compose(s, 8.0) for s in range(24)]
    assert len({s.style for s in songs}) >= 4
    assert len({s.tempo for s in songs}) >= 10
    assert len({s.key for s in songs}) >= 6
    assert {s.mode for s in songs} == {"major", "minor"}
    for s in songs:
        assert 70 <= s.tempo <= 170 and s.style in STYLES
        assert 0 <= s.programs["piano"] <= 7 and 24 <= s.programs["guitar"] <= 31 and 32 <= s.programs["bass"] <= 39
        assert s.style in s.caption
        assert f"{int(s.tempo)} bpm" in s.caption and f"{s.key} {s.mode}" in s.caption
        for stem in STEM_ORDER:
            notes = s.stem_notes(stem)
            assert notes, f"{stem} silent in seed {s.seed}"
            assert all(0 <= n.start_s < s.seconds and n.dur_s > 0 and 1 <= n.velocity <= 127 for n in notes)
        assert len({n.velocity for n in s.notes}) > 5          # dynamics


def test_sections_have_rests_and_every_stem_plays():
    for seed in range(6):
        song = compose(seed, 40.0)
        plays = [p for _, _, p in song.sections]
        assert len(plays) >= 3
        assert any(not v for p in plays for v in p.values()), "no stem ever rests"
        for stem in STEM_ORDER:
            assert any(p[stem] for p in plays)
            # a resting section really has no notes of that stem
            for a, b, p in song.sections:
                if not p[stem]:
                    inside = [n for n in song.stem_notes(stem) if a + 0.05 < n.start_s < b - 0.05]
                    assert not inside


def test_swing_and_drum_fills():
    jazz = next(compose(s, 30.0) for s in range(200) if compose(s, 1.0).style == "jazz")
    assert jazz.swing > 0.58
    rock = next(compose(s, 30.0) for s in range(200) if compose(s, 1.0).style == "rock")
    toms = [n for n in rock.stem_notes("drums") if n.pitch in (43, 45, 47, 50)]
    assert toms, "no fills"


def test_to_midi(tmp_path):
    song = compose(3, 6.0)
    song.to_midi(tmp_path / "s.mid")
    mf = mido.MidiFile(tmp_path / "s.mid")
    assert len(mf.tracks) == 5
    chans = {m.channel for tr in mf.tracks for m in tr if m.type == "note_on"}
    assert 9 in chans
    progs = {m.channel: m.program for tr in mf.tracks for m in tr if m.type == "program_change"}
    assert progs[0] == song.programs["bass"] and progs[1] == song.programs["guitar"]
    n_on = sum(1 for tr in mf.tracks for m in tr if m.type == "note_on" and m.velocity > 0)
    assert n_on == len(song.notes)
    assert abs(mf.length - 6.0) < 0.6


def test_bad_seconds():
    with pytest.raises(ValueError):
        compose(0, 0)
