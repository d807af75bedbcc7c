"""Multiresolution (wavelet-style) depthwise convolution, MultiresConv of arXiv 2305.01638 (seed 002's
"multiresolution convolutions"), as a drop-in for a ConvNeXt block's depthwise convolution.

Two depthwise filters, a low-pass h0 and a high-pass h1 (kernel k, per channel), are shared by every level and
applied with dilation 2^i, a wavelet tree: a_0 = x, a_{i+1} = h0 *_{2^i} a_i, d_{i+1} = h1 *_{2^i} a_i; the
output mixes every resolution with learned per-channel weights, y = w_x x + sum_i w_i d_i + w_a a_J. With J
levels it reaches (k - 1)(2^J - 1) / 2 frames each way ("same" padding, not causal: the spectral codec's blocks
are not). x: (B, C, F) -> (B, C, F). Written by hand: it is a few depthwise convs, no library ships it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MultiresConv(nn.Module):
    """Depthwise wavelet-tree convolution over `levels` dilations 1, 2, ..., 2^(levels-1); x (B, C, F)."""

    def __init__(self, channels: int, levels: int = 4, kernel: int = 3):
        super().__init__()
        if levels < 1 or kernel < 2 or kernel % 2 == 0:
            raise ValueError(f"MultiresConv needs levels >= 1 and an odd kernel >= 3, got {levels}, {kernel}")
        self.levels, self.kernel = int(levels), int(kernel)
        base = torch.zeros(kernel)
        base[kernel // 2 - 1:kernel // 2 + 2] = torch.tensor([0.25, 0.5, 0.25])
        sign = torch.tensor([(-1.0) ** abs(i - kernel // 2) for i in range(kernel)])
        self.h0 = nn.Parameter(base.repeat(channels, 1, 1) + 0.01 * torch.randn(channels, 1, kernel))
        self.h1 = nn.Parameter((base * sign).repeat(channels, 1, 1) + 0.01 * torch.randn(channels, 1, kernel))
        self.w = nn.Parameter(torch.randn(channels, levels + 2) / (levels + 2) ** 0.5)

    def span(self) -> int:
        """Frames (both sides together) one output frame depends on, beyond itself."""
        return (self.kernel - 1) * (2 ** self.levels - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        a, out = x, x * self.w[None, :, 0, None]
        for i in range(self.levels):
            d = 2 ** i
            pad = d * (self.kernel - 1) // 2
            detail = F.conv1d(a, self.h1, padding=pad, dilation=d, groups=c)
            a = F.conv1d(a, self.h0, padding=pad, dilation=d, groups=c)
            out = out + detail * self.w[None, :, i + 1, None]
        return out + a * self.w[None, :, -1, None]
