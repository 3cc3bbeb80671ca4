"""The parts the U-Net family shares: encoder (down blocks + bottleneck) and decoder builders, and
the span walk that turns the blocks' spans into a receptive field.

Level ``b`` = 0 is the outermost (full rate / 2); the bottleneck halves once more, so the total
stride of a depth-``N`` net is ``2^(N+1)`` (hence the original rule depth <= log2(window) - 1).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from torch import nn

from rt_enhance.model.base import AudioModel
from rt_enhance.model.layers import DownBlock, FinalBlock, Span, UpBlock
from rt_enhance.model.spec import check_unet_args, level_channels, level_kernels

logger = logging.getLogger(__name__)


def make_downs(
    channels: Sequence[int],
    kernels: Sequence[int],
    *,
    in_ch: int = 1,
    downsample: str = "strided",
    multiscale: Sequence[int] | None = None,
    activation: str = "leaky",
    batch_norm: bool = False,
    dropout: float = 0.0,
) -> nn.ModuleList:
    """Down blocks ``in_ch -> channels[0] -> ... -> channels[-1]``, each halving the length."""
    ins = [in_ch, *channels[:-1]]
    return nn.ModuleList(
        DownBlock(
            i,
            o,
            k,
            downsample=downsample,
            multiscale=multiscale,
            activation=activation,
            batch_norm=batch_norm,
            dropout=dropout,
        )
        for i, o, k in zip(ins, channels, kernels)
    )


def make_ups(
    channels: Sequence[int],
    kernels: Sequence[int],
    *,
    skip: bool,
    multiscale: Sequence[int] | None = None,
    activation: str = "relu",
    dropout: float = 0.0,
) -> nn.ModuleList:
    """Up blocks indexed by level (0 = outermost). Block ``b`` outputs ``channels[b]``; its input is
    the bottleneck (``channels[-1]``) at the deepest level, else the level below, which is doubled
    by the concatenated skip when ``skip``.
    """
    factor = 2 if skip else 1
    ins = [factor * c for c in channels[1:]] + [channels[-1]]
    return nn.ModuleList(
        UpBlock(i, o, k, multiscale=multiscale, activation=activation, dropout=dropout) for i, o, k in zip(ins, channels, kernels)
    )


def through_downs(downs: nn.ModuleList, level: int, span: Span) -> Span:
    """Map an interval in the output coordinates of ``downs[level]`` back to the model input."""
    for block in reversed(downs[: level + 1]):
        span = block.span(*span)  # type: ignore[operator]  # a block's span(); torch types module attributes as Tensor | Module
    return span


def hull(spans: Sequence[Span]) -> Span:
    """The smallest interval holding all ``spans``."""
    return min(s[0] for s in spans), max(s[1] for s in spans)


class UNetModel(AudioModel):
    """Shared constructor of :class:`Generator` and :class:`Autoencoder` (they differ in ``skip``).

    Builds ``downs``, ``bottleneck``, ``ups`` and ``final``; ``[batch, 1, window]`` in and out,
    ``window`` a multiple of ``2^(depth+1)``.
    """

    skip: bool = True

    def __init__(
        self,
        *,
        depth: int = 4,
        width: float = 1.0,
        max_channels: int = 512,
        max_kernel: int = 129,
        min_kernel: int = 9,
        final_kernel: int = 9,
        downsample: str = "strided",
        multiscale: bool = False,
        multiscale_kernels: Sequence[int] = (3, 9, 27, 81),
        prelu: bool = False,
        dropout: float = 0.5,
        sample_rate: int = 48000,
    ) -> None:
        super().__init__()
        check_unet_args(
            depth=depth,
            width=width,
            max_channels=max_channels,
            max_kernel=max_kernel,
            min_kernel=min_kernel,
            downsample=downsample,
            multiscale_kernels=multiscale_kernels,
            dropout=dropout,
        )
        self.init_kwargs = {
            "depth": depth,
            "width": float(width),
            "max_channels": max_channels,
            "max_kernel": max_kernel,
            "min_kernel": min_kernel,
            "final_kernel": final_kernel,
            "downsample": downsample,
            "multiscale": multiscale,
            "multiscale_kernels": list(multiscale_kernels),
            "prelu": prelu,
            "dropout": float(dropout),
            "sample_rate": sample_rate,
        }
        self.sample_rate = sample_rate
        self.depth = depth
        self.channels = level_channels(depth, width, max_channels)
        self.kernels = level_kernels(depth, max_kernel, min_kernel)
        self._build(downsample, list(multiscale_kernels) if multiscale else None, prelu, dropout, final_kernel)

    def _build(self, downsample: str, multiscale: list[int] | None, prelu: bool, dropout: float, final: int) -> None:
        down_act, up_act = ("prelu", "prelu") if prelu else ("leaky", "relu")
        ch, ks = self.channels, self.kernels
        self.downs = make_downs(ch, ks, downsample=downsample, multiscale=multiscale, activation=down_act)
        self.bottleneck = DownBlock(
            ch[-1], ch[-1], ks[-1], downsample=downsample, multiscale=multiscale, activation=down_act, dropout=dropout
        )
        self.ups = make_ups(ch, ks, skip=self.skip, multiscale=multiscale, activation=up_act, dropout=dropout)
        self.final = FinalBlock((2 if self.skip else 1) * ch[0], final)

    @property
    def total_stride(self) -> int:
        return 2 ** (self.depth + 1)
