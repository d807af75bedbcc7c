"""The one rule for choosing a torch device, used by training (train/ddp.py) and inference (the CLIs, separation).

Ground floor: imports torch and latentmix.errors only.
"""
from __future__ import annotations

import torch

from .errors import ConfigError


def pick_device(device: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """'auto' -> a GPU when CUDA is available, else the CPU; 'cuda' -> the local rank's GPU; 'cpu', 'cuda:N' (and
    any other device torch knows) as given. ConfigError for an unknown name or CUDA on a machine without it."""
    name = str(device)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device '{device}' (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: CUDA is not available on this machine")
        if dev.index is None:
            dev = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    return dev


def resolve_device(device: str = "auto") -> str:
    """pick_device(device) as a string ('cpu', 'cuda:0'), for command lines, logs and JSON reports."""
    return str(pick_device(device))
