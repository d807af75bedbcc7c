"""Loaders on fixtures in the exact Slakh2100 and MSDM layouts, plain folders, windows, augmentation, chunks."""
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from latentmix.data import augment
from latentmix.data.chunks import eval_chunks, load_chunk, load_chunks, save_chunks
from latentmix.data.datasets import MissingStemError, StemWindows, detect_layout, list_tracks, load_track
from latentmix.errors import InputError

SR = 22050


def _tone(f, seconds=1.0, sr=SR, amp=0.2):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


@pytest.fixture
def slakh(tmp_path):
    """Slakh2100 layout: Track00001/{metadata.yaml, mix.flac, stems/S0N.flac}; two Guitar stems, one unrendered
    Piano stem (so piano is missing), a Strings stem (-> other), drums by is_drum."""
    tr = tmp_path / "slakh" / "train" / "Track00001"
    (tr / "stems").mkdir(parents=True)
    stems = {
        "S00": dict(inst_class="Guitar", program_num=25, is_drum=False, audio_rendered=True, f=220.0),
        "S01": dict(inst_class="Guitar", program_num=29, is_drum=False, audio_rendered=True, f=330.0),
        "S02": dict(inst_class="Bass", program_num=33, is_drum=False, audio_rendered=True, f=55.0),
        "S03": dict(inst_class="Drums", program_num=0, is_drum=True, audio_rendered=True, f=1000.0),
        "S04": dict(inst_class="Strings", program_num=48, is_drum=False, audio_rendered=True, f=440.0),
        "S05": dict(inst_class="Piano", program_num=0, is_drum=False, audio_rendered=False, f=0.0),
    }
    meta = {"UUID": "abc", "audio_dir": "stems", "midi_dir": "MIDI", "normalization_factor": -13.0,
            "overall_gain": 0.5, "target_peak": -1.0, "stems": {}}
    for sid, d in stems.items():
        meta["stems"][sid] = {"audio_rendered": d["audio_rendered"], "inst_class": d["inst_class"],
                              "integrated_loudness": -20.0, "is_drum": d["is_drum"], "midi_program_name": "x",
                              "plugin_name": "y.nkm", "program_num": d["program_num"]}
        if d["audio_rendered"]:
            sf.write(tr / "stems" / f"{sid}.flac", _tone(d["f"], sr=44100), 44100)
    (tr / "metadata.yaml").write_text(yaml.safe_dump(meta))
    sf.write(tr / "mix.flac", _tone(100, sr=44100), 44100)
    return tmp_path / "slakh", stems


def test_slakh_layout(slakh):
    root, stems = slakh
    assert detect_layout(root) == "slakh"
    tracks = list_tracks(root, "train")
    assert [t.name for t in tracks] == ["Track00001"]
    x = load_track(tracks[0])
    assert x.shape == (4, SR) and x.dtype == torch.float32
    ref_gtr = _tone(220.0) + _tone(330.0)
    assert np.allclose(x[2, 1000:-1000].numpy(), ref_gtr[1000:-1000], atol=5e-3)   # two guitars summed
    assert np.allclose(x[0, 1000:-1000].numpy(), _tone(55.0)[1000:-1000], atol=5e-3)
    assert float(x[3].abs().max()) == 0.0                                         # unrendered piano -> zeros
    y = load_track(tracks[0], stems=("bass", "drums", "guitar", "piano", "other"))
    assert y.shape == (5, SR) and np.allclose(y[4, 1000:-1000].numpy(), _tone(440.0)[1000:-1000], atol=5e-3)
    with pytest.raises(MissingStemError, match="piano"):
        load_track(tracks[0], missing="skip")


def test_msdm_layout_stereo_44k_and_missing(tmp_path):
    tr = tmp_path / "msdm" / "test" / "Track01501"
    tr.mkdir(parents=True)
    stereo = np.stack([_tone(110, sr=44100), _tone(110, sr=44100)], 1)
    sf.write(tr / "bass.wav", stereo, 44100)
    sf.write(tr / "drums.wav", _tone(1000), SR)
    sf.write(tr / "guitar.wav", _tone(330), SR, subtype="FLOAT")
    assert detect_layout(tmp_path / "msdm") == "msdm"
    x = load_track(list_tracks(tmp_path / "msdm", "test")[0])
    assert x.shape == (4, SR)                                   # 44.1 kHz stereo came back mono 22050
    assert np.allclose(x[0, 1000:-1000].numpy(), _tone(110)[1000:-1000], atol=5e-3)
    assert float(x[3].abs().max()) == 0.0                       # missing piano -> zeros
    assert load_track(tr, sr=16000).shape == (4, 16000)
    with pytest.raises(MissingStemError):
        load_track(tr, missing="skip")


def test_plain_folder_layout(tmp_path):
    song = tmp_path / "songs" / "my song"
    song.mkdir(parents=True)
    sf.write(song / "Bass.wav", _tone(55), SR)
    sf.write(song / "drums.flac", _tone(1000), SR)
    sf.write(song / "vocals.wav", _tone(440), SR)
    sf.write(song / "keys.wav", _tone(262), SR)
    assert detect_layout(tmp_path / "songs") == "folder"
    x = load_track(list_tracks(tmp_path / "songs")[0], stems=("bass", "drums", "guitar", "piano", "other"))
    assert x.shape == (5, SR) and float(x[2].abs().max()) == 0.0 and float(x[4].abs().max()) > 0.1
    assert float(x[3].abs().max()) > 0.1


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="nowhere"):
        list_tracks(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        list_tracks(tmp_path / "empty")
    tr = tmp_path / "bad" / "train" / "Track00000"
    tr.mkdir(parents=True)
    (tr / "bass.wav").write_bytes(b"RIFF....WAVEjunkjunkjunk")
    with pytest.raises(InputError, match="bass.wav"):
        load_track(tr)
    with pytest.raises(InputError, match="validation"):
        list_tracks(tmp_path / "bad", "validation")


def test_tiny_dataset_loads(tiny_dataset):
    assert detect_layout(tiny_dataset) == "msdm"
    assert len(list_tracks(tiny_dataset, "train")) == 4 and len(list_tracks(tiny_dataset)) == 6
    x = load_track(list_tracks(tiny_dataset, "validation")[0])
    assert x.shape == (4, 4 * SR) and x.abs().max() > 0


def test_stem_windows(tiny_dataset):
    ds = StemWindows(tiny_dataset, "train", seconds=1.0, seed=3, remix_p=0.5)
    assert len(ds) == 16
    a = ds[5]
    assert a.shape == (4, SR) and a.dtype == torch.float32
    assert torch.equal(a, StemWindows(tiny_dataset, "train", seconds=1.0, seed=3, remix_p=0.5)[5])
    assert not torch.equal(a, ds[6])
    assert not torch.equal(a, StemWindows(tiny_dataset, "train", seconds=1.0, seed=4, remix_p=0.5)[5])
    plain = StemWindows(tiny_dataset, "train", seconds=1.0, seed=0, gain_db=(0, 0), shift=False, length=3)
    item = plain[0]
    found = False   # without augmentation, an item is an exact excerpt of one track
    for t in plain.tracks:
        x = load_track(t)
        win = np.lib.stride_tricks.sliding_window_view(x[1].numpy(), 8)
        for s in np.flatnonzero((win == item[1, :8].numpy()).all(1)):
            found = found or torch.equal(item, x[:, s:s + SR])
    assert found
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    assert next(iter(loader)).shape == (4, 4, SR)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_stem_windows_with_and_without_other(tmp_path):
    """A split mixing tracks with and without other.wav: five-stem windows (silent other where a track has none);
    four-stem windows leave other out."""
    five = ("bass", "drums", "guitar", "piano", "other")
    for name, stems in (("Track00000", five), ("Track00001", five[:4])):
        d = tmp_path / "train" / name
        d.mkdir(parents=True)
        for k, s in enumerate(stems):
            sf.write(d / f"{s}.wav", _tone(110.0 * (k + 1), seconds=2.0), SR, subtype="FLOAT")
    assert detect_layout(tmp_path) == "msdm" and len(list_tracks(tmp_path, "train")) == 2
    ds = StemWindows(tmp_path, "train", seconds=0.5, seed=0, gain_db=(0, 0), shift=False, stems=five, length=40)
    items = [ds[i] for i in range(len(ds))]
    assert all(x.shape == (5, SR // 2) for x in items)
    has_other = [bool(x[4].abs().max() > 0.1) for x in items]
    assert any(has_other) and not all(has_other)                # both kinds of track are drawn
    assert all(x[:4].abs().amax(1).min() > 0.1 for x in items)   # the four stems are always there
    assert all((x[4] == 0).all() for x, o in zip(items, has_other) if not o)
    assert StemWindows(tmp_path, "train", seconds=0.5, seed=0, length=4)[0].shape == (4, SR // 2)


def test_augment():
    g = torch.Generator().manual_seed(0)
    x = torch.ones(2, 4, 100)
    y = augment.random_gain(x, (-6, 0), generator=g)
    assert y.shape == x.shape and (y <= 1.0001).all() and (y >= 10 ** (-6 / 20) - 1e-4).all()
    ramp = torch.arange(120.).repeat(4, 1)
    s = augment.shift(ramp, 100, generator=g)
    assert s.shape == (4, 100) and all(torch.equal(r, torch.arange(r[0], r[0] + 100)) for r in s)


def _band_db(x, lo, hi):
    X = torch.fft.rfft(x.double()).abs().pow(2)
    f = torch.fft.rfftfreq(x.shape[-1], 1 / SR)
    return 10 * torch.log10(X[(f >= lo) & (f < hi)].sum())


def test_random_effects():
    """EQ stays within its +-6 dB curve, reverb adds a tail after the sound stops, compression lowers the crest
    of a loud/quiet pattern; each keeps the RMS; silent stems stay silent; a generator seed reproduces an item;
    p = 0 draws nothing."""
    n = SR - SR % 4
    noise = torch.randn(n, generator=torch.Generator().manual_seed(1))
    for seed in range(5):
        y = augment.random_eq(noise, SR, generator=torch.Generator().manual_seed(seed))
        change = [abs(_band_db(y, lo, hi) - _band_db(noise, lo, hi)) for lo, hi in ((60, 200), (500, 2000),
                                                                                    (4000, 10000))]
        assert max(change) <= 6.5 and max(change) > 0.5       # within the curve, and not a no-op
    burst = torch.cat([noise[: n // 2], torch.zeros(n // 2)])
    wet = augment.random_reverb(burst, SR, generator=torch.Generator().manual_seed(0))
    assert wet[n // 2 + 1000:].abs().max() > 1e-3 and wet.norm().item() == pytest.approx(burst.norm().item(), rel=1e-4)
    pattern = noise * torch.cat([torch.full((n // 4,), 1.0), torch.full((n // 4,), 0.05)]).repeat(2)
    comp = augment.random_compress(pattern, SR, generator=torch.Generator().manual_seed(0))
    ratio = lambda z: z[: n // 4].pow(2).mean() / z[n // 4: n // 2].pow(2).mean()   # noqa: E731
    assert ratio(comp) < 0.5 * ratio(pattern) and comp.norm().item() == pytest.approx(pattern.norm().item(), rel=1e-4)
    stems = torch.stack([noise, torch.zeros(n), pattern])
    a = augment.random_effects(stems, SR, 1.0, generator=torch.Generator().manual_seed(3))
    b = augment.random_effects(stems, SR, 1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == stems.shape and torch.isfinite(a).all()
    assert (a[1] == 0).all() and not torch.allclose(a[0], noise)
    g = torch.Generator().manual_seed(5)
    assert augment.random_effects(stems, SR, 0.0, generator=g) is stems
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=torch.Generator().manual_seed(5)))


def test_random_drive_adds_harmonics_on_the_guitar_row_only():
    """train.drive_p: a pure tone driven through the amp gains odd and even harmonics below the cabinet's cutoff,
    keeps its RMS; random_effects drives only the guitar row; drive_p = 0 draws what it drew before."""
    n = SR - SR % 4
    t = torch.arange(n) / SR
    tone = 0.3 * torch.sin(2 * torch.pi * 220.0 * t)
    y = augment.random_drive(tone, SR, drive_db=(20.0, 20.0), bias=(0.2, 0.2), cabinet_hz=(4000.0, 4000.0))
    assert y.norm().item() == pytest.approx(tone.norm().item(), rel=1e-4)
    for k, within in ((2, 40), (3, 15)):   # the bias's even harmonic and tanh's odd one, near the fundamental
        assert _band_db(y, 220 * k - 20, 220 * k + 20) > _band_db(y, 200, 240) - within
        assert _band_db(tone, 220 * k - 20, 220 * k + 20) < _band_db(tone, 200, 240) - 50
    assert _band_db(y, 8000, 11000) < _band_db(y, 200, 240) - 40     # the cabinet's low-pass
    stems = torch.stack([tone, tone, torch.zeros(n)])
    rows = augment.drive_rows(("bass", "guitar", "other"))
    assert rows == (1,)
    out = augment.random_effects(stems, SR, 0.0, generator=torch.Generator().manual_seed(0), drive_p=1.0,
                                 drive_rows=rows)
    assert torch.equal(out[0], tone) and not torch.allclose(out[1], tone) and (out[2] == 0).all()
    a = augment.random_effects(stems, SR, 0.5, generator=torch.Generator().manual_seed(4))
    b = augment.random_effects(stems, SR, 0.5, generator=torch.Generator().manual_seed(4), drive_p=0.0,
                               drive_rows=rows)
    assert torch.equal(a, b)


def test_stem_windows_effects(tiny_dataset):
    """train.effects_p: 0 gives exactly the windows without it (old runs reproduce); > 0 changes them, per seed."""
    base = StemWindows(tiny_dataset, "train", seconds=1.0, seed=3)
    off = StemWindows(tiny_dataset, "train", seconds=1.0, seed=3, effects_p=0.0)
    on = StemWindows(tiny_dataset, "train", seconds=1.0, seed=3, effects_p=1.0)
    assert all(torch.equal(base[i], off[i]) for i in range(4))
    assert not torch.equal(base[2], on[2]) and torch.equal(on[2], StemWindows(
        tiny_dataset, "train", seconds=1.0, seed=3, effects_p=1.0)[2])


def test_eval_chunks(tiny_dataset, tmp_path):
    chunks = eval_chunks(tiny_dataset, "test", seconds=1.5, hop=1.0)
    assert chunks == eval_chunks(tiny_dataset, "test", seconds=1.5, hop=1.0)
    assert [c["start"] for c in chunks] == [0, SR, 2 * SR, 4 * SR - int(1.5 * SR)]
    assert all(c["length"] == int(1.5 * SR) and c["track"] == "test/Track00005" for c in chunks)
    save_chunks(tmp_path / "c.json", chunks, seconds=1.5)
    back, sr = load_chunks(tmp_path / "c.json")
    assert back == chunks and sr == SR
    assert load_chunk(tiny_dataset, chunks[-1]).shape == (4, int(1.5 * SR))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="bad.json"):
        load_chunks(tmp_path / "bad.json")
