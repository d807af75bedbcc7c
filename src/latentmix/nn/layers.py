"""Small shared convolutional blocks of the SEANet/DAC family: weight-normed convs, Snake, residual units.

Every conv pads explicitly (causal: all on the left; otherwise split), so a signal whose length is a multiple of
the hop keeps exact frame alignment, which chunked encoding relies on. Shapes: (batch, channels, time).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

__all__ = ["Conv1d", "ConvTranspose1d", "Snake1d", "make_activation", "ResidualUnit", "EncoderBlock",
           "DecoderBlock", "ConvNeXtBlock"]


class Conv1d(nn.Module):
    """Weight-normed Conv1d with explicit zero padding: output length = ceil(T / stride) for T % stride == 0.

    x: (B, C_in, T) -> (B, C_out, T // stride).
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1,
                 causal: bool = False, bias: bool = True):
        super().__init__()
        self.conv = weight_norm(nn.Conv1d(c_in, c_out, kernel, stride=stride, dilation=dilation, bias=bias))
        self.kernel, self.stride, self.dilation, self.causal = kernel, stride, dilation, causal
        total = (kernel - 1) * dilation - (stride - 1)
        total = max(total, 0)
        self.pad = (total, 0) if causal else (total // 2, total - total // 2)
        if self.pad[0] == self.pad[1] and total:  # symmetric: let the conv pad (saves a copy)
            self.conv.padding = (self.pad[0],)
            self.pad = (0, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad != (0, 0):
            x = F.pad(x, self.pad)
        return self.conv(x)


class ConvTranspose1d(nn.Module):
    """Weight-normed ConvTranspose1d trimmed so (B, C_in, F) -> (B, C_out, F * stride)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, causal: bool = False):
        super().__init__()
        self.conv = weight_norm(nn.ConvTranspose1d(c_in, c_out, kernel, stride=stride))
        self.kernel, self.stride, self.causal = kernel, stride, causal
        trim = kernel - stride
        self.trim = (0, trim) if causal else (trim // 2, trim - trim // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        left, right = self.trim
        return y[..., left:y.shape[-1] - right]


class Snake1d(nn.Module):
    """Snake activation x + sin²(αx)/α with a learned per-channel α (Ziyin et al. 2020; DAC). (B, C, T)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.alpha
        s = torch.sin(a * x)
        return torch.addcmul(x, s * s, (a + 1e-9).reciprocal())


def make_activation(name: str, channels: int) -> nn.Module:
    if name == "snake":
        return Snake1d(channels)
    if name == "elu":
        return nn.ELU()
    raise ValueError(f"unknown activation '{name}' (snake or elu)")


class ResidualUnit(nn.Module):
    """x + conv1x1(act(conv_k,dilated(act(x)))); (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int, dilation: int = 1, kernel: int = 7, causal: bool = False,
                 activation: str = "snake"):
        super().__init__()
        self.block = nn.Sequential(
            make_activation(activation, channels),
            Conv1d(channels, channels, kernel, dilation=dilation, causal=causal),
            make_activation(activation, channels),
            Conv1d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class EncoderBlock(nn.Sequential):
    """Residual units at c_in, then a strided conv (kernel 2·stride): (B, c_in, T) -> (B, c_out, T / stride)."""

    def __init__(self, c_in: int, c_out: int, stride: int, dilations=(1, 3, 9), kernel: int = 7,
                 causal: bool = False, activation: str = "snake"):
        layers = [ResidualUnit(c_in, d, kernel, causal, activation) for d in dilations]
        layers += [make_activation(activation, c_in), Conv1d(c_in, c_out, 2 * stride, stride=stride, causal=causal)]
        super().__init__(*layers)


class DecoderBlock(nn.Sequential):
    """Transposed conv (kernel 2·stride), then residual units: (B, c_in, F) -> (B, c_out, F · stride)."""

    def __init__(self, c_in: int, c_out: int, stride: int, dilations=(1, 3, 9), kernel: int = 7,
                 causal: bool = False, activation: str = "snake"):
        layers = [make_activation(activation, c_in), ConvTranspose1d(c_in, c_out, 2 * stride, stride, causal)]
        layers += [ResidualUnit(c_out, d, kernel, causal, activation) for d in dilations]
        super().__init__(*layers)


def receptive_field(module: nn.Module) -> int:
    """Receptive field in input samples of a feed-forward stack of `Conv1d` (walked in registration order)."""
    rf, jump = 1, 1
    for m in module.modules():
        if isinstance(m, Conv1d):
            rf += (m.kernel - 1) * m.dilation * jump
            jump *= m.stride
    return rf


def receptive_field_frames(module: nn.Module) -> int:
    """Receptive field, in input frames, of a stack mixing `ConvTranspose1d` upsampling and `Conv1d`."""
    rf, jump = 1.0, 1.0
    for m in module.modules():
        if isinstance(m, Conv1d):
            rf += (m.kernel - 1) * m.dilation * jump
        elif isinstance(m, ConvTranspose1d):
            rf += (math.ceil(m.kernel / m.stride) - 1) * jump
            jump /= m.stride
    return int(math.ceil(rf))


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block at frame rate (Vocos): depthwise conv -> LayerNorm -> Linear(mult·C) -> GELU -> Linear(C),
    scaled by a learned per-channel gain, plus the input. Matmul-heavy, so it runs near sgemm speed on CPUs.

    x: (B, C, F) -> (B, C, F). `multires` > 0 replaces the depthwise conv by a MultiresConv of that many
    dilation levels (nn/multires.py: kernel 3, dilations 1 .. 2^(multires - 1)); `span` is the frames (both
    sides) the block reaches.
    """

    def __init__(self, dim: int, mult: int = 3, kernel: int = 7, layer_scale: float = 0.1, multires: int = 0):
        super().__init__()
        if multires:
            from .multires import MultiresConv
            self.dw = MultiresConv(dim, int(multires))
            self.span = self.dw.span()
        else:
            self.dw = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
            self.span = kernel - 1
        self.norm = nn.LayerNorm(dim)
        self.pw1 = nn.Linear(dim, mult * dim)
        self.pw2 = nn.Linear(mult * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale)))
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(x).transpose(1, 2)
        y = self.pw2(F.gelu(self.pw1(self.norm(y))))
        return x + (y * self.gamma).transpose(1, 2)
