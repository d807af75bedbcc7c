"""The one training loop every latentmix model uses: AdamW (+ an optional adversary), DDP, exact resume,
periodic validation, atomic checkpoints, metrics.jsonl / TensorBoard / stderr logging, and the final export.

A Task (see `latentmix.train.tasks.base.Task`) supplies model, data, losses, validation and export; the loop owns
the rest. It runs unchanged under `torchrun --nproc_per_node N`. Keys read from config['train'] (defaults in
DEFAULTS): steps, batch_size, lr, betas, weight_decay, grad_clip, lr_schedule (constant|cosine|exponential),
warmup_steps, lr_decay (exponential, per step), lr_min_ratio (cosine), num_workers, log_every, val_every,
val_items, ckpt_every, adversarial, disc_lr, seed, ddp_wrap, find_unused_parameters, broadcast_buffers,
tensorboard, init (a model file whose weights start the run), max_seconds (a wall-clock budget: the run ends as
finished, and exports, once it has trained that long), adversarial_start (read by the task, whose
discriminator_step returns None until then).
Resume is bit-exact on one process with num_workers=0: the data order is a function of (seed, step) only
(StepSampler), the LR a function of step only, and optimizer, model, adversary and RNG states are restored.

The run is one TrainState (model, optimisers, adversary, step, best score, settings, logger, ...) that small
functions advance: _setup (with _resume_checkpoint), _train_step (with _adversary_step), _log_window,
_validate, _checkpoint, _budget_reached and _export.
"""
from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import math
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset

from .. import STEMS, __version__
from ..config import save_config
from ..errors import ConfigError, InputError, LatentmixError, ModelFileError
from . import ddp
from .ddp import DistInfo
from .settings import DEFAULTS, train_settings  # noqa: F401  (DEFAULTS: the CLI's)
from .lock import RunLock
from .logging import RunLogger, format_line, truncate_metrics
from .state import (StepSampler, checkpoint_path, get_rng_state, load_checkpoint, lr_factor,
                    remove_stale_temps, save_checkpoint, set_rng_state)
from .tasks.base import Task

TASKS = {"codec": "latentmix.train.tasks.codec:CodecTask",
         "separator": "latentmix.train.tasks.separator:SeparatorTask",
         "prior": "latentmix.train.tasks.prior:PriorTask"}

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


# --------------------------------------------------------------------------- the run's state

@dataclass
class RunSpec:
    """What train() was asked to run; fixed for the run (a resumed run takes its seed from the checkpoint)."""
    task_cls: type
    config: dict
    settings: dict                 # train_settings(config)
    data_root: str | Path
    out_dir: Path
    seed: int
    resume: bool
    info: DistInfo                 # rank, world size, device
    quiet: bool = False
    max_steps: int | None = None
    config_name: str | None = None
    config_source: str = "config"  # names the config in errors


@dataclass
class Adversary:
    """The optional discriminator, its trainable parameters and its own AdamW (train.disc_lr)."""
    model: nn.Module
    params: list
    opt: torch.optim.Optimizer


@dataclass
class Window:
    """Sums of the step stats since the last log line."""
    sums: dict = field(default_factory=dict)
    n: int = 0
    t: float = field(default_factory=time.time)

    def add(self, stats: dict) -> None:
        for k, v in stats.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.n += 1


@dataclass
class TrainState:
    """Everything a running training holds; the loop's functions read and advance it."""
    spec: RunSpec
    task: Task
    model: nn.Module               # the bare model (checkpoints, validation, export)
    task_model: nn.Module          # what training_step gets: the DDP wrapper, or the model itself
    params: list                   # the model's trainable parameters
    opt: torch.optim.Optimizer
    adversary: Adversary | None
    loader: DataLoader
    log: RunLogger | None             # opened once the run folder is locked
    provenance: dict               # the exported model files' provenance (steps updated at export)
    t0: float                      # when this leg started (time.time())
    spent: float                   # wall time of the earlier legs of a resumed run
    start_step: int
    step: int
    total: int                     # train.steps (a reached max_seconds budget lowers it to the last step)
    stop_at: int                   # min(total, max_steps)
    best: float | None             # best validation score so far (best.safetensors)
    wrapped: bool                  # task_model is a DistributedDataParallel wrapper
    manual_sync: bool              # gradients are averaged by hand (no wrapper, or the task bypassed it)
    lr_factor: float = 1.0         # the LR multiplier of the current step
    window: Window = field(default_factory=Window)
    result: dict = field(default_factory=dict)

    @property
    def settings(self) -> dict:
        return self.spec.settings

    @property
    def info(self) -> DistInfo:
        return self.spec.info

    @property
    def budget(self) -> float | None:
        """train.max_seconds, the wall-clock budget over all legs of the run, or None."""
        return float(self.settings["max_seconds"]) if self.settings["max_seconds"] else None

    def elapsed(self) -> float:
        """Wall time of the whole run so far, earlier legs included."""
        return self.spent + time.time() - self.t0


# --------------------------------------------------------------------------- small helpers

def _init_from(model, path) -> None:
    """Start from the weights of a model file of the same architecture (strict: names and shapes). A separator file
    with other stems goes through the model's tensors_from_stems where it has one (a 4-stem file into 5 stems),
    a narrower one through its tensors_widened (units repeated, the same function), and one with fewer layers
    through its tensors_with_new_layers (added layers start as the identity)."""
    from ..checkpoint import load_tensors
    header, tensors = load_tensors(path)

    def convert(fn, *args):
        try:
            return fn(tensors, *args)
        except ModelFileError as e:
            raise ModelFileError(f"{path}: cannot initialise this model from it ({e})") from None
        except (KeyError, IndexError, RuntimeError) as e:
            raise ModelFileError(f"{path}: cannot initialise this model from it (mismatched tensors: {e})") from None

    old_stems = (header.get("config") or {}).get("stems") or list(STEMS)      # a file without the key has four
    if hasattr(model, "tensors_from_stems") and list(old_stems) != list(model.stems):
        tensors = convert(model.tensors_from_stems, old_stems)
    if hasattr(model, "tensors_widened"):                   # a wider model from a narrower file
        wide = convert(model.tensors_widened)
        if wide is not tensors:
            print(f"note: {path} is narrower than this model; its units are repeated (Net2Wider), the same function",
                  file=sys.stderr)
        tensors = wide
    if hasattr(model, "tensors_with_new_layers"):           # a deeper model from a shallower file
        grown = convert(model.tensors_with_new_layers)
        if len(grown) != len(tensors):
            print(f"note: {path} has fewer layers than this model; the added layers start as the identity",
                  file=sys.stderr)
        tensors = grown
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


# --------------------------------------------------------------------------- entry point

def train(task_cls_or_name, config: dict, data_root, out_dir, seed: int = 0, resume: bool = False,
          device: str = "auto", quiet: bool = False, max_steps: int | None = None,
          config_name: str | None = None, config_source: str = "config") -> dict:
    """Train a Task's model and export it to out_dir/model.safetensors; returns the final metrics.
    config_source names the config in errors (its file, and the --set overrides).

    max_steps stops early (the LR schedule still follows train.steps), writing a checkpoint to resume from.
    The result has 'step', 'interrupted' (and 'signal'), the last logged means and 'val/*' metrics.
    """
    task_cls = resolve_task(task_cls_or_name)
    s = train_settings(config, config_source)
    out_dir = Path(out_dir)
    info = ddp.setup_distributed(device)
    spec = RunSpec(task_cls, config, s, data_root, out_dir, seed, resume, info, quiet, max_steps, config_name,
                   config_source)
    try:
        result = _run(spec)
    except BaseException:
        ddp.cleanup(info, barrier=False)  # the other ranks may be inside another collective: do not wait
        raise
    ddp.cleanup(info)
    return result


def _run(spec: RunSpec) -> dict:
    """Set up (or resume), train to the end, a budget, max_steps or a signal, and export a finished run."""
    t0 = time.time()
    spec, meta, ckpt = _resume_checkpoint(spec)
    st = _setup(spec, meta, ckpt, t0)          # every check and build before the first write
    with _run_lock(spec):
        _prepare_out_dir(spec, meta)
        st.log = RunLogger(spec.out_dir, enabled=spec.info.is_main, tensorboard=bool(spec.settings["tensorboard"]),
                           quiet=spec.quiet)
        try:
            _loop(st)
            if st.step >= st.total and not st.result["interrupted"]:
                _export(st)
        finally:
            st.log.close()
        ddp.barrier()  # no rank leaves (and rank 0 keeps the lock) before rank 0 has written its files
    st.result["wall_time_s"] = time.time() - t0
    st.result["out_dir"] = str(spec.out_dir)
    return st.result


# --------------------------------------------------------------------------- setup and resume

def _resume_checkpoint(spec: RunSpec) -> tuple[RunSpec, dict | None, dict | None]:
    """(spec with the checkpoint's seed, meta, state) for --resume after checking the checkpoint fits this
    config; (spec, None, None) for a new run, which must not overwrite an existing one."""
    ckpt = checkpoint_path(spec.out_dir)
    if not spec.resume:
        if ckpt.exists():
            raise ConfigError(f"{spec.out_dir}: holds a training checkpoint already; add --resume to continue it "
                              f"or choose another --out folder")
        return spec, None, None
    meta, state = load_checkpoint(ckpt)
    old = meta.get("config", {})
    if json.dumps(old.get("model"), sort_keys=True) != json.dumps(spec.config.get("model"), sort_keys=True):
        raise ConfigError(f"{ckpt}: model config differs from the checkpoint's; resume with the same config "
                          f"(see {spec.out_dir / 'config.yaml'}) or start a new run in another --out folder")
    if bool((old.get("train") or {}).get("adversarial", False)) != bool(spec.settings["adversarial"]):
        raise ConfigError(f"{ckpt}: train.adversarial differs from the checkpoint's")
    return replace(spec, seed=int(meta["seed"])), meta, state


@contextlib.contextmanager
def _run_lock(spec: RunSpec):
    """Rank 0 holds the run folder's lock (train/lock.py) for the run; every rank refuses when it is taken."""
    lock, error = (RunLock(spec.out_dir), None) if spec.info.is_main else (None, None)
    if lock is not None:
        try:
            lock.acquire()
        except ConfigError as e:
            error = str(e)
    error = ddp.all_gather_objects(error)[0]
    if error:
        raise ConfigError(error)
    if lock is not None and lock.took_over:
        print(f"warning: {spec.out_dir}: {lock.took_over}", file=sys.stderr)
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def _prepare_out_dir(spec: RunSpec, meta: dict | None) -> None:
    """Rank 0 creates the run folder, writes config.yaml and drops metrics logged after the checkpoint."""
    if spec.info.is_main:
        spec.out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(spec.out_dir)
        save_config(spec.config, spec.out_dir / "config.yaml")
        if meta is not None:
            truncate_metrics(spec.out_dir / "metrics.jsonl", int(meta["step"]))
    ddp.barrier()


def _setup(spec: RunSpec, meta: dict | None, ckpt: dict | None, t0: float) -> TrainState:
    """Build task, model, adversary, optimisers and data; restore a checkpoint or start fresh (or from init)."""
    s, info = spec.settings, spec.info
    _seed_all(spec.seed)
    task, model, disc, dataset = _build(spec)
    start_step, best = _start_weights(spec, model, disc, meta, ckpt)
    task_model, wrapped = _wrap(model, s, info, getattr(task, "ddp_wrap_safe", True))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=s["lr"], betas=tuple(s["betas"]), weight_decay=s["weight_decay"])
    adversary = _adversary(disc, s)
    _restore_optimisers(spec, opt, adversary, ckpt)
    total = int(s["steps"])
    stop_at = min(total, int(spec.max_steps)) if spec.max_steps is not None else total
    loader = _loader(dataset, spec, start_step)
    return TrainState(spec=spec, task=task, model=model, task_model=task_model, params=params, opt=opt,
                      adversary=adversary, loader=loader, log=None, provenance=_provenance(spec, start_step),
                      t0=t0, spent=float((meta or {}).get("elapsed", 0.0)), start_step=start_step,
                      step=start_step, total=total, stop_at=stop_at, best=best, wrapped=wrapped,
                      manual_sync=info.world_size > 1 and not wrapped,
                      result={"step": start_step, "interrupted": False})


def _build(spec: RunSpec) -> tuple[Task, nn.Module, nn.Module | None, Dataset]:
    """The task, its model and adversary (on the device) and its training dataset, checked."""
    s, dev = spec.settings, spec.info.device
    try:
        task = spec.task_cls(spec.config, str(spec.data_root), spec.seed)
        model = task.build_model().to(dev)
    except ConfigError as e:
        raise ConfigError(f"{spec.config_source}: {e}") from None
    disc = task.build_discriminator() if s["adversarial"] else None
    disc = disc.to(dev) if disc is not None else None
    if s["adversarial"] and disc is None:
        raise ConfigError("train.adversarial is true but the task builds no discriminator")
    dataset = task.train_dataset()
    if isinstance(dataset, IterableDataset):
        raise ConfigError("the training dataset must be indexable (map-style), not an IterableDataset")
    if len(dataset) == 0:
        raise InputError(f"{spec.data_root}: the training dataset is empty")
    return task, model, disc, dataset


def _start_weights(spec: RunSpec, model, disc, meta, ckpt) -> tuple[int, float | None]:
    """Load the checkpoint's (or train.init's) weights, or give every rank rank 0's; (start step, best score)."""
    if ckpt is None and spec.settings["init"]:
        _init_from(model, spec.settings["init"])
    if ckpt is not None:
        with _corrupt_checkpoint(spec):
            model.load_state_dict(ckpt["model"], strict=True)
            if disc is not None:
                disc.load_state_dict(ckpt["disc"], strict=True)
        return int(meta["step"]), meta.get("best_score")
    if spec.info.world_size > 1:
        ddp.broadcast_module(model)
        if disc is not None:
            ddp.broadcast_module(disc)
    return 0, None


def _wrap(model, s: dict, info: DistInfo, safe: bool = True) -> tuple[nn.Module, bool]:
    """(the model the task steps, whether it is a DDP wrapper): wrapped on more than one rank with ddp_wrap, when
    the task's step is wrapper-safe (Task.ddp_wrap_safe)."""
    if not (info.world_size > 1 and s["ddp_wrap"] and safe):
        return model, False
    from torch.nn.parallel import DistributedDataParallel
    sync = {"forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(
        DistributedDataParallel).parameters else "broadcast_buffers": bool(s["broadcast_buffers"])}
    dev = info.device
    return _wrapper_class()(model, device_ids=[dev] if dev.type == "cuda" else None,
                            find_unused_parameters=bool(s["find_unused_parameters"]), **sync), True


def _adversary(disc, s: dict) -> Adversary | None:
    if disc is None:
        return None
    params = [p for p in disc.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=s["disc_lr"] or s["lr"], betas=tuple(s["betas"]),
                            weight_decay=s["weight_decay"])
    return Adversary(disc, params, opt)


def _restore_optimisers(spec: RunSpec, opt, adversary: Adversary | None, ckpt: dict | None) -> None:
    """Optimiser and RNG states from the checkpoint, or a fresh per-rank random stream for the steps."""
    if ckpt is None:
        _seed_all(spec.seed * 1000 + 17 + spec.info.rank)  # per-rank stream for the training steps (dropout, noise)
        return
    with _corrupt_checkpoint(spec):
        opt.load_state_dict(ckpt["optim"])
        if adversary is not None:
            adversary.opt.load_state_dict(ckpt["disc_optim"])
        rngs = ckpt["rng"]
        set_rng_state(rngs[spec.info.rank] if len(rngs) == spec.info.world_size else rngs[0])


@contextlib.contextmanager
def _corrupt_checkpoint(spec: RunSpec):
    """A checkpoint whose states do not fit this model or optimiser is a ModelFileError naming it."""
    try:
        yield
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        raise ModelFileError(f"{checkpoint_path(spec.out_dir)}: corrupt checkpoint or another model's "
                             f"({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None


def _loader(dataset, spec: RunSpec, start_step: int) -> DataLoader:
    """Batches in an order that is a function of (seed, step) only, sharded over ranks, from start_step."""
    s, info = spec.settings, spec.info
    sampler = StepSampler(len(dataset), s["batch_size"], spec.seed, info.rank, info.world_size, start_step)
    return DataLoader(dataset, batch_size=s["batch_size"], sampler=sampler, num_workers=s["num_workers"],
                      pin_memory=info.device.type == "cuda",
                      generator=torch.Generator().manual_seed(spec.seed + start_step), persistent_workers=False)


def _provenance(spec: RunSpec, start_step: int) -> dict:
    main = spec.info.is_main
    return {"steps": start_step, "seed": spec.seed, "data_root": str(Path(spec.data_root).resolve()),
            "config_name": spec.config_name, "git_commit": _git_commit() if main else None,
            "world_size": spec.info.world_size, "task": spec.task_cls.__name__, "latentmix_version": __version__,
            "torch_version": torch.__version__}


# --------------------------------------------------------------------------- the loop

def _loop(st: TrainState) -> None:
    """Train from st.step to st.stop_at (or a signal); after each step log, validate, check the budget and
    checkpoint as the settings say."""
    bar = st.log.progress(st.total, st.start_step) if st.start_step < st.stop_at else None
    batches = iter(st.loader)
    st.model.train()
    if st.adversary is not None:
        st.adversary.model.train()
    with _StopFlag() as stop:
        while st.step < st.stop_at:
            stats = _train_step(st, _to_device(next(batches), st.info.device))
            st.step += 1
            st.window.add(stats)
            if bar is not None:
                bar.update(1)
            if _after_step(st, stop):
                break
    st.result["step"] = st.step


def _after_step(st: TrainState, stop: _StopFlag) -> bool:
    """Logging window, validation, budget check and checkpoint after a step; True when a signal stops the run."""
    s, step = st.settings, st.step
    if step % max(int(s["log_every"]), 1) == 0 or step == st.stop_at:
        _log_window(st)
    if s["val_every"] and step % int(s["val_every"]) == 0 and step < st.total:
        _validate(st)
    if st.budget is not None and step < st.stop_at and _budget_reached(st):
        st.log.info(f"wall-clock budget of {st.budget:g} s reached at step {step}")
        st.stop_at = st.total = step
        st.result["stopped_by"] = "max_seconds"
    stopping = ddp.all_reduce_max_int(stop.signum) if st.info.world_size > 1 else stop.signum
    if stopping or (s["ckpt_every"] and step % int(s["ckpt_every"]) == 0) or step == st.stop_at:
        _checkpoint(st)
    if stopping:
        name = signal.Signals(stopping).name
        st.log.info(f"interrupted at step {step} ({name}); resume with --resume")
        st.result.update(step=step, interrupted=True, signal=name)
    return bool(stopping)


def _train_step(st: TrainState, batch) -> dict:
    """One optimiser step of the model, then one of the adversary (when on); the step's scalar stats."""
    _set_lr(st)
    out = _forward(st, batch)
    stats = _model_update(st, out)
    if st.adversary is not None:
        stats.update(_adversary_step(st, out.get("out"), batch))
    return stats


def _set_lr(st: TrainState) -> None:
    s = st.settings
    st.lr_factor = lr_factor(st.step, s)
    for g in st.opt.param_groups:
        g["lr"] = s["lr"] * st.lr_factor
    if st.adversary is not None:
        for g in st.adversary.opt.param_groups:
            g["lr"] = (s["disc_lr"] or s["lr"]) * st.lr_factor


def _forward(st: TrainState, batch) -> dict:
    """The task's training_step; the adversary, if any, is passed frozen."""
    if st.adversary is None:
        return st.task.training_step(st.task_model, batch, st.step)
    disc = st.adversary.model
    disc.requires_grad_(False)  # the generator's loss must not leave grads on the adversary
    out = st.task.training_step(st.task_model, batch, st.step, disc=disc)
    disc.requires_grad_(True)
    return out


def _model_update(st: TrainState, out: dict) -> dict:
    """Backward, gradient sync (DDP, or by hand), clipping and the optimiser step; the step's stats."""
    s = st.settings
    st.opt.zero_grad(set_to_none=True)
    out["loss"].backward()
    if st.wrapped and st.step == st.start_step and not _grads_in_sync(st.params):
        st.log.info("warning: the task's step bypasses the DDP forward; averaging gradients by hand")
        st.manual_sync = True
    if st.manual_sync:
        ddp.all_reduce_grads(st.params)
    stats = _scalars(out)
    if s["grad_clip"] and s["grad_clip"] > 0:
        stats["grad_norm"] = torch.nn.utils.clip_grad_norm_(st.params, s["grad_clip"]).detach()
    st.opt.step()
    if st.manual_sync and s["broadcast_buffers"]:
        ddp.broadcast_module(st.model, buffers_only=True)
    return stats


def _adversary_step(st: TrainState, model_out, batch) -> dict:
    """One step of the adversary on the task's discriminator loss; {} while the task returns None (its
    adversary is not on yet, e.g. before train.adversarial_start): then nothing steps and nothing is logged."""
    adv = st.adversary
    d = st.task.discriminator_step(adv.model, model_out, batch, st.step)
    if d is None:
        return {}
    adv.opt.zero_grad(set_to_none=True)
    d["loss"].backward()
    ddp.all_reduce_grads(adv.params)
    if st.settings["grad_clip"] and st.settings["grad_clip"] > 0:
        d["grad_norm"] = torch.nn.utils.clip_grad_norm_(adv.params, st.settings["grad_clip"]).detach()
    adv.opt.step()
    return _scalars(d, prefix="disc/")


def _log_window(st: TrainState) -> None:
    """Log the window's means over steps and ranks (metrics.jsonl, TensorBoard, stderr); stop on a NaN loss."""
    w, lr = st.window, st.settings["lr"] * st.lr_factor
    means = ddp.all_reduce_mean({k: float(v) / w.n for k, v in w.sums.items()})
    rate = w.n / max(time.time() - w.t, 1e-9)
    st.log.record(st.step, {**means, "lr": lr, "steps_per_s": rate})
    st.log.info(format_line(st.step, st.total, means, lr, rate))
    st.result.update(means)
    if not math.isfinite(means.get("loss", 0.0)):
        raise LatentmixError(f"loss became {means['loss']} at step {st.step}; lower train.lr or "
                             f"resume from the last checkpoint with other settings")
    st.window = Window()


def _validate(st: TrainState) -> None:
    """Rank 0 validates (without moving the training random streams), logs, and exports best.safetensors
    when the 'score' improves; the other ranks wait."""
    if not hasattr(st.task, "validate"):
        return
    if st.info.is_main:
        vals = _validation_metrics(st)
        st.log.record(st.step, vals, kind="val")
        st.log.info(f"val step {st.step}: " + "  ".join(f"{k} {v:.4g}" for k, v in sorted(vals.items())))
        st.result.update({k if k.startswith("val/") else f"val/{k}": v for k, v in vals.items()})
        score = vals.get("score")
        if score is not None and math.isfinite(score) and (st.best is None or score > st.best):
            st.best = score
            st.task.export(st.model, st.spec.out_dir / "best.safetensors",
                           {**st.provenance, "steps": st.step, "score": st.best})
    ddp.barrier()


def _validation_metrics(st: TrainState) -> dict:
    rng = get_rng_state()  # validation must not move the training random streams
    st.model.eval()
    with torch.no_grad():
        vals = {k: float(v) for k, v in (st.task.validate(st.model, int(st.settings["val_items"])) or {}).items()}
    st.model.train()
    set_rng_state(rng)
    return vals


def _checkpoint(st: TrainState) -> None:
    """Every rank's RNG state is gathered; rank 0 writes model, optimisers, adversary and RNGs atomically."""
    rngs = ddp.all_gather_objects(get_rng_state())
    if not st.info.is_main:
        return
    s, adv, world = st.settings, st.adversary, st.info.world_size
    state = {"model": st.model.state_dict(), "optim": st.opt.state_dict(), "rng": rngs,
             "disc": adv.model.state_dict() if adv is not None else None,
             "disc_optim": adv.opt.state_dict() if adv is not None else None}
    meta = {"step": st.step, "seed": st.spec.seed, "config": st.spec.config, "world_size": world,
            "best_score": st.best,
            "sampler": {"consumed": st.step * s["batch_size"] * world, "batch_size": s["batch_size"]},
            "schedule": {k: s[k] for k in ("lr_schedule", "lr", "warmup_steps", "lr_decay", "lr_min_ratio")},
            "elapsed": st.elapsed()}
    save_checkpoint(checkpoint_path(st.spec.out_dir), state, meta)


def _budget_reached(st: TrainState) -> bool:
    """Whether the run, all legs together, has used train.max_seconds (on any rank)."""
    over = int(st.elapsed() >= st.budget)
    return bool(ddp.all_reduce_max_int(over) if st.info.world_size > 1 else over)


def _export(st: TrainState) -> None:
    """A finished run (train.steps or the budget): a last validation, then rank 0 writes model.safetensors."""
    _validate(st)
    if st.info.is_main:
        out = st.spec.out_dir / "model.safetensors"
        prov = {**st.provenance, "steps": st.step, "wall_time_s": round(st.elapsed(), 2),  # all legs
                "best_score": st.best, "stopped_by": st.result.get("stopped_by", "steps")}
        st.task.export(st.model, out, prov)
        st.log.info(f"trained {st.step} steps in {time.time() - st.t0:.1f} s; model: {out}")
    ddp.barrier()
