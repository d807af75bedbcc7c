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
