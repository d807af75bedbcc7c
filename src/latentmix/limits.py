"""Limits derived from the machine: how much memory a read, a segment or a chunk may take before latentmix says
no with one clear line instead of being killed by the kernel's OOM killer.

The figure is the memory available now (MemAvailable, or the cgroup's limit minus its usage when that is lower),
read from /proc and /sys; psutil is not needed for two numbers. Elsewhere (no /proc) nothing is refused.
Ground floor, like fileio: it imports latentmix.errors only, so audio.py may use it.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError

USABLE = 0.8                    # of the available memory one command may plan to use


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory() -> int | None:
    """Bytes of memory this process can still use (None when the system does not say)."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    limit, used = _read_int("/sys/fs/cgroup/memory.max"), _read_int("/sys/fs/cgroup/memory.current")
    if limit is not None and used is not None:
        avail = limit - used if avail is None else min(avail, limit - used)
    override = os.environ.get("LATENTMIX_MEMORY_LIMIT")       # tests and shared machines: a smaller budget
    if override and override.isdigit():
        avail = int(override) if avail is None else min(avail, int(override))
    return avail


def gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB"


def check_memory(need: int, what: str, hint: str, error=ConfigError) -> None:
    """`error("<what> needs ~X GB, this machine has Y GB available; <hint>")` when `need` bytes exceed the usable
    share of the available memory."""
    avail = available_memory()
    if avail is not None and need > USABLE * avail:
        raise error(f"{what} needs ~{gb(need)}, this machine has {gb(avail)} available; {hint}")
