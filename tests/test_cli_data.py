"""`latentmix data synth` / `render-midi` end to end through latentmix.cli.main, and their one-line errors."""
import json

import pytest

import latentmix.cli as cli


@pytest.fixture(autouse=True)
def only_data_group(monkeypatch):
    monkeypatch.setattr(cli, "GROUPS", ["data"])   # test this group alone, whatever state the others are in


def test_synth_end_to_end(tmp_path, capsys):
    rc = cli.main(["data", "synth", "--out", str(tmp_path / "d"), "--tracks", "2", "--seconds", "2",
                   "--seed", "4", "--quiet"])
    assert rc == 0
    assert "wrote 2 tracks" in capsys.readouterr().out
    for i in range(2):
        t = tmp_path / "d" / "train" / f"Track{i:05d}"
        assert sorted(p.name for p in t.iterdir()) == ["bass.wav", "drums.wav", "guitar.wav", "metadata.json",
                                                       "mix.wav", "piano.wav", "song.mid"]
        meta = json.loads((t / "metadata.json").read_text())
        assert meta["seconds"] == 2.0 and meta["caption"] and set(meta["programs"]) >= {"bass", "guitar", "piano"}


def test_synth_other_prob_writes_other_and_mixes_it(tmp_path, capsys):
    """--other-prob 1: every track has a non-silent other.wav, and mix.wav is the sum of the five stems."""
    import numpy as np
    import soundfile as sf
    rc = cli.main(["data", "synth", "--out", str(tmp_path / "d"), "--tracks", "3", "--seconds", "2",
                   "--seed", "4", "--other-prob", "1", "--workers", "1", "--quiet"])
    assert rc == 0
    tracks = sorted((tmp_path / "d").glob("*/Track*"))
    assert len(tracks) == 3
    for t in tracks:
        stems = {s: sf.read(t / f"{s}.wav", dtype="float32")[0] for s in ("bass", "drums", "guitar", "piano", "other")}
        assert np.abs(stems["other"]).max() > 1e-2, t
        mix = sf.read(t / "mix.wav", dtype="float32")[0]
        assert np.abs(mix - np.sum(list(stems.values()), 0, dtype=np.float32)).max() < 1e-6
        meta = json.loads((t / "metadata.json").read_text())
        assert meta["stems"][-1] == "other" and "other" in meta["programs"]
    assert json.loads((tmp_path / "d" / "dataset.json").read_text())["other_prob"] == 1.0
    rc = cli.main(["data", "synth", "--out", str(tmp_path / "e"), "--tracks", "1", "--other-prob", "1.5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--other-prob" in err[0]


@pytest.mark.parametrize("args, needle", [
    (["data", "synth", "--out", "OUT", "--tracks", "0"], "--tracks"),
    (["data", "synth", "--out", "OUT", "--tracks", "1", "--seconds", "-1"], "--seconds"),
    (["data", "synth", "--out", "OUT", "--tracks", "1", "--renderer", "soundfont", "--soundfont", "NOPE.sf2"],
     "NOPE.sf2"),
    (["data", "render-midi", "--midi", "MISSING.mid", "--soundfont", "NOPE.sf2", "--out", "OUT"], "MISSING.mid"),
])
def test_bad_input_one_line(tmp_path, capsys, args, needle):
    args = [str(tmp_path / a) if a.isupper() or a.endswith((".sf2", ".mid")) else a for a in args]
    rc = cli.main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and needle in err[0]


def test_render_midi_errors(tmp_path, capsys):
    sf2 = tmp_path / "fake.sf2"
    sf2.write_bytes(b"RIFF0000sfbk")
    rc = cli.main(["data", "render-midi", "--midi", str(tmp_path / "none.mid"), "--soundfont", str(sf2),
                   "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "error:" in err[0]
    (tmp_path / "m").mkdir()
    rc = cli.main(["data", "render-midi", "--midi", str(tmp_path / "m"), "--soundfont", str(sf2),
                   "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1


def test_help_lists_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["data", "synth", "--help"])
    out = capsys.readouterr().out
    assert "--tracks" in out and "--seed" in out and "--renderer" in out


# every option of every `latentmix data` subcommand, in --help order: (flag, required, default, type, help)
OPTIONS = {
    "synth": ("_synth", [
        ("--out", True, None, "str", "output folder (created if missing)"),
        ("--tracks", False, 100, "count", "number of songs (default 100)"),
        ("--seconds", False, 20.0, "seconds", "length of each song in seconds (default 20)"),
        ("--seed", False, 0, "seed", "dataset seed; track i uses a seed derived from (seed, i)"),
        ("--renderer", False, "procedural", "str",
         "procedural numpy synthesis (default, fast) or a General MIDI SoundFont"),
        ("--soundfont", False, None, "str",
         "the .sf2 file for --renderer soundfont (e.g. /usr/share/sounds/sf2/FluidR3_GM.sf2)"),
        ("--other-prob", False, 0.0, "probability",
         "each song's chance of an 'other' part (strings, brass, synth lead or pad), written as other.wav and "
         "included in mix.wav (default 0: bass, drums, guitar and piano only)"),
        ("--workers", False, None, "count", "parallel processes (default: min(2, CPUs))"),
        ("--quiet", False, False, "flag", "no progress bar")]),
    "render-midi": ("_render_midi", [
        ("--midi", True, None, "str", "a .mid file or a folder searched recursively for .mid/.midi"),
        ("--soundfont", True, None, "str", "General MIDI .sf2 SoundFont"),
        ("--out", True, None, "str", "output folder"),
        ("--seed", False, 0, "seed", "seed of the split assignment (default 0)"),
        ("--tail", False, 1.0, "non_negative", "seconds rendered after the last event (default 1)"),
        ("--splits", False, "0.8,0.1,0.1", "str",
         "train,validation,test fractions (default 0.8,0.1,0.1; '0,0,1' makes a test-only set)"),
        ("--workers", False, None, "count", "parallel processes (default: min(2, CPUs))"),
        ("--quiet", False, False, "flag", "no progress bar")]),
    "pairs": ("_pairs", [
        ("--data", True, None, "str", "MSDM-layout data root"),
        ("--out", True, None, "str", "output folder"),
        ("--splits", False, "train,validation,test", "str", "source splits to pair (default: all three)"),
        ("--test-fraction", False, 0.3, "float", "share of tracks in the test part (default 0.3)"),
        ("--seed", False, 0, "int", "seed of the split and the pairing (default 0)"),
        ("--copy", False, False, "flag", "copy the stem files instead of linking them")]),
    "counts": ("_counts", [
        ("--pairs", True, None, "str", "a pair set (latentmix data pairs) or any MSDM-layout root"),
        ("--out", True, None, "str", "counts file (.safetensors), created or extended"),
        ("--split", False, "train", "str", "split to count (default train)"),
        ("--codec", False, None, "str", "codec model file (default: the shipped codec)"),
        ("--levels", False, 4, "int", "residual levels to count (default 4)"),
        ("--quiet", False, False, "flag", "no progress bar")]),
    "sf2-overlap": ("_sf2_overlap", [
        ("--test", True, None, "str", "the test SoundFont (.sf2)"),
        ("--train", True, None, "str", "a training SoundFont (.sf2; repeatable)"),
        ("--strict", False, False, "flag", "exit with status 1 when any sample is shared")]),
    "make-sf2": ("_make_sf2", [
        ("--cfg", True, None, "str",
         "a timidity config naming GUS .pat patches (e.g. /etc/timidity/freepats.cfg, Debian's freepats)"),
        ("--out", True, None, "str", "the SoundFont (.sf2) to write"),
        ("--note-samples", False, None, "str", "folder of one-shot note recordings (optional)"),
        ("--note-programs", False, "0,1", "str",
         "GM programs (0-based) the note samples play (default 0,1: acoustic and bright piano)"),
        ("--program-sample", False, [], "str",
         "play one one-shot recording on these GM programs (0-based, e.g. 24-25,27), transposed from its pitch "
         "(estimated, or KEY: 60 = C4), or a FOLDER of recordings named by note (as --note-samples); repeat for "
         "more, e.g. "
         "24-25=/usr/share/lmms/samples/instruments/steel_guitar01.ogg@48 (lmms-common)"),
        ("--drum-kit", False, None, "str",
         "a Hydrogen drum kit folder (drumkit.xml and its samples, e.g. Debian's hydrogen-drumkits) whose "
         "instruments, mapped to GM drum keys by name, replace the config's drums on those keys")]),
}


def test_each_subcommand_keeps_its_options_defaults_and_help_texts():
    import argparse

    from latentmix.cli.data import register
    sub = argparse.ArgumentParser().add_subparsers()
    register(sub)
    data = sub.choices["data"]
    parsers = next(a for a in data._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert list(parsers) == list(OPTIONS)
    for name, (func, options) in OPTIONS.items():
        p = parsers[name]
        got = [(a.option_strings[0], a.required, a.default,
                "flag" if a.nargs == 0 else getattr(a.type, "__name__", "str"), a.help) for a in p._actions[1:]]
        assert (p.get_default("func").__name__, got) == (func, options), name


def _record_sigterm_handler(path):
    import signal
    with open(path, "w") as f:
        f.write("default" if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL else "inherited")


def test_pool_workers_take_sigterm_default_action(tmp_path):
    """The pool's workers must not inherit the CLI's SIGTERM -> Terminated handler: the pool's shutdown sends them
    SIGTERM, and a successful `data synth --workers 2` printed a `latentmix.outputs.Terminated` traceback per worker."""
    import signal
    from latentmix.data import build
    from latentmix.outputs import terminate_on_sigterm
    before = signal.getsignal(signal.SIGTERM)
    terminate_on_sigterm()
    try:
        jobs = [str(tmp_path / f"w{i}") for i in range(4)]
        build._run(jobs, _record_sigterm_handler, workers=2, progress=False, desc="t")
    finally:
        signal.signal(signal.SIGTERM, before)
    assert [open(j).read() for j in jobs] == ["default"] * 4
