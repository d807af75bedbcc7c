"""Resume is bit-exact: stopping (max_steps, SIGTERM, SIGKILL) and resuming gives the uninterrupted run's weights."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from _toy_task import ToyTask, params_of, toy_config
from latentmix.train.loop import train
from latentmix.train.state import load_checkpoint

TESTS = Path(__file__).parent


def _assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _assert_same_checkpoints(a, b):
    (ma, sa), (mb, sb) = load_checkpoint(a), load_checkpoint(b)
    assert ma["step"] == mb["step"]
    _assert_same(sa["model"], sb["model"])
    for k, v in sa["optim"]["state"].items():
        _assert_same(v, sb["optim"]["state"][k])
    assert torch.equal(sa["rng"][0]["torch"], sb["rng"][0]["torch"])


@pytest.mark.parametrize("adversarial", [False, True])
def test_stop_and_resume_is_bit_identical(tmp_path, adversarial):
    cfg = toy_config(steps=6, adversarial=adversarial, lr_schedule="cosine", warmup_steps=2)
    train(ToyTask, cfg, tmp_path, tmp_path / "full", seed=7, quiet=True)
    r = train(ToyTask, cfg, tmp_path, tmp_path / "part", seed=7, quiet=True, max_steps=4)
    assert r["step"] == 4 and not (tmp_path / "part" / "model.safetensors").exists()
    r = train(ToyTask, cfg, tmp_path, tmp_path / "part", seed=7, quiet=True, resume=True)
    assert r["step"] == 6
    _assert_same(params_of(tmp_path / "full" / "model.safetensors"),
                 params_of(tmp_path / "part" / "model.safetensors"))
    _assert_same_checkpoints(tmp_path / "full" / "checkpoint.safetensors",
                             tmp_path / "part" / "checkpoint.safetensors")
    if adversarial:
        _, a = load_checkpoint(tmp_path / "full" / "checkpoint.safetensors")
        _, b = load_checkpoint(tmp_path / "part" / "checkpoint.safetensors")
        _assert_same(a["disc"], b["disc"])


SCRIPT = """
import sys
from _toy_task import ToyTask, toy_config
from latentmix.train.loop import train
cfg = toy_config(steps={steps}, ckpt_every=1, log_every=5, val_every=0)
cfg["toy"] = {{"sleep": 0.03}}
r = train(ToyTask, cfg, sys.argv[1], sys.argv[2], seed=11, quiet=True)
sys.exit(143 if r["interrupted"] else 0)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_run_resumes_to_identical_weights(tmp_path, sig):
    steps = 80
    run = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(steps=steps), str(tmp_path), str(run)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (run / "checkpoint.safetensors").exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGTERM:
        assert proc.returncode == 143, err
        assert "Traceback" not in err
        assert "resume with --resume" in err and "interrupted at step" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    meta, _ = load_checkpoint(run / "checkpoint.safetensors")
    assert 0 < meta["step"] < steps
    assert not (run / "model.safetensors").exists()

    cfg = toy_config(steps=steps, ckpt_every=1, log_every=5, val_every=0)
    r = train(ToyTask, cfg, tmp_path, run, quiet=True, resume=True)
    assert r["step"] == steps
    train(ToyTask, cfg, tmp_path, tmp_path / "full", seed=11, quiet=True)
    _assert_same(params_of(tmp_path / "full" / "model.safetensors"), params_of(run / "model.safetensors"))
    _assert_same_checkpoints(tmp_path / "full" / "checkpoint.safetensors", run / "checkpoint.safetensors")
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps_logged = [x["step"] for x in recs if x["kind"] == "train"]
    assert steps_logged == sorted(set(steps_logged)) and steps_logged[-1] == steps  # no duplicates after resume
    assert not [p for p in run.iterdir() if p.name.startswith(".")]
