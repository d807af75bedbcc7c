"""Limits derived from the machine: how much memory a read, a segment or a chunk may take before latentmix says
no with one clear line instead of being killed by the kernel's OOM killer.

The figure is the memory available now (MemAvailable, or the cgroup's limit minus its usage when that is lower),
read from /proc and /sys; psutil is not needed for two numbers. Elsewhere (no /proc) nothing is refused.
keep_freed_memory: the allocator setting the `latentmix` command starts with (separation 13-19 % faster).
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


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 1 << 30) -> bool:
    """Make glibc's malloc keep freed memory in the heap for reuse instead of handing it back to the system.

    By default glibc serves an allocation above a threshold (128 KB, rising up to 32 MB as large blocks are freed)
    with a fresh mmap and gives the top of the heap back on free, so the activation tensors of a CPU forward pass
    (tens of MB for a few seconds of audio) are page-faulted in anew, call after call; keeping them made
    separation 13-19 % faster on 2 threads (benchmarks/RESULTS.md, separator-allocator). This sets both thresholds:
    an allocation up to `mmap_threshold` (glibc's largest) comes from the heap, and up to `trim_threshold` of free
    heap is kept, as MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ would. The cost: the process keeps up to its
    peak memory until it exits. The `latentmix` command and the benchmarks call this at start;
    LATENTMIX_MALLOC=system turns it off. True when applied; False elsewhere (no glibc, or turned off).
    """
    import ctypes
    import sys
    if os.environ.get("LATENTMIX_MALLOC", "").lower() == "system" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):           # musl and other libcs without mallopt
        return False
    # both or neither: either one alone ends glibc's dynamic thresholds and ran slower than the default (a trim
    # threshold alone 2x slower); the mmap threshold, which glibc may refuse, goes first
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) and mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))
