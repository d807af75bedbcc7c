"""The training loop on a toy task: learning, logs, exports, atomic checkpoints, errors, schedules, sampler, CLI."""
import argparse
import json

import numpy as np
import pytest
import torch
import yaml

from _toy_task import ToyTask, toy_config
from latentmix.checkpoint import read_header
from latentmix.errors import ConfigError, InputError
from latentmix.train.loop import resolve_task, train
from latentmix.train.state import (StepSampler, flatten_state, load_checkpoint, lr_factor, unflatten_state)


def _records(run, kind="train"):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def test_loss_decreases_and_run_folder_is_complete(tmp_path):
    run = tmp_path / "run"
    res = train(ToyTask, toy_config(steps=60, log_every=10, val_every=20, ckpt_every=25), tmp_path, run,
                seed=3, quiet=True, config_name="toy")
    assert res["step"] == 60 and not res["interrupted"]
    recs = _records(run)
    assert [r["step"] for r in recs] == [10, 20, 30, 40, 50, 60]
    assert all({"time", "loss", "mse", "lr", "grad_norm"} <= set(r) for r in recs)
    assert recs[-1]["loss"] < 0.6 * recs[0]["loss"]
    assert [r["step"] for r in _records(run, "val")] == [20, 40, 60]
    assert yaml.safe_load((run / "config.yaml").read_text()) == toy_config(steps=60, log_every=10, val_every=20,
                                                                           ckpt_every=25)
    prov = read_header(run / "model.safetensors")["provenance"]
    assert prov["steps"] == 60 and prov["seed"] == 3 and prov["world_size"] == 1
    assert prov["config_name"] == "toy" and prov["data_root"] == str(tmp_path.resolve())
    assert "wall_time_s" in prov and "git_commit" in prov
    assert read_header(run / "best.safetensors")["provenance"]["score"] == max(
        r["score"] for r in _records(run, "val"))
    assert sorted(p.name for p in run.iterdir()) == ["best.safetensors", "checkpoint.safetensors", "config.yaml",
                                                     "metrics.jsonl", "model.safetensors"]


def test_checkpoint_contents_and_no_temp_files(tmp_path):
    run = tmp_path / "run"
    train(ToyTask, toy_config(steps=5, ckpt_every=1, adversarial=True), tmp_path, run, quiet=True)
    assert not [p for p in run.iterdir() if p.name.startswith(".")]
    meta, state = load_checkpoint(run / "checkpoint.safetensors")
    assert meta["step"] == 5 and meta["sampler"]["consumed"] == 20
    assert set(state) == {"model", "optim", "disc", "disc_optim", "rng"}
    assert state["optim"]["state"][0]["exp_avg"].shape == state["model"]["net.0.weight"].shape
    assert isinstance(state["optim"]["param_groups"][0]["betas"], tuple)
    assert state["rng"][0]["numpy"][1].dtype == np.uint32


def test_flatten_roundtrip_optimizer_and_rng():
    p = torch.nn.Parameter(torch.randn(3, 2))
    opt = torch.optim.AdamW([p], lr=1e-3, betas=(0.8, 0.99))
    p.sum().backward()
    opt.step()
    obj = {"optim": opt.state_dict(), "np": np.random.get_state(), "py": __import__("random").getstate(),
           "torch": torch.get_rng_state(), "x": [1, 2.5, None, "s", True]}
    tensors, structure = flatten_state(obj)
    back = unflatten_state(tensors, json.loads(json.dumps(structure)))
    assert back["optim"]["param_groups"] == opt.state_dict()["param_groups"]
    assert torch.equal(back["optim"]["state"][0]["exp_avg_sq"], opt.state_dict()["state"][0]["exp_avg_sq"])
    assert np.array_equal(back["np"][1], obj["np"][1]) and back["np"][1].dtype == obj["np"][1].dtype
    assert back["py"] == obj["py"] and back["x"] == obj["x"] and torch.equal(back["torch"], obj["torch"])
    opt2 = torch.optim.AdamW([torch.nn.Parameter(p.detach().clone())], lr=1e-3)
    opt2.load_state_dict(back["optim"])
    with pytest.raises(TypeError):
        flatten_state({(1, 2): 3})


def test_errors_existing_run_no_checkpoint_other_config(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(InputError, match="no training checkpoint"):
        train(ToyTask, toy_config(), tmp_path, run, resume=True, quiet=True)
    train(ToyTask, toy_config(steps=2), tmp_path, run, quiet=True)
    with pytest.raises(ConfigError, match="--resume"):
        train(ToyTask, toy_config(steps=2), tmp_path, run, quiet=True)
    other = toy_config(steps=4)
    other["model"]["hidden"] = 32
    with pytest.raises(ConfigError, match="model config differs"):
        train(ToyTask, other, tmp_path, run, resume=True, quiet=True)
    with pytest.raises(ConfigError, match="lr_schedule"):
        train(ToyTask, toy_config(lr_schedule="linear"), tmp_path, tmp_path / "r2", quiet=True)
    with pytest.raises(ConfigError, match="not available|has no class"):
        resolve_task("latentmix.train.no_such_task:Nope")


def test_lr_schedules():
    s = dict(steps=100, warmup_steps=10, lr_schedule="cosine", lr_min_ratio=0.1, lr_decay=0.9)
    assert lr_factor(0, s) == pytest.approx(0.1) and lr_factor(9, s) == pytest.approx(1.0)
    assert lr_factor(10, s) == pytest.approx(1.0) and lr_factor(100, s) == pytest.approx(0.1)
    assert lr_factor(55, s) == pytest.approx(0.55)
    assert lr_factor(12, {**s, "lr_schedule": "exponential"}) == pytest.approx(0.81)
    assert lr_factor(50, {**s, "lr_schedule": "constant"}) == 1.0


def test_step_sampler_shards_resumes_and_covers_epochs():
    b = [StepSampler(12, 3, seed=5, rank=r, world_size=2) for r in range(2)]
    for step in range(8):  # 6 positions per step, 12 per epoch: ranks never share an item within a step
        i0, i1 = b[0].indices(step), b[1].indices(step)
        assert len(i0) == 3 and not set(i0) & set(i1)
    a = [StepSampler(10, 3, seed=5, rank=r, world_size=2) for r in range(2)]
    stream = [i for step in range(5) for r in range(2) for i in a[r].indices(step)]
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:20]) == list(range(10))
    it_full, it_resumed = iter(StepSampler(10, 3, 5)), iter(StepSampler(10, 3, 5, start_step=4))
    full = [next(it_full) for _ in range(30)]
    assert [next(it_resumed) for _ in range(18)] == full[12:]
    assert StepSampler(10, 3, 6).indices(0) != StepSampler(10, 3, 5).indices(0)


def _cli_parser():
    from latentmix.cli import train as cli_train
    p = argparse.ArgumentParser(prog="latentmix")
    cli_train.register(p.add_subparsers(dest="command"))
    return p


def test_cli_help_and_missing_data(tmp_path, capsys):
    p = _cli_parser()
    with pytest.raises(SystemExit):
        p.parse_args(["train", "--help"])
    out = capsys.readouterr().out
    assert "torchrun --nproc_per_node 2 -m latentmix train codec" in out and "--resume" in out
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(toy_config()))
    args = p.parse_args(["train", "codec", "--config", str(cfg), "--data", str(tmp_path / "nope"),
                         "--out", str(tmp_path / "run"), "--steps", "3"])
    with pytest.raises(InputError, match="no such data folder"):
        args.func(args)


def test_cli_trains_with_defaults_settable(tmp_path, monkeypatch):
    from latentmix.train import loop
    monkeypatch.setitem(loop.TASKS, "codec", "_toy_task:ToyTask")
    cfg = tmp_path / "toy.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"dim": 8, "hidden": 16, "out": 4}, "train": {"batch_size": 4}}))
    p = _cli_parser()
    base = ["train", "codec", "--config", str(cfg), "--data", str(tmp_path), "--out", str(tmp_path / "run"),
            "--set", "train.val_items=4", "--set", "train.tensorboard=false", "--steps", "3", "--quiet"]
    args = p.parse_args(base)
    assert args.func(args) == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["train"]["val_items"] == 4 and saved["train"]["steps"] == 3 and saved["train"]["lr"] == 3e-4
    prov = read_header(tmp_path / "run" / "model.safetensors")["provenance"]
    assert prov["config_name"] == "toy" and prov["steps"] == 3
    args = p.parse_args(base[:-3] + ["--steps", "5", "--quiet", "--resume"])
    assert args.func(args) == 0
    assert read_header(tmp_path / "run" / "model.safetensors")["provenance"]["steps"] == 5


def test_init_from_a_model_file_fine_tunes(tmp_path):
    from latentmix.checkpoint import load_tensors
    from latentmix.errors import ModelFileError
    train(ToyTask, toy_config(steps=5), tmp_path, tmp_path / "a", seed=0, quiet=True)
    _, first = load_tensors(tmp_path / "a" / "model.safetensors")
    cfg = toy_config(steps=1)
    cfg["train"]["init"] = str(tmp_path / "a" / "model.safetensors")
    cfg["train"]["lr"] = 0.0
    train(ToyTask, cfg, tmp_path, tmp_path / "b", seed=1, quiet=True)
    _, second = load_tensors(tmp_path / "b" / "model.safetensors")
    # lr 0: the parameters are the init's (the EMA buffer moves with the data, as a codebook's would)
    assert all(torch.equal(first[k], second[k]) for k in first if k != "ema")
    assert not torch.equal(first["ema"], torch.zeros_like(first["ema"]))
    cfg["train"]["init"] = str(tmp_path / "a" / "config.yaml")
    with pytest.raises(ModelFileError, match="config.yaml"):
        train(ToyTask, cfg, tmp_path, tmp_path / "c", seed=1, quiet=True)


def test_adversary_trains_from_adversarial_start(tmp_path):
    """train.adversarial_start: before it the task's discriminator_step returns None and the loop leaves the
    adversary alone (weights, AdamW state, no disc/ logs); from that step on the adversary trains; a run stopped
    before the start resumes to the uninterrupted run's adversary."""
    snaps = {}

    class Watch(ToyTask):
        def training_step(self, model, batch, step, disc=None):
            snaps[step] = {k: v.detach().clone() for k, v in disc.state_dict().items()}  # before step's updates
            return super().training_step(model, batch, step, disc)

    def same(a, b):
        return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    cfg = toy_config(steps=6, log_every=1, val_every=0, ckpt_every=0, adversarial=True, adversarial_start=3)
    train(Watch, cfg, tmp_path, tmp_path / "full", seed=2, quiet=True)
    full = dict(snaps)
    assert sorted(full) == list(range(6))
    assert all(same(full[k], full[0]) for k in (1, 2, 3))                 # steps 0-2: the adversary is off
    assert not same(full[4], full[3]) and not same(full[5], full[4])       # steps 3, 4: it trains
    recs = _records(tmp_path / "full")
    assert [("disc/loss" in r, "adv" in r) for r in recs] == [(False, False)] * 3 + [(True, True)] * 3

    train(Watch, cfg, tmp_path, tmp_path / "part", seed=2, quiet=True, max_steps=2)
    meta, state = load_checkpoint(tmp_path / "part" / "checkpoint.safetensors")
    assert meta["step"] == 2 and same(state["disc"], full[0]) and state["disc_optim"]["state"] == {}
    train(Watch, cfg, tmp_path, tmp_path / "part", seed=2, quiet=True, resume=True)
    _, a = load_checkpoint(tmp_path / "full" / "checkpoint.safetensors")
    _, b = load_checkpoint(tmp_path / "part" / "checkpoint.safetensors")
    assert same(a["disc"], b["disc"]) and same(a["model"], b["model"]) and not same(a["disc"], full[0])


def test_wall_clock_budget_ends_the_run_as_finished(tmp_path):
    """train.max_seconds: the run stops once it has trained that long, validates and exports like a finished run."""
    run = tmp_path / "run"
    res = train(ToyTask, toy_config(steps=10_000, log_every=1000, val_every=0, ckpt_every=0, max_seconds=1e-6),
                tmp_path, run, seed=0, quiet=True)
    assert res["step"] == 1 and res["stopped_by"] == "max_seconds" and not res["interrupted"]
    prov = read_header(run / "model.safetensors")["provenance"]
    assert prov["steps"] == 1 and prov["stopped_by"] == "max_seconds"
    assert load_checkpoint(run / "checkpoint.safetensors")[0]["step"] == 1


def test_help_examples_name_presets_that_exist():
    """Every `--config NAME` in `latentmix train --help` is a preset of its task."""
    import re
    from latentmix.cli.train import EPILOG
    from latentmix.config import load_config
    for task, name in re.findall(r"train (codec|separator|prior) --config (\w+)\s", EPILOG):
        assert load_config(name, task)


@pytest.mark.parametrize("override, message", [("train.lr=-1", "train.lr: must be >= 0"),
                                               ("train.lr=fast", "train.lr: expected a number"),
                                               ("train.betas=[0.9]", "train.betas"),
                                               ("train.steps=-3", "train.steps"),
                                               ("train.grad_clip=-1", "train.grad_clip: must be >= 0"),
                                               ("train.max_seconds=0", "train.max_seconds")])
def test_bad_training_numbers_are_one_line_errors_and_write_nothing(tmp_path, capsys, override, message):
    from latentmix.cli import main
    (tmp_path / "data").mkdir()
    rc = main(["train", "codec", "--config", "cpu_v2", "--data", str(tmp_path / "data"), "--out",
               str(tmp_path / "run"), "--set", override])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1 and not (tmp_path / "run").exists()


def test_empty_config_file_is_a_one_line_error(tmp_path, capsys):
    from latentmix.cli import main
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "data").mkdir()
    rc = main(["train", "codec", "--config", str(tmp_path / "empty.yaml"), "--data", str(tmp_path / "data"),
               "--out", str(tmp_path / "run")])
    assert rc == 2 and "needs a 'model:' section" in capsys.readouterr().err and not (tmp_path / "run").exists()
