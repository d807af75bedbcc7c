"""Shared pytest fixtures: a tiny synthetic MSDM dataset built once per session through the Python API."""
from __future__ import annotations

import sys
from pathlib import Path

# Test this checkout's code, whatever latentmix an editable install elsewhere points to (git worktrees).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import pytest  # noqa: E402
import torch  # noqa: E402

# One torch thread for the whole session: the tests are small (threads cost more than they give), and this
# torch/MKL build fails batched float64 solves (fast_bss_eval) after the thread count goes 1 -> 2 within a
# process, which per-test set/restore fixtures would otherwise do.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """Root Path of a 6-track x 4 s MSDM dataset (train 4, validation 1, test 1), seed 0, 22050 Hz float WAVs."""
    from latentmix.data.build import synth_dataset
    root = tmp_path_factory.mktemp("tiny_dataset")
    return synth_dataset(root, tracks=6, seconds=4.0, seed=0, progress=False)
