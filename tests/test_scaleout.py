"""Batch separation that scales out and survives a kill (issue 20 item 5): `--manifest` (always on under torchrun)
records each finished track; a rerun skips them, cleans what a killed item left and ends with the outputs an
uninterrupted run gives; torchrun shards the tracks over ranks."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from latentmix.cli import main
from latentmix.separation.models import build_separator

ROOT = Path(__file__).resolve().parents[1]
STEMS = ("bass", "drums", "guitar", "piano")
SR = 22050


@pytest.fixture(scope="module")
def sep_model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sep") / "sep.safetensors"
    build_separator(dict(arch="spec", channels=8, hidden=8, layers=1, segment_seconds=1.0)).save(path)
    return str(path)


def songs(folder: Path, n: int, seconds: float = 1.5) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        rng = np.random.default_rng(i)
        t = np.arange(int(SR * seconds)) / SR
        x = 0.3 * np.sin(2 * np.pi * 55 * (i + 1) * t) + 0.05 * rng.standard_normal(len(t))
        sf.write(folder / f"song{i:02d}.wav", x.astype(np.float32), SR, subtype="FLOAT")
        out.append(folder / f"song{i:02d}.wav")
    return out


def separate(args, model) -> int:
    return main(["separate", *map(str, args), "--model", model, "--quiet", "--float32"])


def stems_of(out: Path) -> dict:
    """{song/stem: samples} of every stem file under out (temporaries and manifests excluded)."""
    return {str(p.relative_to(out)): sf.read(p, dtype="float32")[0] for p in sorted(out.rglob("*.wav"))}


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_manifest_records_every_track_and_a_rerun_skips_them(sep_model, tmp_path, capsys):
    songs(tmp_path / "in", 3)
    out = tmp_path / "out"
    assert separate([tmp_path / "in", "-o", out, "--manifest"], sep_model) == 0
    recs = records(out)
    assert [Path(r["input"]).name for r in recs] == ["song00.wav", "song01.wav", "song02.wav"]
    assert all(r["status"] == "ok" and len(r["outputs"]) == 4 and r["seconds"] >= 0 for r in recs)
    assert all(Path(p).is_file() and out.resolve() in Path(p).parents for r in recs for p in r["outputs"])
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    main(["separate", str(tmp_path / "in"), "-o", str(out), "--model", sep_model, "--manifest"])
    assert "0 separated, 3 skipped" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")} == before       # nothing rewritten
    assert separate([tmp_path / "in", "-o", out, "--manifest", "--force"], sep_model) == 0   # --force redoes all
    assert all(p.stat().st_mtime_ns != before[p] for p in before)


def test_a_failed_track_is_recorded_and_the_rest_go_on(sep_model, tmp_path):
    songs(tmp_path / "in", 2)
    (tmp_path / "in" / "broken.wav").write_bytes(b"RIFF not really audio")
    out = tmp_path / "out"
    assert separate([tmp_path / "in", "-o", out, "--manifest"], sep_model) == 2
    status = {Path(r["input"]).name: r["status"] for r in records(out)}
    assert status == {"broken.wav": "failed", "song00.wav": "ok", "song01.wav": "ok"}
    assert "broken.wav" in next(r for r in records(out) if r["status"] == "failed")["error"]


def test_a_killed_batch_resumes_to_the_outputs_of_an_uninterrupted_run(sep_model, tmp_path):
    """The state SIGKILL leaves, made exactly: items recorded (fsynced) before the kill, one item in flight with
    only its temporaries on disk, the manifest line of that item cut half-way. The rerun skips the recorded
    items, removes the temporaries and ends with what one uninterrupted run writes."""
    songs(tmp_path / "in", 4)
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert separate([tmp_path / "in", "-o", ref], sep_model) == 0
    assert separate([tmp_path / "in", "-o", out, "--manifest"], sep_model) == 0
    # the kill: song02 and song03 never finished; song02 was being written
    (out / "manifest.jsonl").unlink()
    lines = (out / "manifest.rank0.jsonl").read_text().splitlines()
    (out / "manifest.rank0.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:25])
    for song in ("song02", "song03"):
        for p in (out / song).iterdir():
            p.unlink()
    (out / "song02" / ".bass.wav.abc123.tmp").write_bytes(b"half a stem")
    kept = {p: p.stat().st_mtime_ns for p in (out / "song00").iterdir()}
    assert separate([tmp_path / "in", "-o", out, "--manifest"], sep_model) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "song00").iterdir()} == kept         # done items skipped
    assert not list(out.rglob("*.tmp"))
    got, want = stems_of(out), stems_of(ref)
    assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)
    assert sorted(Path(r["input"]).name for r in records(out) if r["status"] == "ok") == [
        "song00.wav", "song01.wav", "song02.wav", "song03.wav"]


def test_manifest_needs_an_output_folder(sep_model, tmp_path, capsys):
    songs(tmp_path / "in", 1)
    rc = main(["separate", str(tmp_path / "in" / "song00.wav"), "-o", str(tmp_path / "x.wav"), "--stems", "bass",
               "--model", sep_model, "--manifest", "--quiet"])
    assert rc == 2 and "need an output folder" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant (torchrun starts its workers in sessions of their own, so killing
    its process group would leave them running)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo, tree = [pid], []
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _torchrun(args, cwd, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_port", str(29500 + os.getpid() % 1000), "-m", "latentmix", "separate",
                             *map(str, args)], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, **kw)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find torchrun's workers")
def test_two_ranks_killed_then_resumed_give_the_single_process_outputs(sep_model, tmp_path):
    """torchrun --nproc_per_node 2: the tracks are split between the ranks (both write records); SIGKILL to the
    whole job once the first track is recorded, then the same command again: every track is done once, and the
    stems equal those of one process without torchrun."""
    n = 12
    songs(tmp_path / "in", n, seconds=6.0)
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert separate([tmp_path / "in", "-o", ref], sep_model) == 0
    args = [tmp_path / "in", "-o", out, "--model", sep_model, "--float32", "--quiet"]
    job = _torchrun(args, tmp_path)
    deadline = time.time() + 300
    while time.time() < deadline and job.poll() is None:
        if any(f.stat().st_size > 0 for f in out.glob("manifest.rank*.jsonl")):
            _kill_tree(job.pid)
            break
        time.sleep(0.02)
    job.wait(timeout=60)
    recorded_at_kill = sum(len(f.read_text().splitlines()) for f in out.glob("manifest.rank*.jsonl"))
    assert 1 <= recorded_at_kill < n                    # killed part-way: the rerun has work left
    job = _torchrun(args, tmp_path)
    _, err = job.communicate(timeout=600)
    assert job.returncode == 0, err[-3000:]
    recs = records(out)
    assert len(recs) == n and all(r["status"] == "ok" for r in recs)
    assert {r["rank"] for r in recs} == {0, 1}
    assert not list(out.rglob("*.tmp"))
    got, want = stems_of(out), stems_of(ref)
    assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)
