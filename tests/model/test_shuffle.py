"""Sub-pixel and superpixel shuffles: ordering and inverse."""

from __future__ import annotations

import torch

from rt_enhance.model.shuffle import subpixel, superpixel


def test_subpixel_interleaves_channel_pairs() -> None:
    x = torch.arange(12.0).reshape(1, 4, 3)
    y = subpixel(x)
    assert y.shape == (1, 2, 6)
    assert y[0, 0].tolist() == [0, 3, 1, 4, 2, 5]  # y[c, 2t + j] = x[2c + j, t]


def test_superpixel_is_the_inverse_of_subpixel() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 8, 16)
    assert superpixel(x).shape == (3, 16, 8)
    assert torch.equal(subpixel(superpixel(x)), x)
    assert torch.equal(superpixel(subpixel(x)), x)
