"""Distributed data parallel helpers: process-group setup from torchrun's environment, rank queries, reductions.

`run_local_ddp(fn, world_size)` spawns ranks on 127.0.0.1 with gloo, so DDP code is testable on a CPU laptop.
"""
from __future__ import annotations

import datetime
import os
import socket
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from ..device import pick_device


@dataclass
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool  # True when setup_distributed created the process group (and cleanup should end it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str = "auto", timeout_s: float | None = None) -> DistInfo:
    """Join the process group described by RANK/WORLD_SIZE/LOCAL_RANK (torchrun), or reuse one already set up.

    Backend: nccl when the chosen device is CUDA, gloo otherwise. Without those variables: a single process.
    `timeout_s` bounds collectives (torch's default, 30 min for gloo, when None): batch inference, whose ranks may
    finish hours apart, waits at its final barrier longer.
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
        return DistInfo(rank, world, local, pick_device(device, local), owns_group=False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(0, 1, 0, pick_device(device, 0), owns_group=False)
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    dev = pick_device(device, local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    extra = {} if timeout_s is None else {"timeout": datetime.timedelta(seconds=timeout_s)}
    dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world, **extra)
    return DistInfo(rank, world, local, dev, owns_group=True)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def _comm_device() -> torch.device:
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(values: dict) -> dict[str, float]:
    """Mean over ranks of a dict of floats / scalar tensors (same keys on every rank) -> dict of floats."""
    keys = sorted(values)
    if not keys:
        return {}
    vec = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_comm_device())
    if is_distributed():
        dist.all_reduce(vec)
        vec /= dist.get_world_size()
    return dict(zip(keys, vec.cpu().tolist()))


def all_reduce_max_int(value: int) -> int:
    """Maximum of an integer over ranks (used to agree on stop requests)."""
    if not is_distributed():
        return int(value)
    t = torch.tensor([int(value)], dtype=torch.int64, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def all_close(value: float, rtol: float = 1e-9) -> bool:
    """True when `value` is (nearly) the same on every rank."""
    if not is_distributed():
        return True
    t = torch.tensor([float(value), -float(value)], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    hi, lo = t[0].item(), -t[1].item()
    return abs(hi - lo) <= rtol * max(1.0, abs(hi))


def all_reduce_grads(params) -> None:
    """Average .grad over ranks in place, flattened per dtype/device into one buffer (one call per group).

    A parameter without a gradient on this rank (a level quantizer dropout skipped here but maybe not on another
    rank) gets zeros first, so every rank reduces buffers of the same layout and ends with the same gradients."""
    if not is_distributed():
        return
    world = dist.get_world_size()
    groups: dict = {}
    for p in params:
        if p.grad is None and p.requires_grad:
            p.grad = torch.zeros_like(p)
        if p.grad is not None:
            groups.setdefault((p.grad.dtype, p.grad.device), []).append(p.grad)
    for grads in groups.values():
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= world
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()


def broadcast_module(module: torch.nn.Module, src: int = 0, buffers_only: bool = False) -> None:
    """Copy parameters (and buffers) of rank `src` to every rank."""
    if not is_distributed():
        return
    tensors = list(module.buffers()) if buffers_only else list(module.parameters()) + list(module.buffers())
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t.data, src)


def all_gather_objects(obj) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every rank (in-memory exchange between our own processes)."""
    if not is_distributed():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def cleanup(info: DistInfo | None = None, barrier: bool = True) -> None:
    """Barrier and destroy the process group (only the one setup_distributed created, when info is given)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    if info is not None and not info.owns_group:
        return
    if barrier:
        dist.barrier()
    dist.destroy_process_group()


# --------------------------------------------------------------------------- local multi-process runner

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _to_numpy(x):
    if isinstance(x, torch.Tensor):
        return ("__tensor__", x.detach().cpu().numpy().copy())
    if isinstance(x, dict):
        return {k: _to_numpy(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_to_numpy(v) for v in x)
    return x


def _from_numpy(x):
    if isinstance(x, tuple) and len(x) == 2 and x[0] == "__tensor__" and isinstance(x[1], np.ndarray):
        return torch.from_numpy(x[1])
    if isinstance(x, dict):
        return {k: _from_numpy(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_from_numpy(v) for v in x)
    return x


def _worker(local_rank, fn, world, port, args, queue):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(local_rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(local_rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=local_rank, world_size=world)
    try:
        result = fn(local_rank, world, *args)
        queue.put((local_rank, _to_numpy(result)))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def run_local_ddp(fn, world_size: int = 2, *args) -> list:
    """Run `fn(rank, world_size, *args)` in `world_size` spawned processes joined by gloo on 127.0.0.1.

    `fn` must be importable (module level). Returns the ranks' return values in rank order (tensors come back
    as CPU tensors). A failing rank raises in the caller.
    """
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    procs = mp.start_processes(_worker, args=(fn, world_size, free_port(), args, queue), nprocs=world_size,
                               join=False, start_method="spawn")
    results: dict = {}
    done = False
    while len(results) < world_size:
        while not queue.empty():
            r, v = queue.get()
            results[r] = _from_numpy(v)
        if done:
            break
        done = procs.join(timeout=0.05)
    while not done:
        done = procs.join(timeout=0.05)
    return [results.get(r) for r in range(world_size)]
