"""Built-in Slakh-like data (composer, procedural and SoundFont renderers, dataset builder) and dataset loaders.

Import the submodules directly (`latentmix.data.datasets`, `.build`, ...); the names below are the main entry points.
"""
from .composer import Note, Song, compose  # noqa: F401

__all__ = ["Note", "Song", "compose"]
