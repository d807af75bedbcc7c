"""The batch manifest: sharding over ranks, records that survive a cut line, resume, merge."""
from __future__ import annotations

import json

from latentmix.manifest import Manifest, key, rank_world, shard


def test_shards_cover_every_item_once():
    items = [f"f{i}" for i in range(11)]
    parts = [shard(items, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == sorted(items) and all(parts)


def test_rank_world_from_env(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert rank_world() == (1, 2)
    monkeypatch.setenv("RANK", "5")
    assert rank_world() == (0, 1)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert rank_world() == (0, 1)


def test_records_resume_and_merge(tmp_path):
    a, b, c = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "c.wav"
    m0, m1 = Manifest(tmp_path / "out", 0), Manifest(tmp_path / "out", 1)
    m0.record(a, [tmp_path / "out/a/bass.wav"], 1.23)
    m1.record(b, [], 0.5, status="error", error="b.wav: not audio")
    with open(m1.path, "a") as f:
        f.write('{"input": "' + key(c) + '", "outp')               # a line cut by a kill
    assert m0.done() == {key(a)}
    m1.record(b, [tmp_path / "out/b/bass.wav"], 0.7)              # retried and done
    assert Manifest(tmp_path / "out").done() == {key(a), key(b)}
    merged = [json.loads(x) for x in m0.merge().read_text().splitlines()]
    assert [r["input"] for r in merged] == sorted([key(a), key(b)])
    assert all(r["status"] == "ok" for r in merged) and merged[0]["seconds"] == 1.23
