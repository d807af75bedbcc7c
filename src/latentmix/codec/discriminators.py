"""Adversarial critics of the codec: multi-scale STFT discriminator (EnCodec) and multi-period (HiFi-GAN).

Hinge losses throughout: D minimises relu(1 - D(real)) + relu(1 + D(fake)); G minimises relu(1 - D(fake)), plus
L1 feature matching normalised by the real features' mean magnitude. Audio: (B, 1, T).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from ..audio import stft


def _conv2d(c_in: int, c_out: int, kernel, stride, dilation=(1, 1)) -> nn.Module:
    pad = ((kernel[0] - 1) * dilation[0] // 2, (kernel[1] - 1) * dilation[1] // 2)
    return weight_norm(nn.Conv2d(c_in, c_out, kernel, stride, dilation=dilation, padding=pad))


class STFTDiscriminator(nn.Module):
    """2-D conv stack on the (real, imag) STFT at one resolution -> (logits, feature maps)."""

    def __init__(self, n_fft: int, channels: int = 32):
        super().__init__()
        self.n_fft = n_fft
        c = channels
        conv = _conv2d
        self.convs = nn.ModuleList([conv(2, c, (3, 9), (1, 1)), conv(c, c, (3, 9), (1, 2), (1, 1)),
                                    conv(c, c, (3, 9), (1, 2), (2, 1)), conv(c, c, (3, 9), (1, 2), (4, 1)),
                                    conv(c, c, (3, 3), (1, 1))])
        self.out = conv(c, 1, (3, 3), (1, 1))

    def forward(self, x: torch.Tensor):
        spec = stft(x[:, 0], self.n_fft, self.n_fft // 4)          # (B, freq, frames)
        h = torch.stack([spec.real, spec.imag], 1).transpose(2, 3)  # (B, 2, frames, freq)
        feats = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
            feats.append(h)
        return self.out(h), feats


class MultiScaleSTFTDiscriminator(nn.Module):
    def __init__(self, n_ffts=(1024, 512, 256), channels: int = 32):
        super().__init__()
        self.discs = nn.ModuleList(STFTDiscriminator(n, channels) for n in n_ffts)

    def forward(self, x):
        return [d(x) for d in self.discs]


class PeriodDiscriminator(nn.Module):
    """Reshape (B, 1, T) to (B, 1, T/p, p) and run 2-D convs along time (HiFi-GAN)."""

    def __init__(self, period: int, channels: int = 32):
        super().__init__()
        self.period = period
        chans = [1, channels, channels * 2, channels * 4, channels * 4]
        self.convs = nn.ModuleList(weight_norm(nn.Conv2d(chans[i], chans[i + 1], (5, 1), (3 if i < 3 else 1, 1),
                                                         padding=(2, 0))) for i in range(4))
        self.out = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, x):
        b, c, t = x.shape
        x = F.pad(x, (0, (-t) % self.period), mode="reflect" if t > self.period else "constant")
        h = x.view(b, c, -1, self.period)
        feats = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
            feats.append(h)
        return self.out(h), feats


class MultiPeriodDiscriminator(nn.Module):
    def __init__(self, periods=(2, 3, 5, 7, 11), channels: int = 32):
        super().__init__()
        self.discs = nn.ModuleList(PeriodDiscriminator(p, channels) for p in periods)

    def forward(self, x):
        return [d(x) for d in self.discs]


class CodecDiscriminator(nn.Module):
    """MS-STFT + MPD. forward(x (B, 1, T), part=None) -> list of (logits, [feature maps]) over the
    sub-discriminators of `part`: None (all), "msstft" or "mpd" (one discriminator per step, seed 002)."""

    PARTS = ("msstft", "mpd")

    def __init__(self, n_ffts=(1024, 512, 256), periods=(2, 3, 5, 7, 11), channels: int = 32):
        super().__init__()
        self.msstft = MultiScaleSTFTDiscriminator(n_ffts, channels)
        self.mpd = MultiPeriodDiscriminator(periods, channels)

    def forward(self, x, part: str | None = None):
        if part is None:
            return self.msstft(x) + self.mpd(x)
        if part not in self.PARTS:
            raise ValueError(f"unknown discriminator part '{part}' ({', '.join(self.PARTS)})")
        return getattr(self, part)(x)


def schedule_part(schedule: str, step: int) -> str | None:
    """The discriminator a training step uses: None (all of them) for schedule "all"; for "alternate", MS-STFT on
    even steps and MPD on odd ones (both the generator's adversarial terms and the discriminator's update)."""
    if schedule == "all":
        return None
    if schedule == "alternate":
        return CodecDiscriminator.PARTS[step % 2]
    raise ValueError(f"unknown discriminator schedule '{schedule}' (all or alternate)")


def discriminator_loss(real_outs, fake_outs) -> torch.Tensor:
    """Hinge loss for D: mean over sub-discriminators of relu(1 - real) + relu(1 + fake)."""
    loss = 0.0
    for (r, _), (f, _) in zip(real_outs, fake_outs):
        loss = loss + F.relu(1 - r).mean() + F.relu(1 + f).mean()
    return loss / len(real_outs)


def generator_adv_loss(fake_outs) -> torch.Tensor:
    """Hinge loss for G: mean over sub-discriminators of relu(1 - D(fake))."""
    return sum(F.relu(1 - f).mean() for f, _ in fake_outs) / len(fake_outs)


def feature_matching_loss(real_outs, fake_outs) -> torch.Tensor:
    """Mean L1 between real (detached) and fake feature maps, each normalised by the real map's mean |.|."""
    loss, n = 0.0, 0
    for (_, rf), (_, ff) in zip(real_outs, fake_outs):
        for r, f in zip(rf, ff):
            r = r.detach()
            loss = loss + F.l1_loss(f, r) / (r.abs().mean() + 1e-6)
            n += 1
    return loss / max(n, 1)
