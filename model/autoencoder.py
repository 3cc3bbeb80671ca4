"""The autoencoder: the generator without skip connections (no stacking, no additive input).

Trained to reconstruct clean audio; its bottleneck features (:meth:`Autoencoder.encode`) feed the
feature loss of MU-GAN-style training.
"""

from __future__ import annotations

import logging

import torch

from rt_enhance.model.layers import Span
from rt_enhance.model.unet import UNetModel, through_downs

logger = logging.getLogger(__name__)


class Autoencoder(UNetModel):
    """``[batch, 1, window]`` -> ``[batch, 1, window]``; same arguments as the generator."""

    skip = False

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Bottleneck features: ``[batch, 1, window]`` -> ``[batch, channels[-1], window / total_stride]``."""
        self.check_input(x)
        for down in self.downs:
            x = down(x)
        return self.bottleneck(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``[batch, channels[-1], window / total_stride]`` -> ``[batch, 1, window]``."""
        for up in reversed(self.ups):
            z = up(z)
        return self.final(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[batch, 1, window]`` -> reconstruction ``[batch, 1, window]``."""
        return self.decode(self.encode(x))

    def input_span(self, t: int) -> Span:
        span = self.final.span(t, t)
        for up in self.ups:
            span = up.span(*span)  # type: ignore[operator]  # a block's span(); torch types module attributes as Tensor | Module
        return through_downs(self.downs, self.depth - 1, self.bottleneck.span(*span))
