"""1-D sub-pixel shuffle (depth to space) and its inverse, superpixel (space to depth).

Both are a reshape and a permute, which export to ONNX as Reshape/Transpose with no custom op.
The sample order follows the original work (Billotais, after Kuleshov et al.): sub-pixel
interleaves channel groups, ``y[c, 2t + j] = x[c * 2 + j, t]``.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

logger = logging.getLogger(__name__)


def subpixel(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """``[batch, channels, length]`` -> ``[batch, channels // factor, length * factor]``."""
    batch, channels, length = x.shape
    y = x.reshape(batch, channels // factor, factor, length)
    return y.permute(0, 1, 3, 2).reshape(batch, channels // factor, length * factor)


def superpixel(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """``[batch, channels, length]`` -> ``[batch, channels * factor, length // factor]``.

    The exact inverse of :func:`subpixel`: ``subpixel(superpixel(x)) == x``.
    """
    batch, channels, length = x.shape
    y = x.reshape(batch, channels, length // factor, factor)
    return y.permute(0, 1, 3, 2).reshape(batch, channels * factor, length // factor)


class SubPixel(nn.Module):
    """Module form of :func:`subpixel` (factor 2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return subpixel(x, 2)


class SuperPixel(nn.Module):
    """Module form of :func:`superpixel` (factor 2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return superpixel(x, 2)
