"""The one training loop every latentmix model uses: AdamW (+ an optional adversary), DDP, exact resume,
periodic validation, atomic checkpoints, metrics.jsonl / TensorBoard / stderr logging, and the final export.

A Task (see `latentmix.train.Task`) supplies model, data, losses, validation and export; the loop owns the rest.
It runs unchanged under `torchrun --nproc_per_node N`. Keys read from config['train'] (defaults in DEFAULTS):
steps, batch_size, lr, betas, weight_decay, grad_clip, lr_schedule (constant|cosine|exponential), warmup_steps,
lr_decay (exponential, per step), lr_min_ratio (cosine), num_workers, log_every, val_every, val_items,
ckpt_every, adversarial, disc_lr, seed, ddp_wrap, find_unused_parameters, broadcast_buffers, tensorboard,
max_seconds (a wall-clock budget: the run ends as finished, and exports, once it has trained that long).
Resume is bit-exact on one process with num_workers=0: the data order is a function of (seed, step) only
(StepSampler), the LR a function of step only, and optimizer, model, adversary and RNG states are restored.
"""
from __future__ import annotations

import importlib
import inspect
import json
import math
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from .. import __version__
from ..config import save_config
from ..errors import ConfigError, InputError, LatentmixError, ModelFileError
from . import ddp
from .logging import RunLogger, format_line, truncate_metrics
from .state import (StepSampler, checkpoint_path, get_rng_state, load_checkpoint, lr_factor,
                    remove_stale_temps, save_checkpoint, set_rng_state)

TASKS = {"codec": "latentmix.train.tasks.codec:CodecTask",
         "separator": "latentmix.train.tasks.separator:SeparatorTask"}

DEFAULTS = dict(steps=1000, batch_size=8, lr=3e-4, betas=[0.9, 0.99], weight_decay=0.0, grad_clip=1.0,
                lr_schedule="constant", warmup_steps=0, lr_decay=0.9999, lr_min_ratio=0.0, num_workers=0,
                log_every=50, val_every=0, val_items=8, ckpt_every=500, adversarial=False, disc_lr=None,
                seed=None, ddp_wrap=True, find_unused_parameters=False, broadcast_buffers=True, tensorboard=True,
                init=None, max_seconds=None, adversarial_start=0)   # init: a model file whose weights start the run (fine-tuning)


def resolve_task(task):
    """A Task class from a class, a short name ('codec', 'separator') or 'package.module:ClassName'."""
    if not isinstance(task, str):
        return task
    spec = TASKS.get(task, task)
    if ":" not in spec:
        raise ConfigError(f"unknown task '{task}' (expected one of {sorted(TASKS)} or 'module:Class')")
    mod_name, cls_name = spec.split(":", 1)
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        if e.name and mod_name.startswith(e.name):
            raise ConfigError(f"task '{task}' is not available: module {mod_name} is not part of this "
                              f"latentmix build") from None
        raise
    if not hasattr(mod, cls_name):
        raise ConfigError(f"task '{task}': {mod_name} has no class {cls_name}")
    return getattr(mod, cls_name)


def train_settings(config: dict) -> dict:
    """config['train'] merged over DEFAULTS (unknown keys are kept for the task)."""
    s = dict(DEFAULTS)
    s.update((config or {}).get("train") or {})
    if s["lr_schedule"] not in ("constant", "cosine", "exponential"):
        raise ConfigError(f"train.lr_schedule: '{s['lr_schedule']}' is not constant, cosine or exponential")
    for k in ("steps", "batch_size"):
        if not isinstance(s[k], int) or s[k] < 1:
            raise ConfigError(f"train.{k}: expected a positive integer, got {s[k]!r}")
    return s


def _init_from(model, path) -> None:
    """Start from the weights of a model file of the same architecture (strict: names and shapes)."""
    from ..checkpoint import load_tensors
    _, tensors = load_tensors(path)
    own = model.state_dict()
    bad = sorted(set(own) ^ set(tensors)) or [k for k in own if own[k].shape != tensors[k].shape]
    if bad:
        raise ModelFileError(f"{path}: cannot initialise this model from it (mismatched tensors, e.g. {bad[0]})")
    model.load_state_dict(tensors, strict=True)


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _scalars(d: dict, prefix: str = "") -> dict:
    """The scalar entries of a step's dict (floats or one-element tensors, detached), keys prefixed."""
    out = {}
    for k, v in d.items():
        if k == "out":
            continue
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            out[prefix + k] = v.detach().float().reshape(())
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[prefix + k] = float(v)
    return out


def _git_commit() -> str | None:
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                           text=True, timeout=5)
        return r.stdout.strip() or None if r.returncode == 0 else None
    except Exception:
        return None


class _StopFlag:
    """SIGINT/SIGTERM set a flag; the loop checkpoints at the end of the step. A second SIGINT aborts."""

    def __init__(self):
        self.signum = 0
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        return False


def _grad_fingerprint(params) -> float:
    return float(sum(p.grad.double().sum() * (i + 1) for i, p in enumerate(params) if p.grad is not None))


def _grads_in_sync(params) -> bool:
    """True when every rank holds the same gradients (DDP synced them); checked once, on the first step."""
    return ddp.all_close(_grad_fingerprint(params))


def _wrapper_class():
    """DistributedDataParallel that also answers the wrapped model's attributes (model.sample_rate, ...)."""
    from torch.nn.parallel import DistributedDataParallel

    class ModelDDP(DistributedDataParallel):
        def __getattr__(self, name):
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self.module, name)

    return ModelDDP


def train(task_cls_or_name, config: dict, data_root, out_dir, seed: int = 0, resume: bool = False,
          device: str = "auto", quiet: bool = False, max_steps: int | None = None,
          config_name: str | None = None) -> dict:
    """Train a Task's model and export it to out_dir/model.safetensors; returns the final metrics.

    max_steps stops early (the LR schedule still follows train.steps), writing a checkpoint to resume from.
    The result has 'step', 'interrupted' (and 'signal'), the last logged means and 'val/*' metrics.
    """
    task_cls = resolve_task(task_cls_or_name)
    s = train_settings(config)
    out_dir = Path(out_dir)
    info = ddp.setup_distributed(device)
    try:
        result = _train(task_cls, config, s, data_root, out_dir, seed, resume, info, quiet, max_steps, config_name)
    except BaseException:
        ddp.cleanup(info, barrier=False)  # the other ranks may be inside another collective: do not wait
        raise
    ddp.cleanup(info)
    return result


def _train(task_cls, config, s, data_root, out_dir, seed, resume, info, quiet, max_steps, config_name):
    t0 = time.time()
    main, world, dev = info.is_main, info.world_size, info.device
    ckpt = checkpoint_path(out_dir)
    meta, state = None, None
    if resume:
        meta, state = load_checkpoint(ckpt)
        old = meta.get("config", {})
        if json.dumps(old.get("model"), sort_keys=True) != json.dumps(config.get("model"), sort_keys=True):
            raise ConfigError(f"{ckpt}: model config differs from the checkpoint's; resume with the same config "
                              f"(see {out_dir / 'config.yaml'}) or start a new run in another --out folder")
        if bool((old.get("train") or {}).get("adversarial", False)) != bool(s["adversarial"]):
            raise ConfigError(f"{ckpt}: train.adversarial differs from the checkpoint's")
        seed = int(meta["seed"])
    elif ckpt.exists():
        raise ConfigError(f"{out_dir}: holds a training checkpoint already; add --resume to continue it "
                          f"or choose another --out folder")
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(out_dir)
        save_config(config, out_dir / "config.yaml")
        if resume:
            truncate_metrics(out_dir / "metrics.jsonl", int(meta["step"]))
    ddp.barrier()

    _seed_all(seed)
    task = task_cls(config, str(data_root), seed)
    model = task.build_model().to(dev)
    disc = task.build_discriminator() if s["adversarial"] else None
    disc = disc.to(dev) if disc is not None else None
    if s["adversarial"] and disc is None:
        raise ConfigError("train.adversarial is true but the task builds no discriminator")
    dataset = task.train_dataset()
    if isinstance(dataset, IterableDataset):
        raise ConfigError("the training dataset must be indexable (map-style), not an IterableDataset")
    if len(dataset) == 0:
        raise InputError(f"{data_root}: the training dataset is empty")

    start_step, best = 0, None
    if state is None and s["init"]:
        _init_from(model, s["init"])
    if state is not None:
        model.load_state_dict(state["model"], strict=True)
        if disc is not None:
            disc.load_state_dict(state["disc"], strict=True)
        start_step, best = int(meta["step"]), meta.get("best_score")
    elif world > 1:
        ddp.broadcast_module(model)
        if disc is not None:
            ddp.broadcast_module(disc)

    wrapped = world > 1 and s["ddp_wrap"]
    task_model = model
    if wrapped:
        from torch.nn.parallel import DistributedDataParallel
        sync = {"forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(
            DistributedDataParallel).parameters else "broadcast_buffers": bool(s["broadcast_buffers"])}
        task_model = _wrapper_class()(model, device_ids=[dev] if dev.type == "cuda" else None,
                                             find_unused_parameters=bool(s["find_unused_parameters"]), **sync)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=s["lr"], betas=tuple(s["betas"]), weight_decay=s["weight_decay"])
    disc_params, disc_opt = [], None
    if disc is not None:
        disc_params = [p for p in disc.parameters() if p.requires_grad]
        disc_opt = torch.optim.AdamW(disc_params, lr=s["disc_lr"] or s["lr"], betas=tuple(s["betas"]),
                                     weight_decay=s["weight_decay"])
    if state is not None:
        opt.load_state_dict(state["optim"])
        if disc_opt is not None:
            disc_opt.load_state_dict(state["disc_optim"])
        rngs = state["rng"]
        set_rng_state(rngs[info.rank] if len(rngs) == world else rngs[0])
    else:
        _seed_all(seed * 1000 + 17 + info.rank)  # per-rank stream for the training steps (dropout, noise)

    total = int(s["steps"])
    stop_at = min(total, int(max_steps)) if max_steps is not None else total
    sampler = StepSampler(len(dataset), s["batch_size"], seed, info.rank, world, start_step)
    loader = DataLoader(dataset, batch_size=s["batch_size"], sampler=sampler, num_workers=s["num_workers"],
                        pin_memory=dev.type == "cuda", generator=torch.Generator().manual_seed(seed + start_step),
                        persistent_workers=False)
    log = RunLogger(out_dir, enabled=main, tensorboard=bool(s["tensorboard"]), quiet=quiet)
    manual_sync = world > 1 and not wrapped
    provenance = {"steps": start_step, "seed": seed, "data_root": str(Path(data_root).resolve()),
                  "config_name": config_name, "git_commit": _git_commit() if main else None,
                  "world_size": world, "task": task_cls.__name__, "latentmix_version": __version__,
                  "torch_version": torch.__version__}
    result: dict = {"step": start_step, "interrupted": False}
    budget = float(s["max_seconds"]) if s["max_seconds"] else None
    spent = float((meta or {}).get("elapsed", 0.0))      # wall time of earlier legs of a resumed run

    def checkpoint(step):
        rngs = ddp.all_gather_objects(get_rng_state())
        if not main:
            return
        st = {"model": model.state_dict(), "optim": opt.state_dict(), "rng": rngs,
              "disc": disc.state_dict() if disc is not None else None,
              "disc_optim": disc_opt.state_dict() if disc_opt is not None else None}
        m = {"step": step, "seed": seed, "config": config, "world_size": world, "best_score": best,
             "sampler": {"consumed": step * s["batch_size"] * world, "batch_size": s["batch_size"]},
             "schedule": {k: s[k] for k in ("lr_schedule", "lr", "warmup_steps", "lr_decay", "lr_min_ratio")},
             "elapsed": spent + time.time() - t0}
        save_checkpoint(ckpt, st, m)

    def validate(step):
        nonlocal best
        if not hasattr(task, "validate"):
            return
        if main:
            rng = get_rng_state()  # validation must not move the training random streams
            model.eval()
            with torch.no_grad():
                vals = {k: float(v) for k, v in (task.validate(model, int(s["val_items"])) or {}).items()}
            model.train()
            set_rng_state(rng)
            log.record(step, vals, kind="val")
            log.info(f"val step {step}: " + "  ".join(f"{k} {v:.4g}" for k, v in sorted(vals.items())))
            result.update({k if k.startswith("val/") else f"val/{k}": v for k, v in vals.items()})
            if "score" in vals and math.isfinite(vals["score"]) and (best is None or vals["score"] > best):
                best = vals["score"]
                task.export(model, out_dir / "best.safetensors", {**provenance, "steps": step, "score": best})
        ddp.barrier()

    window: dict = {}
    n_window, t_window = 0, time.time()
    step = start_step
    bar = log.progress(total, start_step) if start_step < stop_at else None
    it = iter(loader)
    model.train()
    if disc is not None:
        disc.train()
    with _StopFlag() as stop:
        while step < stop_at:
            batch = _to_device(next(it), dev)
            f = lr_factor(step, s)
            for g in opt.param_groups:
                g["lr"] = s["lr"] * f
            if disc is not None:
                for g in disc_opt.param_groups:
                    g["lr"] = (s["disc_lr"] or s["lr"]) * f
                disc.requires_grad_(False)  # the generator's loss must not leave grads on the adversary
                out = task.training_step(task_model, batch, step, disc=disc)
                disc.requires_grad_(True)
            else:
                out = task.training_step(task_model, batch, step)
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            if wrapped and step == start_step and not _grads_in_sync(params):
                log.info("warning: the task's step bypasses the DDP forward; averaging gradients by hand")
                manual_sync = True
            if manual_sync:
                ddp.all_reduce_grads(params)
            stats = _scalars(out)
            if s["grad_clip"] and s["grad_clip"] > 0:
                stats["grad_norm"] = torch.nn.utils.clip_grad_norm_(params, s["grad_clip"]).detach()
            opt.step()
            if manual_sync and s["broadcast_buffers"]:
                ddp.broadcast_module(model, buffers_only=True)
            d = task.discriminator_step(disc, out.get("out"), batch, step) if disc is not None else None
            if d is not None:   # a task may return None: its adversary is not on yet (e.g. adversarial_start)
                disc_opt.zero_grad(set_to_none=True)
                d["loss"].backward()
                ddp.all_reduce_grads(disc_params)
                if s["grad_clip"] and s["grad_clip"] > 0:
                    d["grad_norm"] = torch.nn.utils.clip_grad_norm_(disc_params, s["grad_clip"]).detach()
                disc_opt.step()
                stats.update(_scalars(d, prefix="disc/"))
            del out
            step += 1
            for k, v in stats.items():
                window[k] = window.get(k, 0.0) + v
            n_window += 1
            if bar is not None:
                bar.update(1)

            if step % max(int(s["log_every"]), 1) == 0 or step == stop_at:
                means = ddp.all_reduce_mean({k: float(v) / n_window for k, v in window.items()})
                rate = n_window / max(time.time() - t_window, 1e-9)
                log.record(step, {**means, "lr": s["lr"] * f, "steps_per_s": rate})
                log.info(format_line(step, total, means, s["lr"] * f, rate))
                result.update(means)
                if not math.isfinite(means.get("loss", 0.0)):
                    log.close()
                    raise LatentmixError(f"loss became {means['loss']} at step {step}; lower train.lr or "
                                         f"resume from the last checkpoint with other settings")
                window, n_window, t_window = {}, 0, time.time()
            if s["val_every"] and step % int(s["val_every"]) == 0 and step < total:
                validate(step)
            if budget is not None and step < stop_at:
                over = int(spent + time.time() - t0 >= budget)
                if (ddp.all_reduce_max_int(over) if world > 1 else over):
                    log.info(f"wall-clock budget of {budget:g} s reached at step {step}")
                    stop_at = total = step
                    result["stopped_by"] = "max_seconds"
            stopping = ddp.all_reduce_max_int(stop.signum) if world > 1 else stop.signum
            if stopping or (s["ckpt_every"] and step % int(s["ckpt_every"]) == 0) or step == stop_at:
                checkpoint(step)
            if stopping:
                name = signal.Signals(stopping).name
                log.info(f"interrupted at step {step} ({name}); resume with --resume")
                result.update(step=step, interrupted=True, signal=name)
                break
    del it
    result["step"] = step
    if step >= total and not result["interrupted"]:
        validate(step)
        if main:
            prov = {**provenance, "steps": step, "wall_time_s": round(spent + time.time() - t0, 2),  # all legs
                    "best_score": best, "stopped_by": result.get("stopped_by", "steps")}
            task.export(model, out_dir / "model.safetensors", prov)
            log.info(f"trained {step} steps in {time.time() - t0:.1f} s; model: {out_dir / 'model.safetensors'}")
        ddp.barrier()
    log.close()
    ddp.barrier()  # no rank leaves before rank 0 has written its files
    result["wall_time_s"] = time.time() - t0
    result["out_dir"] = str(out_dir)
    return result
