"""The generator: a 1-D U-Net that predicts a residual added to its input.

N down blocks (stride-2 conv or conv + superpixel, LeakyReLU 0.2 or PReLU), a bottleneck with
dropout, N up blocks (conv to 2x channels, dropout, ReLU or PReLU, sub-pixel shuffle, then
concatenation with the skip of the same level), a final conv + sub-pixel, and an additive
connection from the input. Defaults are the original work's (depth 4, 64..512 channels,
kernels 129..17, dropout 0.5); ``width``, ``max_channels`` and ``max_kernel`` make small
real-time variants; ``multiscale`` uses parallel 3/9/27/81 kernels at every level (MU-GAN);
``downsample="superpixel"`` replaces strided convs by conv + space-to-depth.
"""

from __future__ import annotations

import logging

import torch

from rt_enhance.model.layers import Span
from rt_enhance.model.unet import UNetModel, hull, through_downs

logger = logging.getLogger(__name__)


class Generator(UNetModel):
    """``[batch, 1, window]`` float32 -> ``[batch, 1, window]``; ``window`` a multiple of ``2^(depth+1)``.

    Constructor arguments: see :class:`~rt_enhance.model.unet.UNetModel`.
    """

    skip = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[batch, 1, window]`` -> ``[batch, 1, window]`` (input + predicted residual)."""
        self.check_input(x)
        skips = []
        h = x
        for down in self.downs:
            h = down(h)
            skips.append(h)
        h = self.bottleneck(h)
        for up, skip in zip(reversed(self.ups), reversed(skips)):
            h = torch.cat([up(h), skip], dim=1)
        return x + self.final(h)

    def input_span(self, t: int) -> Span:
        spans = [(t, t)]  # the additive input connection
        span = self.final.span(t, t)
        for level in range(self.depth):
            spans.append(through_downs(self.downs, level, span))  # the skip of this level
            span = self.ups[level].span(*span)  # type: ignore[operator]  # a block's span(); torch types module attributes as Tensor | Module
        spans.append(through_downs(self.downs, self.depth - 1, self.bottleneck.span(*span)))
        return hull(spans)
