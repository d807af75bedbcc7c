"""A tiny Task for the training-loop tests: a two-layer regressor on synthetic tensors, an optional adversary (off
before train.adversarial_start, as the codec's), random draws from torch/numpy/python in every step (to prove RNG
restore) and an EMA buffer all-reduced over ranks.
"""
from __future__ import annotations

import random
import time

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from latentmix.checkpoint import ModelIO
from latentmix.train import Task


def toy_config(**train) -> dict:
    t = dict(steps=6, batch_size=4, lr=1e-2, log_every=2, val_every=3, val_items=8, ckpt_every=3,
             tensorboard=False, adversarial=False)
    t.update(train)
    return {"model": {"dim": 8, "hidden": 16, "out": 4}, "train": t}


class ToyModel(nn.Module, ModelIO):
    """x (batch, dim) -> y (batch, out); `ema` mimics a codebook's EMA statistics (identical on all ranks)."""

    KIND = "toy"

    def __init__(self, dim=8, hidden=16, out=4):
        super().__init__()
        self.config = {"dim": dim, "hidden": hidden, "out": out}
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Dropout(0.1), nn.Linear(hidden, out))
        self.register_buffer("ema", torch.zeros(hidden))

    def forward(self, x):
        h = torch.tanh(self.net[0](x))
        if self.training:
            with torch.no_grad():
                stat = h.mean(0)
                if dist.is_available() and dist.is_initialized():
                    dist.all_reduce(stat)
                    stat /= dist.get_world_size()
                self.ema.mul_(0.9).add_(0.1 * stat)
        return self.net[3](self.net[2](h))


class ToyDisc(nn.Module):
    def __init__(self, out=4):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(out, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))

    def forward(self, y):
        return self.net(y)


class ToyDataset(torch.utils.data.Dataset):
    def __init__(self, n=40, dim=8, out=4, seed=0):
        w = torch.randn(dim, out, generator=torch.Generator().manual_seed(99))
        self.x = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))
        self.y = torch.tanh(self.x @ w)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


class ToyTask(Task):
    def __init__(self, config, data_root, seed):
        super().__init__(config, data_root, seed)
        self.sleep = float((config.get("toy") or {}).get("sleep", 0.0))
        self.adversarial_start = int((config.get("train") or {}).get("adversarial_start", 0) or 0)

    def build_model(self):
        return ToyModel(**self.config["model"])

    def build_discriminator(self):
        return ToyDisc(self.config["model"]["out"])

    def train_dataset(self):
        return ToyDataset(dim=self.config["model"]["dim"], out=self.config["model"]["out"])

    def training_step(self, model, batch, step, disc=None):
        if self.sleep:
            time.sleep(self.sleep)
        x, y = batch
        if step < self.adversarial_start:
            disc = None
        x = x + 0.01 * torch.randn_like(x) + 0.001 * float(np.random.rand()) + 0.001 * random.random()
        pred = model(x)
        mse = torch.mean((pred - y) ** 2)
        loss = mse
        out = {"mse": mse.detach(), "out": pred}
        if disc is not None:
            adv = torch.mean(torch.relu(1 - disc(pred)))
            loss = loss + 0.01 * adv
            out["adv"] = adv.detach()
        out["loss"] = loss
        return out

    def discriminator_step(self, disc, model_out, batch, step=0):
        if step < self.adversarial_start:
            return None  # the adversary is not on yet: the loop neither steps nor logs it
        _, y = batch
        fake = disc(model_out.detach())
        real = disc(y)
        loss = torch.mean(torch.relu(1 + fake)) + torch.mean(torch.relu(1 - real))
        return {"loss": loss}

    def validate(self, model, max_items):
        ds = ToyDataset(n=max_items, seed=123, dim=self.config["model"]["dim"], out=self.config["model"]["out"])
        mse = float(torch.mean((model(ds.x) - ds.y) ** 2))
        return {"mse": mse, "score": -mse}


def params_of(model_or_path) -> dict:
    """Parameters and buffers of a model, or of a model file, as {name: tensor}."""
    if isinstance(model_or_path, nn.Module):
        return {k: v.detach().clone() for k, v in model_or_path.state_dict().items()}
    return dict(ToyModel.load(model_or_path).state_dict())
