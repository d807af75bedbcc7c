"""The Task protocol: what the one training loop (train/loop.py) needs from a model family.

Every trainable model (tasks/codec.py, tasks/separator.py, a future prior, the test's toy task) subclasses Task,
or just matches its method names. The loop owns optimisers, DDP, checkpoints, resume, logging and the budget; a
Task owns its model, data, losses, validation and export. Models never import the train package.
"""
from __future__ import annotations

import torch
from torch import nn


class Task:
    """What the training loop needs from a model family. Subclass it (or just match the method names).

    config is the resolved YAML ({'model': {...}, 'train': {...}}), data_root the data folder, seed the run seed.
    Required: build_model, train_dataset, training_step. With train.adversarial: build_discriminator and
    discriminator_step. Optional: validate (a 'score' picks best.safetensors) and export.
    """

    def __init__(self, config: dict, data_root: str, seed: int):
        self.config, self.data_root, self.seed = config, data_root, seed

    def build_model(self) -> nn.Module:
        """The main model (a ModelIO subclass, so that export can call .save)."""
        raise NotImplementedError

    def build_discriminator(self) -> nn.Module | None:
        """An optional adversary, trained with its own AdamW when train.adversarial is true."""
        return None

    def train_dataset(self) -> torch.utils.data.Dataset:
        """A map-style dataset whose items are tensors or tuples of tensors."""
        raise NotImplementedError

    def training_step(self, model, batch, step: int, disc=None) -> dict:
        """{'loss': scalar tensor to minimise, other named losses/stats (floats or 0-dim tensors),
        optionally 'out': whatever discriminator_step needs}. Run the forward as `model(...)`: under DDP
        `model` is the DistributedDataParallel wrapper (the loop falls back to hand-averaged gradients if not).
        `disc` (adversarial runs only) has requires_grad off here: the generator's loss leaves it no gradients."""
        raise NotImplementedError

    # False when training_step runs parameters outside the one `model(...)` forward (e.g. the codec's linearity
    # loss through the bare module): a DistributedDataParallel wrapper would then see gradients it did not expect
    # ("marked ready twice"), so the loop averages gradients by hand instead.
    ddp_wrap_safe: bool = True

    def discriminator_step(self, disc, model_out, batch, step: int = 0) -> dict | None:
        """{"loss": the adversary's loss, ...}, or None while it is off (before a start step such as
        train.adversarial_start: the adversary then neither steps nor logs); model_out is training_step's
        "out" (detach it here)."""
        raise NotImplementedError

    def validate(self, model, max_items: int) -> dict:
        """Validation metrics as floats; a 'score' key (higher is better) selects best.safetensors."""
        return {}

    def export(self, model, path, provenance: dict) -> None:
        """Write the trained model file (default: model.save(path, provenance))."""
        model.save(path, provenance)
