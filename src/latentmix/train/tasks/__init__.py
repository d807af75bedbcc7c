"""Training tasks, one module each: codec.CodecTask, separator.SeparatorTask, prior.PriorTask (all subclass
base.Task).

The task modules are imported by name (loop.TASKS), not here: a task pulls in its model family's code.
"""
from .base import Task

__all__ = ["Task"]
