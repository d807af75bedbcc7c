"""Training: the Task protocol every trainable model implements, and the one loop (`train`) that runs it.

Tasks (tasks/codec.py CodecTask, tasks/separator.py SeparatorTask, tasks/prior.py PriorTask) subclass
tasks/base.py's Task and know their model and losses; the loop in loop.py owns optimisers, DDP, checkpoints,
resume and logging. Models never import this package.
"""
from __future__ import annotations

from .tasks.base import Task


def train(*args, **kwargs):
    """See latentmix.train.loop.train."""
    from .loop import train as _train
    return _train(*args, **kwargs)


__all__ = ["Task", "train"]
