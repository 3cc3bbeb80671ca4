"""Building blocks of the U-Net family: down, up and final blocks, multi-scale convolution.

Every block reports ``span(lo, hi)``: the input sample interval that output samples ``lo..hi``
(inclusive) depend on, ignoring the zero padding at the edges. Composing spans gives a model's
receptive field analytically. All convolutions are centred (odd kernels, padding ``(k-1)/2``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

from rt_enhance.model.shuffle import SubPixel, SuperPixel

logger = logging.getLogger(__name__)

Span = tuple[int, int]


class MultiScaleConv(nn.Module):
    """Parallel centred convolutions with different kernels, concatenated on channels (MU-GAN).

    ``[batch, in_ch, length]`` -> ``[batch, out_ch, length / stride]``; each branch has
    ``out_ch / len(kernels)`` channels.
    """

    def __init__(self, in_ch: int, out_ch: int, *, kernels: Sequence[int], stride: int = 1) -> None:
        super().__init__()
        if out_ch % len(kernels):
            raise ValueError(f"{out_ch} channels cannot be split over {len(kernels)} kernels")
        branch = out_ch // len(kernels)
        self.branches = nn.ModuleList(centred_conv(in_ch, branch, k, stride) for k in kernels)
        self.kernel = max(kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([conv(x) for conv in self.branches], dim=1)


def centred_conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> nn.Conv1d:
    """A Conv1d with an odd kernel and padding ``(kernel-1)/2``: length in = stride * length out."""
    if kernel % 2 == 0:
        raise ValueError(f"kernel sizes must be odd (centred convolutions), got {kernel}")
    return nn.Conv1d(in_ch, out_ch, kernel, stride=stride, padding=(kernel - 1) // 2)


def make_conv(in_ch: int, out_ch: int, kernel: int, stride: int, multiscale: Sequence[int] | None) -> nn.Module:
    """A centred conv, or a :class:`MultiScaleConv` over ``multiscale`` kernels when given."""
    if multiscale:
        return MultiScaleConv(in_ch, out_ch, kernels=multiscale, stride=stride)
    return centred_conv(in_ch, out_ch, kernel, stride)


def conv_kernel(conv: nn.Module) -> int:
    """The widest kernel of a conv made by :func:`make_conv`."""
    if isinstance(conv, MultiScaleConv):
        return conv.kernel
    assert isinstance(conv, nn.Conv1d)  # centred_conv
    return conv.kernel_size[0]


def make_activation(kind: str, channels: int) -> nn.Module:
    """``leaky`` (LeakyReLU 0.2), ``relu`` or ``prelu`` (one slope per channel)."""
    if kind == "leaky":
        return nn.LeakyReLU(0.2)
    if kind == "relu":
        return nn.ReLU()
    if kind == "prelu":
        return nn.PReLU(channels, init=0.2)
    raise ValueError(f"unknown activation {kind!r}; expected leaky, relu or prelu")


class DownBlock(nn.Module):
    """Halve the length: strided conv, or conv + superpixel; optional batch norm and dropout.

    ``[batch, in_ch, length]`` -> ``[batch, out_ch, length / 2]``. Order: conv, [batch norm],
    [dropout], activation, [superpixel].
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        *,
        downsample: str = "strided",
        multiscale: Sequence[int] | None = None,
        activation: str = "leaky",
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.superpixel = downsample == "superpixel"
        conv_out = out_ch // 2 if self.superpixel else out_ch
        stride = 1 if self.superpixel else 2
        layers: list[nn.Module] = [make_conv(in_ch, conv_out, kernel, stride, multiscale)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(conv_out))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(make_activation(activation, conv_out))
        if self.superpixel:
            layers.append(SuperPixel())
        self.layers = nn.Sequential(*layers)
        self.pad = (conv_kernel(layers[0]) - 1) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def span(self, lo: int, hi: int) -> Span:
        """Input interval of output samples ``lo..hi``."""
        if self.superpixel:
            return 2 * lo - self.pad, 2 * hi + 1 + self.pad
        return 2 * lo - self.pad, 2 * hi + self.pad


class UpBlock(nn.Module):
    """Double the length: conv to ``2 * out_ch``, dropout, activation, sub-pixel shuffle.

    ``[batch, in_ch, length]`` -> ``[batch, out_ch, 2 * length]``. The caller concatenates the
    skip connection (the generator) or not (the autoencoder).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        *,
        multiscale: Sequence[int] | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        conv = make_conv(in_ch, 2 * out_ch, kernel, 1, multiscale)
        layers: list[nn.Module] = [conv]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [make_activation(activation, 2 * out_ch), SubPixel()]
        self.layers = nn.Sequential(*layers)
        self.pad = (conv_kernel(conv) - 1) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def span(self, lo: int, hi: int) -> Span:
        """Input interval of output samples ``lo..hi``."""
        return lo // 2 - self.pad, hi // 2 + self.pad


class FinalBlock(nn.Module):
    """Conv to 2 channels, then sub-pixel: ``[batch, in_ch, length]`` -> ``[batch, 1, 2 * length]``."""

    def __init__(self, in_ch: int, kernel: int = 9) -> None:
        super().__init__()
        self.conv = centred_conv(in_ch, 2, kernel)
        self.shuffle = SubPixel()
        self.pad = (kernel - 1) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))

    def span(self, lo: int, hi: int) -> Span:
        """Input interval of output samples ``lo..hi``."""
        return lo // 2 - self.pad, hi // 2 + self.pad
