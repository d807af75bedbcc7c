"""GUS patch sets -> SoundFont (data/gus_patch.py, `latentmix data make-sf2`) on tiny .pat files written here:
the converted font plays the right pitches through the renderer, and bad patches, configs and note folders fail
with one line naming the file and leave no output."""
import struct

import mido
import numpy as np
import pytest
import soundfile as sf

from latentmix.cli import main
from latentmix.data.gus_patch import (convert, estimate_key, read_cfg, read_drum_kit, read_note_samples,
                                      read_patch, read_program_sample)
from latentmix.data.sf2_samples import preset_samples
from latentmix.data.soundfont import render_midi
from latentmix.errors import InputError

SR = 22050


def pat(waves) -> bytes:
    """A GF1 patch: waves are dicts with pcm (int16), rate, lo/hi/root (Hz), modes, loop (frames) and envelope."""
    head = b"GF1PATCH110\0" + b"ID#000002\0" + b"test".ljust(60, b"\0") + bytes([1, 14, 0])
    head += struct.pack("<HHI", len(waves), 127, 0) + bytes(36)
    inst = struct.pack("<H16sIB", 0, b"inst", 0, 1) + bytes(40)
    layer = struct.pack("<BBIB", 0, 0, 0, len(waves)) + bytes(40)
    body = b""
    for w in waves:
        data = np.asarray(w["pcm"], "<i2").tobytes()
        ls, le = w.get("loop", (0, 0))
        body += struct.pack("<7sBIIIHIIIhB6s6s3s3sBHH36s", b"w", 0, len(data), 2 * ls, 2 * le, w["rate"],
                            int(w["lo"] * 1000), int(w["hi"] * 1000), int(w["root"] * 1000), 512, 7,
                            w.get("rates", bytes([63] * 6)), w.get("offsets", bytes([250, 250, 250, 10, 10, 10])),
                            bytes(3), bytes(3), w["modes"], 2, w.get("scale", 1024), bytes(36)) + data
    assert len(head) == 129 and len(inst) == 63 and len(layer) == 47
    return head + inst + layer + body


def tone(hz, seconds=0.5, rate=SR):
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * hz * t) * 12000).astype(np.int16)


def pitch(x, sr=SR):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), 8 * len(x)))
    return np.argmax(spec) * sr / (8 * len(x))


@pytest.fixture
def patch_set(tmp_path):
    """A config with a looped tone labelled 30 cents sharp of A4 (programs 0 and 33), a one-shot noise drum on
    note 36 and a pitched drum (a 440 Hz wave, root A4, scale factor 1024) on note 57."""
    sharp = 440.0 * 2 ** (0.3 / 12)
    wave = tone(sharp, 1.0)
    period = SR / sharp
    loop_start, loop_end = int(round(100 * period)), int(round(400 * period))    # close to whole periods
    (tmp_path / "tone.pat").write_bytes(pat([dict(pcm=wave, rate=SR, lo=20, hi=8000, root=sharp,
                                                  modes=1 | 4 | 32 | 64, loop=(loop_start, loop_end))]))
    (tmp_path / "bell.pat").write_bytes(pat([dict(pcm=tone(440.0, 1.0), rate=SR, lo=20, hi=8000, root=440.0,
                                                  modes=1)]))
    noise = (np.random.default_rng(0).standard_normal(4000) * 6000).astype(np.int16)
    (tmp_path / "kick.pat").write_bytes(pat([dict(pcm=noise, rate=SR, lo=20, hi=8000, root=261.6, modes=1,
                                                  scale=0)]))
    cfg = tmp_path / "set.cfg"
    cfg.write_text(f"dir {tmp_path}\n# comment\ndrumset 0\n 36\tkick.pat amp=100\n 57 bell.pat\n"
                   f"bank 0\n 0\ttone.pat amp=120\n"
                   f" 33\ttone\nbank 1\n 5\tmissing.pat\n")
    return cfg


def one_note(program, note, channel=0, seconds=0.4, velocity=100):
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000))
    if channel != 9:
        tr.append(mido.Message("program_change", program=program, channel=channel))
    tr.append(mido.Message("note_on", note=note, velocity=velocity, channel=channel))
    tr.append(mido.Message("note_off", note=note, velocity=0, channel=channel, time=int(seconds * 960)))
    return mid


def test_read_cfg_takes_bank0_and_drumset0(patch_set, tmp_path):
    tones, drums = read_cfg(patch_set)
    assert sorted(tones) == [0, 33] and sorted(drums) == [36, 57]         # bank 1 is skipped
    assert tones[0] == (tmp_path / "tone.pat", 1.2) and tones[33][0] == tmp_path / "tone.pat"


def test_converted_font_plays_pitches_and_drums(patch_set, tmp_path):
    out = tmp_path / "set.sf2"
    info = convert(patch_set, out)
    assert info == {"presets": 2, "drum_notes": 2, "samples": 3, "bytes": out.stat().st_size}
    presets = preset_samples(out)
    assert sorted(presets) == [(0, 0), (0, 33), (128, 0)] and presets[(0, 0)] == presets[(0, 33)]
    for note in (57, 69, 81):       # in tune to 5 cents: the label's 30 cents corrected once (not twice, not 0)
        y = render_midi(one_note(0, note), out, tail=0.2)["piano"]
        assert np.abs(y).max() > 0.01
        want = 440.0 * 2 ** ((note - 69) / 12)
        assert abs(1200 * np.log2(pitch(y[1000:16000]) / want)) < 5
    bass = render_midi(one_note(33, 45), out, tail=0.2)["bass"]
    assert abs(pitch(bass[2000:8000]) - 110.0) < 2.0
    drums = render_midi(one_note(0, 36, channel=9), out, tail=0.2)["drums"]
    assert np.abs(drums[:3000]).max() > 0.01
    bell = render_midi(one_note(0, 57, channel=9), out, tail=0.2)["drums"]
    assert abs(pitch(bell[1000:8000]) - 220.0) < 2.0   # a pitched GUS drum: key 57 against its root A4 (69)


def test_pingpong_loop_is_unrolled(tmp_path):
    ramp = np.arange(100, dtype=np.int16) * 100
    (tmp_path / "pp.pat").write_bytes(pat([dict(pcm=ramp, rate=SR, lo=20, hi=8000, root=440, modes=1 | 4 | 8,
                                                loop=(20, 80))]))
    w, = read_patch(tmp_path / "pp.pat")
    assert w.loop == (20, 80 + 58) and len(w.pcm) == 138
    assert np.array_equal(w.pcm[80:], ramp[78:20:-1])


def test_unsigned_8bit_patch_is_centred(tmp_path):
    raw = np.array([128, 255, 0, 128] * 10, np.uint8)
    body = pat([dict(pcm=np.zeros(0, np.int16), rate=SR, lo=20, hi=8000, root=440, modes=2)])
    # rewrite the one wave's size and append 8-bit data
    off = 129 + 63 + 47
    body = body[:off + 8] + struct.pack("<I", len(raw)) + body[off + 12:] + raw.tobytes()
    w, = read_patch_bytes(tmp_path, body)
    assert w.pcm.tolist()[:4] == [0, 127 * 256, -128 * 256, 0]


def read_patch_bytes(tmp_path, body):
    (tmp_path / "b.pat").write_bytes(body)
    return read_patch(tmp_path / "b.pat")


def test_note_samples_replace_programs(patch_set, tmp_path):
    folder = tmp_path / "piano"
    folder.mkdir()
    for name, hz in (("A4v10.wav", 440.0), ("C4.wav", 261.63), ("D#5.flac", 622.25)):
        sf.write(folder / name, tone(hz, 1.0, 44100).astype(np.float32) / 32768, 44100)
    (folder / "readme.txt").write_text("not audio")
    waves = read_note_samples(folder)
    assert [w.root_key for w in waves] == [60.0, 69.0, 75.0]
    assert max(int(np.abs(w.pcm).max()) for w in waves) == pytest.approx(0.9 * 32767, abs=2)
    out = tmp_path / "with_piano.sf2"
    convert(patch_set, out, note_samples=folder, programs=(0,))
    y = render_midi(one_note(0, 70), out, tail=0.1)["piano"]      # one semitone above the A4 recording
    assert abs(pitch(y[2000:8000]) - 466.16) < 3.0


def harmonic(hz, seconds=1.5, rate=44100, fundamental=1.0):
    """A decaying tone with seven harmonics, the h-th at 1/h and the first at `fundamental`: a plucked string's
    shape; with a small `fundamental` the second harmonic is the loudest bin, as in a low bass recording."""
    t = np.arange(int(seconds * rate)) / rate
    amps = [fundamental] + [1 / h for h in range(2, 8)]
    tone = sum(a * np.sin(2 * np.pi * hz * h * t) for h, a in enumerate(amps, 1))
    return (tone * np.exp(-2 * t) * 0.3).astype(np.float32)


@pytest.mark.parametrize("hz", [41.2, 110.0, 440.0, 1000.0])
def test_estimate_key_finds_the_pitch_of_a_one_shot(hz):
    for rate in (22050, 44100, 48000):
        for fundamental in (1.0, 0.2):              # also with the octave above the loudest: not an octave error
            assert estimate_key(harmonic(hz, rate=rate, fundamental=fundamental), rate) == \
                pytest.approx(69 + 12 * np.log2(hz / 440), abs=0.05), (rate, fundamental)
    noise = np.random.default_rng(0).standard_normal(44100).astype(np.float32)
    with pytest.raises(InputError, match="no steady pitch"):
        estimate_key(noise, 44100)


def test_program_sample_plays_one_recording_on_the_programs_named(patch_set, tmp_path, capsys):
    rec = tmp_path / "guitar.ogg"
    sf.write(rec, harmonic(196.0), 44100)                       # G3 = key 55
    w, = read_program_sample(rec)
    assert w.root_key == pytest.approx(55.0, abs=0.05) and (w.low_key, w.high_key) == (0.0, 127.0)
    assert read_program_sample(rec, key=43.0)[0].root_key == 43.0      # a given key wins over the estimate
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, harmonic(196.0) * 0.05, 44100)
    level = [float(np.sqrt(np.mean((v.pcm[:44100] / 32767.0) ** 2))) for v in (w, read_program_sample(quiet)[0])]
    assert level == pytest.approx([10 ** (-18 / 20)] * 2, rel=0.01)    # the same level whatever the recording's
    out = tmp_path / "with_guitar.sf2"
    assert main(["data", "make-sf2", "--cfg", str(patch_set), "--program-sample", f"25-26,33={rec}",
                 "--out", str(out)]) == 0
    assert "4 presets" in capsys.readouterr().out
    presets = preset_samples(out)
    assert presets[(0, 25)] == presets[(0, 26)] == presets[(0, 33)] != presets[(0, 0)]
    y = render_midi(one_note(25, 67), out, tail=0.1)["guitar"]         # an octave above the recording
    assert abs(pitch(y[2000:12000]) - 392.0) < 3.0
    bass = render_midi(one_note(33, 43), out, tail=0.1)["bass"]       # program 33 now plays it too, an octave down
    assert abs(pitch(bass[2000:12000]) - 98.0) < 2.0
    bad_out = tmp_path / "bad.sf2"
    for value, why in (("25", "PROGRAMS=FILE"), (f"200={rec}", "PROGRAMS=FILE"), (f"25-x={rec}", "PROGRAMS=FILE"),
                       (f"25={rec}@300", "PROGRAMS=FILE"), (f"25={tmp_path / 'none.ogg'}", "none.ogg")):
        assert main(["data", "make-sf2", "--cfg", str(patch_set), "--program-sample", value,
                     "--out", str(bad_out)]) != 0
        err = capsys.readouterr().err
        assert why in err and len(err.strip().splitlines()) == 1, (value, err)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(44100, np.float32), 44100)
    assert main(["data", "make-sf2", "--cfg", str(patch_set), "--program-sample", f"25={silent}",
                 "--out", str(bad_out)]) != 0
    assert "silent.wav: silent or empty" in capsys.readouterr().err
    assert not bad_out.exists()


def test_program_sample_options_do_not_clash_or_duplicate(patch_set, tmp_path, capsys):
    rec = tmp_path / "take@2x.wav"                  # an '@' in the path is not a key unless a number ends it
    sf.write(rec, harmonic(196.0), 44100)
    counts = {}
    for label, values in (("one option", [f"25-26={rec}"]), ("two options", [f"25={rec}", f"26={rec}"])):
        out = tmp_path / f"{label}.sf2"
        args = [a for v in values for a in ("--program-sample", v)]
        assert main(["data", "make-sf2", "--cfg", str(patch_set), *args, "--out", str(out)]) == 0
        counts[label] = capsys.readouterr().out.split(" samples")[0].rsplit(" ", 1)[-1]
        assert out.read_bytes().count(b"take@2x.wav") == 1        # named once in the font's name
    assert counts["one option"] == counts["two options"]          # the recording is stored once
    bad_out = tmp_path / "bad.sf2"
    notes = tmp_path / "notes"
    notes.mkdir()
    sf.write(notes / "C4.wav", harmonic(261.6), 44100)
    sf.write(notes / "As2.wav", harmonic(116.5), 44100)          # tonejs-instruments' 's' for sharp: A#2 = key 46
    sf.write(notes / "Cs4.wav", harmonic(300.0), 44100)          # deliberately off C#4 (277.2 Hz): it plays as is
    assert [w.root_key for w in read_note_samples(notes)] == [46.0, 60.0, 61.0]
    assert main(["data", "make-sf2", "--cfg", str(patch_set), "--program-sample", f"26-27,27={notes}",
                 "--out", str(tmp_path / "folder.sf2")]) == 0
    for key, hz in ((46, 116.5), (60, 261.6), (61, 300.0)):       # each key its own recording, not a neighbour's
        y = render_midi(one_note(26, key), tmp_path / "folder.sf2", tail=0.1)["guitar"]
        assert abs(pitch(y[2000:12000]) - hz) < 0.01 * hz, key
    capsys.readouterr()
    for args, why in ((["--program-sample", f"25={rec}", "--program-sample", f"24-25={rec}@48"], "program 25"),
                      (["--note-samples", str(notes), "--note-programs", "0,1", "--program-sample", f"1={rec}"],
                       "program 1 is given twice (--note-samples"),
                      (["--program-sample", f"0-999999999={rec}"], "PROGRAMS=FILE"),
                      (["--program-sample", f"5-3={rec}"], "PROGRAMS=FILE"),
                      (["--program-sample", f"25={rec}@4_8"], "4_8"),
                      (["--program-sample", f"25={notes}@48"], "a folder of note samples takes no @KEY")):
        assert main(["data", "make-sf2", "--cfg", str(patch_set), *args, "--out", str(bad_out)]) != 0
        err = capsys.readouterr().err
        assert why in err and len(err.strip().splitlines()) == 1, (args, err)
    assert not bad_out.exists()


@pytest.mark.parametrize("damage, why", [
    (lambda b: b"NOTAPATCH" + b[9:], "not a GUS patch file"),
    (lambda b: b[:129 + 63 + 47 + 50], "truncated patch file"),
    (lambda b: b[:-100], "truncated patch file"),
    (lambda b: b"", "not a GUS patch file"),
])
def test_bad_patch_is_one_line_error(tmp_path, damage, why):
    good = pat([dict(pcm=tone(440, 0.1), rate=SR, lo=20, hi=8000, root=440, modes=1)])
    bad = tmp_path / "bad.pat"
    bad.write_bytes(damage(good))
    with pytest.raises(InputError, match=why) as e:
        read_patch(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


def test_cli_make_sf2_and_its_errors(patch_set, tmp_path, capsys):
    out = tmp_path / "cli.sf2"
    assert main(["data", "make-sf2", "--cfg", str(patch_set), "--out", str(out)]) == 0
    assert out.exists() and "2 presets, 2 drum notes" in capsys.readouterr().out
    (tmp_path / "tone.pat").write_bytes(b"GF1PATCH110\0junk")
    bad_out = tmp_path / "bad.sf2"
    assert main(["data", "make-sf2", "--cfg", str(patch_set), "--out", str(bad_out)]) != 0
    err = capsys.readouterr().err
    assert "tone.pat" in err and len(err.strip().splitlines()) == 1
    assert not bad_out.exists() and not list(tmp_path.glob(".bad.sf2*"))
    assert main(["data", "make-sf2", "--cfg", str(tmp_path / "nope.cfg"), "--out", str(bad_out)]) != 0
    assert "no such timidity config" in capsys.readouterr().err
    empty = tmp_path / "empty.cfg"
    empty.write_text("# nothing\n")
    assert main(["data", "make-sf2", "--cfg", str(empty), "--out", str(bad_out)]) != 0
    assert "no patches" in capsys.readouterr().err
    assert main(["data", "make-sf2", "--cfg", str(patch_set), "--note-samples", str(tmp_path / "none"),
                 "--out", str(bad_out)]) != 0
    assert "no such folder of note samples" in capsys.readouterr().err
    assert main(["data", "make-sf2", "--cfg", str(patch_set), "--note-programs", "x", "--out", str(bad_out)]) != 0
    assert "--note-programs" in capsys.readouterr().err
    assert not bad_out.exists()


def write_kit(folder, namespace=True):
    """A two-instrument Hydrogen kit: a kick with a quiet 200 Hz layer and a loud 800 Hz one, and a closed hat."""
    folder.mkdir()
    for name, hz in (("k_soft.wav", 200.0), ("k_hard.wav", 800.0), ("hat.flac", 3000.0)):
        sf.write(folder / name, np.stack([tone(hz, 0.5, 44100)] * 2, 1).astype(np.float32) / 32768, 44100)
    ns = ' xmlns="http://www.hydrogen-music.org/drumkit"' if namespace else ""
    folder.joinpath("drumkit.xml").write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<drumkit_info{ns}><name>t</name><instrumentList>
 <instrument><id>0</id><name>Kick (22")</name><volume>1</volume><gain>1</gain>
  <layer><filename>k_hard.wav</filename><min>0.5</min><max>1</max><gain>1</gain></layer>
  <layer><filename>k_soft.wav</filename><min>0</min><max>0.5</max><gain>1</gain></layer></instrument>
 <instrument><id>1</id><name>Hat Closed</name><filename>hat.flac</filename></instrument>
 <instrument><id>2</id><name>Cajon slap</name><filename>hat.flac</filename></instrument>
</instrumentList></drumkit_info>""")
    return folder


@pytest.mark.parametrize("namespace", [True, False])
def test_drum_kit_maps_names_and_velocity_layers(patch_set, tmp_path, namespace):
    kit = read_drum_kit(write_kit(tmp_path / "kit", namespace))
    assert sorted(kit) == [35, 36, 42, 44, 46]          # kick takes 36 then 35; the hat all three hat keys
    assert [w.velocity for w in kit[36]] == [(0, 64), (65, 127)]
    out = tmp_path / "kit.sf2"
    info = convert(patch_set, out, drum_kit=tmp_path / "kit")
    assert info["drum_notes"] == 6                      # the kit's five keys and the patch set's 57
    for velocity, hz in ((30, 200.0), (120, 800.0)):
        y = render_midi(one_note(0, 36, channel=9, velocity=velocity), out, tail=0.2)["drums"]
        assert abs(pitch(y[1000:7000]) - hz) < 5.0


def test_bad_drum_kit_is_one_line_error(patch_set, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_drum_kit(tmp_path)
    kit = write_kit(tmp_path / "kit")
    (kit / "k_hard.wav").write_bytes(b"RIFF")
    with pytest.raises(InputError, match="k_hard.wav: not a readable audio file"):
        read_drum_kit(kit)
    (kit / "drumkit.xml").write_text("<drumkit_info><instrument><name>Cajon</name>")
    with pytest.raises(InputError, match="not a readable drumkit.xml"):
        read_drum_kit(kit)
    (kit / "drumkit.xml").write_text("<drumkit_info><instrument><name>Cajon</name>"
                                     "<filename>hat.flac</filename></instrument></drumkit_info>")
    with pytest.raises(InputError, match="no instrument with a name that maps"):
        convert(patch_set, tmp_path / "never.sf2", drum_kit=kit)
    assert not (tmp_path / "never.sf2").exists()


def test_bad_numbers_in_cfg_and_kit_are_one_line_errors(patch_set, tmp_path):
    bad = tmp_path / "bad.cfg"
    bad.write_text(f"dir {tmp_path}\nbank 0\n 0 tone.pat amp=loud\n")
    with pytest.raises(InputError, match="bad.cfg: bad amp= in '0 tone.pat amp=loud'"):
        read_cfg(bad)
    kit = write_kit(tmp_path / "kit")
    xml = (kit / "drumkit.xml").read_text().replace("<gain>1</gain></layer>", "<gain>x</gain></layer>", 1)
    (kit / "drumkit.xml").write_text(xml)
    with pytest.raises(InputError, match=r"drumkit.xml: <gain> of 'Kick \(22\"\)' is not a number"):
        read_drum_kit(kit)
    folder = tmp_path / "notes"
    folder.mkdir()
    for name in ("C4.wav", "C4v2.wav"):
        sf.write(folder / name, np.zeros(100, np.float32) + 0.1, 44100)
    with pytest.raises(InputError, match="C4v2.wav: a second recording of key 60"):
        read_note_samples(folder)


def test_kit_names_map_to_gm_keys_and_hats_choke(tmp_path):
    """Names as real kits spell them: 'Ride (Custom)' is a ride, not a tom; a second tom whose first key is
    taken gets the next free one; 'Side HH' is a hat; the hats share SoundFont exclusive class 1."""
    folder = tmp_path / "kit"
    folder.mkdir()
    sf.write(folder / "a.wav", np.zeros(200, np.float32) + 0.1, 44100)
    names = ["Kick", "Snare", "Tom Hi", "Tom Hi 2", "Ride (Custom, 20)", "Side HH", "Open HH"]
    body = "".join(f"<instrument><name>{n}</name><filename>a.wav</filename></instrument>" for n in names)
    (folder / "drumkit.xml").write_text(f"<drumkit_info><instrumentList>{body}</instrumentList></drumkit_info>")
    kit = read_drum_kit(folder)
    assert sorted(kit) == [35, 36, 38, 40, 42, 44, 46, 48, 50, 51, 59]
    from latentmix.data.gus_patch import _zones
    gens = {k: _zones(kit[k], 1.0, k)[0][0] for k in (42, 46, 38)}
    assert gens[42][57] == gens[46][57] == 1 and 57 not in gens[38]
