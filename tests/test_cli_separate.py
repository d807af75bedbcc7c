"""`latentmix separate` as a demucs user meets it (issue 21) with safe outputs (issue 20 item 2): the input's rate
and channels back with stems summing to the input, output formats, --two-stems, -n/--name, --filename, -j,
batches that go on past a bad file, --skip-existing/--force, collisions, the -o rule, track folders, no escapes.
Everything runs a tiny random separator in-process (the CLI's entry function)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from latentmix.cli import main
from latentmix.separation.models import build_separator

STEMS = ("bass", "drums", "guitar", "piano")
SPEC = dict(arch="spec", channels=8, hidden=8, layers=1, segment_seconds=1.0)


@pytest.fixture(scope="module")
def sep_model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sep") / "sep.safetensors"
    build_separator(SPEC).save(path)
    return str(path)


def tone(path, sr=44100, channels=2, seconds=1.2, amp=0.3, seed=0):
    """A mixture with content above 11025 Hz (what a 22050 Hz model cannot hear)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    cols = [amp * np.sin(2 * np.pi * (110 * (c + 1)) * t) + amp / 3 * np.sin(2 * np.pi * min(15000, sr * 0.4) * t)
            + 0.02 * rng.standard_normal(len(t)) for c in range(channels)]
    x = np.stack(cols, 1).astype(np.float32)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, sr, subtype="FLOAT", format="WAV")
    return x


def sep(args, model):
    return main(["separate", *map(str, args), "--model", model, "--quiet"])


def files(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file())


# ------------------------------------------------------------------ the input's format back


@pytest.mark.parametrize("sr,channels", [(44100, 2), (48000, 1), (16000, 2)])
def test_rate_channels_back_and_stems_sum_to_the_input(sep_model, tmp_path, sr, channels):
    x = tone(tmp_path / "song.wav", sr, channels)
    assert sep([tmp_path / "song.wav", "-o", tmp_path / "out", "--float32"], sep_model) == 0
    stems = {s: sf.read(tmp_path / "out" / "song" / f"{s}.wav", dtype="float32", always_2d=True) for s in STEMS}
    for s, (y, rate) in stems.items():
        assert rate == sr and y.shape == x.shape, s
    total = sum(y for y, _ in stems.values())
    assert np.abs(total - x).max() < 1e-4                      # the band above the model's is shared out
    if sr > 22050:                 # and it is in the stems themselves: above 12 kHz they carry the input's energy
        hi = np.fft.rfftfreq(len(x), 1 / sr) > 12000
        energy = {s: (np.abs(np.fft.rfft(y[:, 0]))[hi] ** 2).sum() for s, (y, _) in stems.items()}
        want = (np.abs(np.fft.rfft(x[:, 0]))[hi] ** 2).sum()
        assert sum(energy.values()) > 0.2 * want, energy      # >= 1/4 of it for any split that sums to the input


def test_more_channels_downmixed_to_stereo_with_a_note(sep_model, tmp_path, capsys):
    tone(tmp_path / "six.wav", 22050, 6)
    assert main(["separate", str(tmp_path / "six.wav"), "-o", str(tmp_path / "out"), "--model", sep_model]) == 0
    assert "6 channels downmixed to stereo" in capsys.readouterr().err
    assert sf.info(tmp_path / "out" / "six" / "bass.wav").channels == 2


def test_sr_and_mono_choose_otherwise(sep_model, tmp_path):
    tone(tmp_path / "song.wav", 44100, 2)
    assert sep([tmp_path / "song.wav", "-o", tmp_path / "out", "--sr", "22050", "--mono"], sep_model) == 0
    i = sf.info(tmp_path / "out" / "song" / "bass.wav")
    assert (i.samplerate, i.channels, i.frames) == (22050, 1, int(22050 * 1.2))


# ------------------------------------------------------------------ output options as demucs has them


def test_two_stems_mp3_at_the_inputs_rate_and_channels(sep_model, tmp_path):
    """The issue's acceptance line: `separate song.mp3 --two-stems bass --mp3 -o out`."""
    x = tone(tmp_path / "w.wav", 44100, 2)
    sf.write(tmp_path / "song.mp3", x, 44100, format="MP3", subtype="MPEG_LAYER_III")
    assert sep([tmp_path / "song.mp3", "--two-stems", "bass", "--mp3", "-o", tmp_path / "out"], sep_model) == 0
    assert files(tmp_path / "out") == ["song/bass.mp3", "song/no_bass.mp3"]
    for f in ("bass", "no_bass"):
        i = sf.info(tmp_path / "out" / "song" / f"{f}.mp3")
        assert i.samplerate == 44100 and i.channels == 2 and i.format == "MP3"


def test_two_stems_sum_to_the_input(sep_model, tmp_path):
    x = tone(tmp_path / "song.wav", 44100, 2)
    assert sep([tmp_path / "song.wav", "--two-stems", "drums", "--float32", "-o", tmp_path / "o"], sep_model) == 0
    a = sf.read(tmp_path / "o/song/drums.wav", always_2d=True)[0]
    b = sf.read(tmp_path / "o/song/no_drums.wav", always_2d=True)[0]
    assert np.abs(a + b - x).max() < 1e-4


@pytest.mark.parametrize("flags,ext,subtype", [([], "wav", "PCM_16"), (["--int24"], "wav", "PCM_24"),
                                               (["--float32"], "wav", "FLOAT"), (["--flac"], "flac", "PCM_16"),
                                               (["--flac", "--int24"], "flac", "PCM_24")])
def test_formats(sep_model, tmp_path, flags, ext, subtype):
    tone(tmp_path / "song.wav", 22050, 1)
    assert sep([tmp_path / "song.wav", "-o", tmp_path / "o", "--stems", "bass", *flags], sep_model) == 0
    assert sf.info(tmp_path / "o" / "song" / f"bass.{ext}").subtype == subtype


def test_mp3_bitrate(sep_model, tmp_path):
    tone(tmp_path / "song.wav", 44100, 2, seconds=3)
    for kbps in (96, 320):
        out = tmp_path / f"o{kbps}"
        assert sep([tmp_path / "song.wav", "-o", out, "--stems", "bass", "--mp3", "--mp3-bitrate", kbps],
                   sep_model) == 0
        size = (out / "song" / "bass.mp3").stat().st_size
        assert abs(size * 8 / 3 / 1000 - kbps) < 0.15 * kbps


def test_clip_modes(sep_model, tmp_path):
    from latentmix.formats import clip
    a = {"x": np.array([[2.0, -0.5]], np.float32), "y": np.array([[0.5, 0.5]], np.float32)}
    r = clip(a, "rescale")
    assert np.abs(r["x"]).max() < 1 and np.allclose(r["x"] / r["y"], a["x"] / a["y"])   # one factor per track
    assert clip(a, "clamp")["x"].max() == 1.0 and clip(a, "none")["x"].max() == 2.0
    tone(tmp_path / "loud.wav", 22050, 1, amp=6.0)
    assert sep([tmp_path / "loud.wav", "-o", tmp_path / "o", "--float32", "--clip-mode", "none"], sep_model) == 0
    peak = max(np.abs(sf.read(tmp_path / "o/loud" / f"{s}.wav")[0]).max() for s in STEMS)
    assert peak > 1.0                                           # float32 keeps peaks with --clip-mode none


def test_filename_template(sep_model, tmp_path):
    tone(tmp_path / "song.wav", 22050, 1)
    assert sep([tmp_path / "song.wav", "-o", tmp_path / "o", "--filename", "{stem}/{track}_{stem}.{ext}",
                "--stems", "bass,drums"], sep_model) == 0
    assert files(tmp_path / "o") == ["bass/song_bass.wav", "drums/song_drums.wav"]


@pytest.mark.parametrize("template", ["../{track}/{stem}.{ext}", "{track}/../../{stem}.{ext}", "/abs/{stem}.wav",
                                      "{nope}.wav"])
def test_filename_template_cannot_escape(sep_model, tmp_path, template, capsys):
    tone(tmp_path / "in" / "song.wav", 22050, 1)
    assert sep([tmp_path / "in" / "song.wav", "-o", tmp_path / "o", "--filename", template], sep_model) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert files(tmp_path) == ["in/song.wav"]


def test_name_chooses_a_shipped_model_and_models_lists_them(tmp_path, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "separator" in out and "codec" in out
    assert main(["separate", str(tmp_path / "x.wav"), "-n", "nope", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no shipped separator model of that name" in err and "known: separator" in err
    tone(tmp_path / "x.wav", 22050, 1, seconds=0.5)
    assert main(["separate", str(tmp_path / "x.wav"), "-n", "separator", "-o", str(tmp_path / "o"), "--quiet",
                 "--stems", "bass"]) == 0
    assert (tmp_path / "o" / "x" / "bass.wav").exists()


def test_jobs_give_the_same_outputs(sep_model, tmp_path):
    for i in range(3):
        tone(tmp_path / "in" / f"s{i}.wav", 22050, 1, seed=i)
    assert sep([tmp_path / "in", "-o", tmp_path / "a", "-j", "1"], sep_model) == 0
    assert sep([tmp_path / "in", "-o", tmp_path / "b", "-j", "3"], sep_model) == 0
    assert files(tmp_path / "a") == files(tmp_path / "b") and len(files(tmp_path / "a")) == 12
    for f in files(tmp_path / "a"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


# ------------------------------------------------------------------ batches, existing outputs, collisions


def test_a_bad_file_does_not_stop_the_batch(sep_model, tmp_path, capsys):
    tone(tmp_path / "in" / "a.wav", 22050, 1)
    (tmp_path / "in" / "b.wav").write_bytes(b"RIFF this is not audio")
    tone(tmp_path / "in" / "c.wav", 22050, 1)
    (tmp_path / "empty").mkdir()
    assert sep([tmp_path / "in", tmp_path / "missing.wav", tmp_path / "empty", "-o", tmp_path / "o"], sep_model) == 2
    err = capsys.readouterr().err
    assert "b.wav: not a readable audio file" in err and "missing.wav: no such file" in err
    assert "empty: no audio files" in err
    assert "3 of 5 track(s) failed (2 separated, 0 skipped)" in err.strip().splitlines()[-1]
    assert sorted({Path(f).parts[0] for f in files(tmp_path / "o")}) == ["a", "c"]
    assert "Traceback" not in err


def test_an_unexpected_crash_in_one_track_does_not_stop_the_batch(sep_model, tmp_path, capsys, monkeypatch):
    """A bug (here: a RuntimeError from the model on one track) is reported as such; the other tracks finish."""
    from latentmix.separation import fullband
    real = fullband.separate_audio

    def flaky(method, wav, *a, **k):
        if wav.shape[-1] == int(22050 * 0.7):
            raise RuntimeError("boom")
        return real(method, wav, *a, **k)
    monkeypatch.setattr(fullband, "separate_audio", flaky)
    tone(tmp_path / "in" / "a.wav", 22050, 1)
    tone(tmp_path / "in" / "b.wav", 22050, 1, seconds=0.7)
    tone(tmp_path / "in" / "c.wav", 22050, 1)
    assert sep([tmp_path / "in", "-o", tmp_path / "o"], sep_model) == 2
    err = capsys.readouterr().err
    assert "b.wav: unexpected RuntimeError: boom" in err and "Traceback" not in err
    assert sorted({Path(f).parts[0] for f in files(tmp_path / "o")}) == ["a", "c"]


def test_existing_outputs_force_and_skip_existing(sep_model, tmp_path, capsys):
    tone(tmp_path / "song.wav", 22050, 1)
    assert sep([tmp_path / "song.wav", "-o", tmp_path / "o"], sep_model) == 0
    bass = tmp_path / "o" / "song" / "bass.wav"
    bass.write_bytes(b"mine")
    assert sep([tmp_path / "song.wav", "-o", tmp_path / "o"], sep_model) == 2
    assert "already exists (use --force" in capsys.readouterr().err
    assert bass.read_bytes() == b"mine"                         # nothing overwritten
    assert sep([tmp_path / "song.wav", "-o", tmp_path / "o", "--skip-existing"], sep_model) == 0
    assert bass.read_bytes() == b"mine"
    assert sep([tmp_path / "song.wav", "-o", tmp_path / "o", "--force"], sep_model) == 0
    assert sf.info(bass).frames == int(22050 * 1.2)


def test_same_names_get_distinct_outputs(sep_model, tmp_path):
    for d in ("a", "b"):
        tone(tmp_path / d / "song.wav", 22050, 1)
        tone(tmp_path / d / "x" / "mix.wav", 22050, 1)
    assert sep([tmp_path / "a/song.wav", tmp_path / "b/song.wav", tmp_path / "a/x/mix.wav",
                tmp_path / "b/x/mix.wav", "-o", tmp_path / "o", "--stems", "bass"], sep_model) == 0
    assert files(tmp_path / "o") == ["song/bass.wav", "song_2/bass.wav", "x/bass.wav", "x_2/bass.wav"]


def test_template_without_track_does_not_collide(sep_model, tmp_path):
    tone(tmp_path / "a.wav", 22050, 1)
    tone(tmp_path / "b.wav", 22050, 1)
    assert sep([tmp_path / "a.wav", tmp_path / "b.wav", "-o", tmp_path / "o", "--stems", "bass",
                "--filename", "{stem}.{ext}"], sep_model) == 0
    assert files(tmp_path / "o") == ["bass.wav", "bass_2.wav"]


def test_output_onto_the_input_is_refused(sep_model, tmp_path, capsys):
    x = tone(tmp_path / "bass.wav", 22050, 1)
    before = (tmp_path / "bass.wav").read_bytes()
    assert sep([tmp_path / "bass.wav", "-o", tmp_path, "--filename", "{stem}.{ext}", "--force"], sep_model) == 2
    assert "output is one of the inputs" in capsys.readouterr().err
    assert (tmp_path / "bass.wav").read_bytes() == before and x is not None


@pytest.mark.parametrize("name", ["...wav", "..wav", ".hidden.wav", "a\x01b.wav"])
def test_odd_names_stay_under_o(sep_model, tmp_path, name):
    tone(tmp_path / "in" / name, 22050, 1)
    assert sep([tmp_path / "in" / name, "-o", tmp_path / "o" / "out", "--stems", "bass"], sep_model) == 0
    written = files(tmp_path / "o")
    assert len(written) == 1 and written[0].startswith("out/") and "/." not in "/" + written[0]


def test_track_folder_dot_dot_is_named_after_the_folder(sep_model, tmp_path):
    tone(tmp_path / "Track7" / "mix.wav", 22050, 1)
    (tmp_path / "Track7" / "sub").mkdir()
    assert sep([tmp_path / "Track7" / "sub" / "..", "-o", tmp_path / "o", "--stems", "bass"], sep_model) == 0
    assert files(tmp_path / "o") == ["Track7/bass.wav"]


# ------------------------------------------------------------------ -o: a file or a folder


def test_o_file_for_one_stem(sep_model, tmp_path):
    tone(tmp_path / "song.wav", 22050, 1)
    assert sep([tmp_path / "song.wav", "--stems", "bass", "-o", tmp_path / "bass.flac"], sep_model) == 0
    assert sf.info(tmp_path / "bass.flac").format == "FLAC" and files(tmp_path) == ["bass.flac", "song.wav"]


@pytest.mark.parametrize("case", ["file_for_four_stems", "file_for_two_inputs", "folder_named_like_a_file",
                                  "existing_file_as_folder"])
def test_o_rule_refusals(sep_model, tmp_path, case, capsys):
    tone(tmp_path / "a.wav", 22050, 1)
    tone(tmp_path / "b.wav", 22050, 1)
    args = {"file_for_four_stems": [tmp_path / "a.wav", "-o", tmp_path / "x.wav"],
            "file_for_two_inputs": [tmp_path / "a.wav", tmp_path / "b.wav", "--stems", "bass", "-o",
                                    tmp_path / "x.wav"],
            "folder_named_like_a_file": [tmp_path / "a.wav", "-o", tmp_path / "d.wav"],
            "existing_file_as_folder": [tmp_path / "a.wav", "-o", tmp_path / "plain"]}[case]
    if case == "folder_named_like_a_file":
        (tmp_path / "d.wav").mkdir()
    if case == "existing_file_as_folder":
        (tmp_path / "plain").write_text("x")
    before = files(tmp_path)
    assert sep(args, sep_model) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: -o ") and "\n" not in err
    assert files(tmp_path) == before


# ------------------------------------------------------------------ track folders


def test_track_folder_separates_its_mix(sep_model, tmp_path, tiny_dataset):
    track = tiny_dataset / "test" / sorted(p.name for p in (tiny_dataset / "test").iterdir())[0]
    assert (track / "mix.wav").exists()                         # `data synth` writes it
    assert sep([track, "-o", tmp_path / "o"], sep_model) == 0
    assert files(tmp_path / "o") == [f"{track.name}/{s}.wav" for s in STEMS]


def test_track_folder_without_mix_sums_its_stems(sep_model, tmp_path):
    x = {s: tone(tmp_path / "T1" / f"{s}.wav", 22050, 1, amp=0.1, seed=i) for i, s in enumerate(STEMS)}
    assert sep([tmp_path / "T1", "-o", tmp_path / "o", "--float32"], sep_model) == 0
    total = sum(sf.read(tmp_path / "o/T1" / f"{s}.wav", always_2d=True)[0] for s in STEMS)
    assert np.abs(total - sum(x.values())).max() < 1e-4         # the mixture was the stems' sum


def test_a_folder_of_tracks_and_loose_files(sep_model, tmp_path):
    tone(tmp_path / "in" / "T1" / "mix.wav", 22050, 1)
    tone(tmp_path / "in" / "T2" / "bass.wav", 22050, 1)
    tone(tmp_path / "in" / "loose.wav", 22050, 1)
    assert sep([tmp_path / "in", "-o", tmp_path / "o", "--stems", "bass"], sep_model) == 0
    assert files(tmp_path / "o") == ["T1/bass.wav", "T2/bass.wav", "loose/bass.wav"]


# ------------------------------------------------------------------ transactions and SIGTERM


def test_a_failing_stem_leaves_nothing(sep_model, tmp_path, monkeypatch, capsys):
    from latentmix import formats
    tone(tmp_path / "song.wav", 22050, 1)
    real, calls = formats.AudioFormat.write, []

    def third_fails(self, path, wav, sr):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(self, path, wav, sr)
    monkeypatch.setattr(formats.AudioFormat, "write", third_fails)
    assert sep([tmp_path / "song.wav", "-o", tmp_path / "o"], sep_model) == 2
    assert files(tmp_path) == ["song.wav"]                      # no stems, no temporaries, no empty folders
    assert "No space left on device" in capsys.readouterr().err


def test_a_failed_rename_undoes_the_item(tmp_path, monkeypatch):
    from latentmix import outputs
    real, n = os.replace, []

    def second_fails(a, b):
        n.append(b)
        if len(n) == 2:
            raise OSError(18, "Invalid cross-device link")
        return real(a, b)
    monkeypatch.setattr(outputs.os, "replace", second_fails)
    with pytest.raises(OSError):
        with outputs.Transaction() as tx:
            for s in ("a", "b", "c"):
                tx.temp(tmp_path / "o" / f"{s}.wav").write_text(s)
    assert files(tmp_path) == []


def test_sigterm_removes_temporaries(tmp_path):
    """A real process, killed while writing: exit 143, no .tmp file, no partial stem set."""
    code = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[1] / 'src')!r})
from latentmix import formats
from latentmix.cli import main
def slow(self, path, wav, sr):
    open(path, 'wb').write(b'partial')
    print('writing', flush=True)
    time.sleep(60)
formats.AudioFormat.write = slow
sys.exit(main(sys.argv[1:]))
"""
    tone(tmp_path / "song.wav", 22050, 1, seconds=0.3)
    model = tmp_path / "sep.safetensors"
    torch.manual_seed(0)
    build_separator(SPEC).save(model)
    p = subprocess.Popen([sys.executable, "-c", code, "separate", str(tmp_path / "song.wav"), "-o",
                          str(tmp_path / "o"), "--model", str(model), "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "writing"
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143 and "terminated" in err
    assert files(tmp_path) == ["sep.safetensors", "song.wav"]


def test_progress_only_on_a_terminal(sep_model, tmp_path, capfd):
    """Piped (not a terminal), progress bars stay off even without --quiet: no carriage returns or escapes."""
    tone(tmp_path / "long.wav", 22050, 1, seconds=3.5)             # several 1 s segments: a bar on a terminal
    assert main(["separate", str(tmp_path / "long.wav"), "-o", str(tmp_path / "o"), "--model", sep_model,
                 "--stems", "bass", "--batch-size", "1"]) == 0
    out, err = capfd.readouterr()
    assert "[1/1]" in err and "\r" not in out + err and "\x1b" not in out + err
