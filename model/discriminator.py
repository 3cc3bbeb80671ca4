"""The discriminator: the generator's down blocks with batch norm and dropout, then a linear layer
and a sigmoid giving the probability that a window is clean.

The conditional variant also sees the degraded input, concatenated on channels. The linear layer
reads the flattened features of a whole window, so the window is a constructor argument.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rt_enhance.model.base import AudioModel, GeometryError
from rt_enhance.model.layers import Span
from rt_enhance.model.spec import check_unet_args, level_channels, level_kernels
from rt_enhance.model.unet import make_downs

logger = logging.getLogger(__name__)


class Discriminator(AudioModel):
    """``[batch, 1, window]`` (+ condition ``[batch, 1, window]``) -> probability clean ``[batch, 1]``."""

    def __init__(
        self,
        *,
        window: int = 2048,
        conditional: bool = False,
        depth: int = 4,
        width: float = 1.0,
        max_channels: int = 512,
        max_kernel: int = 129,
        min_kernel: int = 9,
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
        if window <= 0 or window % 2**depth:
            raise ValueError(f"window {window} must be a positive multiple of 2^depth = {2**depth}")
        self.init_kwargs = {
            "window": window,
            "conditional": conditional,
            "depth": depth,
            "width": float(width),
            "max_channels": max_channels,
            "max_kernel": max_kernel,
            "min_kernel": min_kernel,
            "downsample": downsample,
            "multiscale": multiscale,
            "multiscale_kernels": list(multiscale_kernels),
            "prelu": prelu,
            "dropout": float(dropout),
            "sample_rate": sample_rate,
        }
        self.sample_rate, self.window, self.depth, self.conditional = sample_rate, window, depth, conditional
        self.channels = level_channels(depth, width, max_channels)
        self.downs = make_downs(
            self.channels,
            level_kernels(depth, max_kernel, min_kernel),
            in_ch=self.in_channels,
            downsample=downsample,
            multiscale=list(multiscale_kernels) if multiscale else None,
            activation="prelu" if prelu else "leaky",
            batch_norm=True,
            dropout=dropout,
        )
        self.linear = nn.Linear(self.channels[-1] * window // 2**depth, 1)

    @property
    def in_channels(self) -> int:
        return 2 if self.conditional else 1

    def logits(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Pre-sigmoid score ``[batch, 1]`` (use with ``BCEWithLogitsLoss``).

        ``x``: ``[batch, 1, window]``; ``condition`` (conditional only): the degraded input, same shape.
        A tensor that already holds both channels ``[batch, 2, window]`` is accepted too.
        """
        if condition is not None:
            x = torch.cat([x, condition], dim=1)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channel(s) (conditional={self.conditional})")
        for down in self.downs:
            x = down(x)
        return self.linear(x.flatten(1))

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Probability that ``x`` is clean, ``[batch, 1]``."""
        return torch.sigmoid(self.logits(x, condition))

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor, condition: torch.Tensor | None = None):
        """``-[log D(clean) + log(1 - D(enhanced))]`` (the original's, with logits; detach ``fake``), and the mean
        probabilities it gives each."""
        real_logits, fake_logits = self.logits(real, condition).float(), self.logits(fake, condition).float()
        loss = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + F.binary_cross_entropy_with_logits(
            fake_logits, torch.zeros_like(fake_logits)
        )
        return loss, {"d_real": torch.sigmoid(real_logits).mean().item(), "d_fake": torch.sigmoid(fake_logits).mean().item()}

    def generator_loss(
        self, fake: torch.Tensor, real: torch.Tensor, condition: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(-log D(enhanced), 0)``: the non-saturating adversarial loss; this discriminator has no feature matching."""
        logits = self.logits(fake, condition).float()
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)), torch.zeros((), device=logits.device)

    @property
    def total_stride(self) -> int:
        return 2**self.depth

    @property
    def example_window(self) -> int:
        return self.window

    @property
    def receptive_field(self) -> int:
        return self.window

    def input_span(self, t: int) -> Span:
        return 0, self.window - 1

    def check_window(self, window: int) -> None:
        if window != self.window:
            raise GeometryError(f"this discriminator takes windows of exactly {self.window} samples, not {window}")

    def valid_length(self, n: int) -> int:
        if n > self.window:
            raise GeometryError(f"this discriminator takes at most {self.window} samples, not {n}")
        return self.window
