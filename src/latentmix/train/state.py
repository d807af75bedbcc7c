"""Training state that resume restores exactly: pickle-free checkpoints (nested optimizer/RNG state flattened
to tensors + JSON), and the two things that are pure functions of (seed, step): data order and learning rate.

`out_dir/checkpoint.safetensors` is written to a temporary file, fsynced and renamed over the old one, so a kill
at any moment leaves the last good checkpoint.
"""
from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import Sampler

from .. import __version__
from ..fileio import atomic_path
from ..errors import InputError, ModelFileError
from ..validation import CheckpointHeader, validate

CHECKPOINT_NAME = "checkpoint.safetensors"
CHECKPOINT_KIND = "training_checkpoint"
CHECKPOINT_VERSION = 1


# --------------------------------------------------------------------------- flatten / unflatten

def flatten_state(obj, prefix: str = "") -> tuple[dict[str, torch.Tensor], object]:
    """Split a nested state (dicts with str/int keys, lists, tuples, tensors, numpy arrays, JSON scalars)
    into (tensors, structure): tensors maps unique names to CPU tensors, structure is JSON-serialisable.

    Encoding: tensor -> {"T": name}; ndarray -> {"N": name, "dtype": str}; dict -> {"D": [[key, value], ...]}
    (int keys stay ints); list -> {"L": [...]}; tuple -> {"U": [...]}; None/bool/int/float/str as themselves.
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(x, path):
        if isinstance(x, torch.Tensor):
            name = f"{len(tensors):05d}:{path}"
            tensors[name] = x.detach().cpu().clone().contiguous()  # clone: safetensors refuses shared storage
            return {"T": name}
        if isinstance(x, np.ndarray):
            name = f"{len(tensors):05d}:{path}"
            arr = x.astype(np.int64) if x.dtype.kind in "ui" else x
            tensors[name] = torch.from_numpy(np.ascontiguousarray(arr)).clone()
            return {"N": name, "dtype": str(x.dtype)}
        if isinstance(x, dict):
            items = []
            for k, v in x.items():
                if not isinstance(k, (str, int)) or isinstance(k, bool):
                    raise TypeError(f"flatten_state: key {k!r} at '{path}' is not str or int")
                items.append([k, walk(v, f"{path}/{k}")])
            return {"D": items}
        if isinstance(x, list):
            return {"L": [walk(v, f"{path}/{i}") for i, v in enumerate(x)]}
        if isinstance(x, tuple):
            return {"U": [walk(v, f"{path}/{i}") for i, v in enumerate(x)]}
        if isinstance(x, np.generic):
            return x.item()
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        raise TypeError(f"flatten_state: cannot store {type(x).__name__} at '{path}'")

    structure = walk(obj, prefix)
    return tensors, structure


def unflatten_state(tensors: dict[str, torch.Tensor], structure):
    """Inverse of flatten_state: rebuild the nested object from its tensors and JSON structure."""
    if isinstance(structure, dict):
        if "T" in structure:
            return tensors[structure["T"]]
        if "N" in structure:
            return tensors[structure["N"]].numpy().astype(np.dtype(structure["dtype"]))
        if "D" in structure:
            return {k: unflatten_state(tensors, v) for k, v in structure["D"]}
        if "L" in structure:
            return [unflatten_state(tensors, v) for v in structure["L"]]
        if "U" in structure:
            return tuple(unflatten_state(tensors, v) for v in structure["U"])
        raise ValueError(f"unflatten_state: unknown node {sorted(structure)}")
    return structure


# --------------------------------------------------------------------------- RNG states

def get_rng_state() -> dict:
    """The state of every random generator a training step may draw from (torch, CUDA, numpy, python)."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


# --------------------------------------------------------------------------- checkpoint files

def checkpoint_path(out_dir) -> Path:
    return Path(out_dir) / CHECKPOINT_NAME


def save_checkpoint(path, state: dict, meta: dict) -> None:
    """Atomically write `state` (nested, tensors inside) and `meta` (JSON) to a safetensors checkpoint."""
    tensors, structure = flatten_state(state)
    header = {"kind": CHECKPOINT_KIND, "format_version": CHECKPOINT_VERSION, "latentmix_version": __version__,
              "meta": meta, "structure": structure}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"latentmix": json.dumps(header)})
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())


def load_checkpoint(path) -> tuple[dict, dict]:
    """(meta, state) of a training checkpoint; InputError if missing, ModelFileError naming the file if corrupt:
    a header that fails validation.CheckpointHeader, a tensor its structure names but the file lacks, or RNG
    states of the wrong size (checked here, before any of it is restored)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no training checkpoint to resume from (start without --resume)")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = json.loads((f.metadata() or {})["latentmix"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise ModelFileError(f"{path}: not a readable training checkpoint ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(header, dict) or header.get("kind") != CHECKPOINT_KIND:
        kind = header.get("kind") if isinstance(header, dict) else type(header).__name__
        raise ModelFileError(f"{path}: is a '{kind}' file, expected a training checkpoint")
    version = header.get("format_version")
    if isinstance(version, int) and version > CHECKPOINT_VERSION:
        raise ModelFileError(f"{path}: checkpoint format {version} is newer than this "
                             f"latentmix supports ({CHECKPOINT_VERSION})")
    validate(CheckpointHeader, header, f"{path}: checkpoint header", ModelFileError)
    try:
        state = unflatten_state(tensors, header["structure"])
    except (KeyError, ValueError, TypeError, IndexError, AttributeError, RecursionError) as e:
        raise ModelFileError(f"{path}: corrupt checkpoint (its structure names a missing or bad entry: "
                             f"{str(e)[:80]})") from None
    if not isinstance(state, dict) or not {"model", "optim", "rng"} <= set(state):
        raise ModelFileError(f"{path}: corrupt checkpoint (model, optimiser or RNG state missing)")
    for rng in state["rng"] if isinstance(state["rng"], list) else [None]:
        check_rng_state(rng, path)
    return header["meta"], state


def check_rng_state(state, path) -> None:
    """ModelFileError unless `state` is a get_rng_state() dict of this machine's sizes (torch, numpy, python)."""
    def ok():
        if not isinstance(state, dict):
            return False
        t, n, py = state.get("torch"), state.get("numpy"), state.get("python")
        return (isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.numel() == _TORCH_RNG_BYTES
                and isinstance(n, tuple) and len(n) == 5 and n[0] == "MT19937"
                and isinstance(n[1], np.ndarray) and n[1].shape == (624,)
                and isinstance(py, tuple) and len(py) == 3 and isinstance(py[1], (tuple, list)) and len(py[1]) == 625
                and all(isinstance(v, int) for v in py[1]))
    if not ok():
        raise ModelFileError(f"{path}: corrupt checkpoint (a random generator state of the wrong size or type)")


_TORCH_RNG_BYTES = torch.get_rng_state().numel()


def remove_stale_temps(out_dir) -> None:
    """Delete temporary files a killed run may have left next to its checkpoint."""
    for p in Path(out_dir).glob(f".{CHECKPOINT_NAME}.*.tmp"):
        try:
            p.unlink()
        except OSError:
            pass


# --------------------------------------------------------------------------- data order and LR by step

class StepSampler(Sampler):
    """Infinite, sharded, resumable index stream: a function of (seed, step) only.

    The global stream concatenates epoch permutations (epoch e shuffled by a generator seeded from (seed, e));
    at step s, rank r takes stream positions [(s*W + r)*B, (s*W + r + 1)*B). Starting at `start_step` skips
    exactly what earlier steps consumed, so a resumed run sees the same batches as an uninterrupted one.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 start_step: int = 0):
        self.n, self.batch_size, self.seed = int(n), int(batch_size), int(seed)
        self.rank, self.world_size, self.start_step = int(rank), int(world_size), int(start_step)
        self._epoch, self._perm = None, None

    def permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            key = int(np.random.SeedSequence([self.seed, epoch]).generate_state(1, np.uint64)[0]) >> 1
            self._perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(key))
            self._epoch = epoch
        return self._perm

    def indices(self, step: int) -> list[int]:
        """The dataset indices rank `rank` reads at `step`."""
        start = (step * self.world_size + self.rank) * self.batch_size
        return [int(self.permutation(p // self.n)[p % self.n]) for p in range(start, start + self.batch_size)]

    def __iter__(self):
        step = self.start_step
        while True:
            yield from self.indices(step)
            step += 1

    def __len__(self):  # infinite; DataLoader only needs a number for its progress hints
        return 2**62


def lr_factor(step: int, s: dict) -> float:
    """Multiplier of the base LR at `step` (0-based): linear warmup over warmup_steps, then constant,
    cosine down to lr_min_ratio at train.steps, or exponential lr_decay**(step - warmup)."""
    warm = int(s.get("warmup_steps") or 0)
    if step < warm:
        return (step + 1) / warm
    k = step - warm
    kind = s.get("lr_schedule", "constant")
    if kind == "cosine":
        span = max(int(s["steps"]) - warm, 1)
        lo = float(s.get("lr_min_ratio") or 0.0)
        return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * min(k / span, 1.0)))
    if kind == "exponential":
        return float(s.get("lr_decay", 1.0)) ** k
    return 1.0
