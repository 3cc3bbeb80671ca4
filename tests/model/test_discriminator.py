"""Discriminator: probability per window, conditional variant."""

from __future__ import annotations

import pytest
import torch

from rt_enhance.model import Discriminator, GeometryError

SMALL = {"depth": 3, "width": 0.125, "max_channels": 16, "max_kernel": 17, "window": 512}


def test_probability_per_window() -> None:
    torch.manual_seed(0)
    model = Discriminator(**SMALL).eval()
    p = model(torch.randn(4, 1, 512))
    assert p.shape == (4, 1)
    assert bool(((p > 0) & (p < 1)).all())
    assert torch.allclose(torch.sigmoid(model.logits(torch.ones(1, 1, 512))), model(torch.ones(1, 1, 512)))
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())


def test_conditional_sees_the_degraded_input() -> None:
    torch.manual_seed(0)
    model = Discriminator(**SMALL, conditional=True).eval()
    clean, degraded = torch.randn(2, 1, 512), torch.randn(2, 1, 512)
    p = model(clean, degraded)
    assert p.shape == (2, 1)
    assert not torch.allclose(p, model(clean, torch.zeros_like(degraded)))
    with pytest.raises(ValueError, match="2 input channel"):
        model(clean)


def test_window_is_fixed() -> None:
    model = Discriminator(**SMALL)
    assert model.receptive_field == 512 and model.valid_length(100) == 512
    with pytest.raises(GeometryError):
        model.check_window(1024)
    assert model.macs_per_second() > 0
