"""The composer: deterministic songs, style/tempo variety, rests, programs, captions, MIDI output, the optional
other part (and that without it every song is what it always was)."""
import hashlib
import json

import mido
import pytest

from latentmix.data.composer import MIDI_CHANNEL, STEM_ORDER, STYLES, compose


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


def _fingerprint(song) -> str:
    d = dict(meta=song.metadata(), chords=song.chords, sections=song.sections,
             notes=[(n.stem, n.pitch, n.start_s, n.dur_s, n.velocity) for n in song.notes])
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


# computed by the composer before the other part existed: existing datasets and seeds must not change
PINNED = {(0, 4.0): "690cdc6eaf7b0530", (7, 12.0): "d85bfc7f723c7f1b", (123456, 20.0): "356cb3e653ee1067",
          (2**31 + 5, 1.0): "b96a482b4d7e8fee"}


@pytest.mark.parametrize("seed, seconds", sorted(PINNED))
def test_default_song_is_unchanged(seed, seconds):
    song = compose(seed, seconds)
    assert _fingerprint(song) == PINNED[(seed, seconds)]
    assert compose(seed, seconds, other_prob=0.0) == song and song.stems == STEM_ORDER
    with_other = compose(seed, seconds, other_prob=1.0)      # the other part comes from a generator of its own
    for stem in STEM_ORDER:
        assert with_other.stem_notes(stem) == song.stem_notes(stem)


def test_other_part(tmp_path):
    songs = [compose(s, 8.0, other_prob=1.0) for s in range(24)]
    programs = {s.programs["other"] for s in songs}
    assert any(40 <= p <= 51 for p in programs) and any(56 <= p <= 63 for p in programs)
    assert any(80 <= p <= 95 for p in programs)
    for s in songs:
        assert s.stems == STEM_ORDER + ("other",)
        notes = s.stem_notes("other")
        assert notes and all(0 <= n.start_s < s.seconds and n.dur_s > 0 and 1 <= n.velocity <= 127 for n in notes)
        assert s.metadata()["n_notes"]["other"] == len(notes)
        assert all("other" in p for _, _, p in s.sections) and any(p["other"] for _, _, p in s.sections)
    assert len({len(s.stem_notes("other")) > 30 for s in songs}) == 2      # sustained parts and busy ones
    share = sum("other" in compose(s, 2.0, other_prob=0.4).programs for s in range(200)) / 200
    assert 0.3 < share < 0.5
    song = songs[0]
    song.to_midi(tmp_path / "o.mid")
    mf = mido.MidiFile(tmp_path / "o.mid")
    assert len(mf.tracks) == 6
    progs = {m.channel: m.program for tr in mf.tracks for m in tr if m.type == "program_change"}
    assert progs[MIDI_CHANNEL["other"]] == song.programs["other"]
    on = [m for tr in mf.tracks for m in tr if m.type == "note_on" and m.channel == MIDI_CHANNEL["other"]]
    assert len([m for m in on if m.velocity > 0]) == len(song.stem_notes("other"))
    with pytest.raises(ValueError):
        compose(0, 1.0, other_prob=1.5)
