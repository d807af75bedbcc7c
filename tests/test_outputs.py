"""latentmix.outputs (issue 20 item 2): names, the -o rule, staying under -o, collisions, transactions."""
from __future__ import annotations

import pytest

from latentmix.errors import OutputError
from latentmix.outputs import OutputRoot, Transaction, remove_live_temps, sanitize, target, unique


@pytest.mark.parametrize("raw,safe", [("song", "song"), ("..", "__"), (".", "_"), ("", "_"), ("a/b", "a_b"),
                                      ("a\\b", "a_b"), ("x\x00y\x1b", "x_y_"), (".hidden", "_hidden"),
                                      ("  pad ", "pad"), ("é ü", "é ü")])
def test_sanitize(raw, safe):
    assert sanitize(raw) == safe


def test_sanitize_cuts_long_names():
    assert len(sanitize("a" * 1000).encode()) <= 200


def test_unique_in_order():
    assert unique(["mix", "mix", "a", "MIX", "mix_2"]) == ["mix", "mix_2", "a", "MIX_3", "mix_2_2"]


def test_target_rule(tmp_path):
    assert target(tmp_path / "x.wav", 1) == ("file", tmp_path / "x.wav")
    assert target(tmp_path / "x.lmxc", 1)[0] == "file"
    assert target(tmp_path / "x", 3) == ("dir", tmp_path / "x")
    assert target(tmp_path / "x.d", 3)[0] == "dir"
    with pytest.raises(OutputError, match="names one file, but there are 2 inputs"):
        target(tmp_path / "x.wav", 2)
    (tmp_path / "d.flac").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        target(tmp_path / "d.flac", 1)
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError, match="not a folder"):
        target(tmp_path / "f", 1)


def test_paths_stay_under_the_root(tmp_path):
    (tmp_path / "in.wav").write_text("")
    root = OutputRoot(tmp_path / "out", inputs=[tmp_path / "in.wav"])
    assert root.path("..", "..", "x.wav") == tmp_path / "out" / "__" / "__" / "x.wav"
    assert root.template("{track}/{stem}.{ext}", track="..", stem="bass", ext="wav") == tmp_path / "out/__/bass.wav"
    for bad in ("../{stem}.{ext}", "{track}/./x", "/etc/{stem}", "a//b"):
        with pytest.raises(OutputError):
            root.template(bad, track="t", stem="s", ext="wav")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path)
    with pytest.raises(OutputError, match="outside the output folder"):
        root.path("link", "x.wav")                               # a symlink out of -o is followed and refused
    with pytest.raises(OutputError, match="one of the inputs"):
        OutputRoot(tmp_path, inputs=[tmp_path / "in.wav"]).path("in.wav")


def test_transaction_all_or_nothing(tmp_path):
    with Transaction() as tx:
        for s in "abc":
            tx.temp(tmp_path / "t" / f"{s}.wav").write_text(s)
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["a.wav", "b.wav", "c.wav"]
    with pytest.raises(RuntimeError):
        with Transaction() as tx:
            tx.temp(tmp_path / "u" / "v" / "a.wav").write_text("a")
            raise RuntimeError("boom")
    assert not (tmp_path / "u").exists()                          # temporaries and new folders gone
    with pytest.raises(OutputError, match="already exists"):
        with Transaction() as tx:
            tx.temp(tmp_path / "t" / "a.wav")
    with Transaction(force=True) as tx:
        tx.temp(tmp_path / "t" / "a.wav").write_text("new")
    assert (tmp_path / "t" / "a.wav").read_text() == "new"
    assert not list(tmp_path.rglob("*.tmp"))


def test_remove_live_temps(tmp_path):
    tx = Transaction()
    t = tx.temp(tmp_path / "x.wav")
    assert t.exists()
    remove_live_temps()
    assert not t.exists()
