"""latentmix.limits.keep_freed_memory: freed blocks stay in the process (no page faults on the next forward pass)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from latentmix.limits import keep_freed_memory

# A child process mallocs and touches 20 MB, frees it, and prints how much of it is still resident (kB). Under
# glibc's defaults the block is an mmap that free() unmaps; with keep_freed_memory() it comes from the heap and
# stays there for the next allocation.
CHILD = r"""
import ctypes, sys
from latentmix.limits import keep_freed_memory
applied = keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

before = rss_kb()
p = libc.malloc(20 << 20)
ctypes.memset(p, 1, 20 << 20)
libc.free(p)
print(int(applied), rss_kb() - before)
"""


def glibc() -> bool:
    import platform
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def run_child(env_extra: dict) -> tuple[bool, int]:
    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    applied, kept_kb = out.stdout.split()
    return applied == "1", int(kept_kb)


@pytest.mark.skipif(not glibc(), reason="keep_freed_memory sets glibc's malloc; this libc is not glibc")
def test_freed_memory_stays_in_the_process_only_when_applied():
    applied, kept = run_child({"LATENTMIX_MALLOC": ""})
    assert applied and kept > 15 * 1024                 # the 20 MB block is still resident after free()
    applied, kept = run_child({"LATENTMIX_MALLOC": "system"})
    assert not applied and kept < 5 * 1024              # glibc's default: unmapped on free()


def test_turned_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("LATENTMIX_MALLOC", "system")
    assert keep_freed_memory() is False
