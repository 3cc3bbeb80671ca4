"""Generator / autoencoder geometry: shapes, valid_length, and the receptive field proven by a
gradient probe (eval mode)."""

from __future__ import annotations

import pytest
import torch

from rt_enhance.model import Autoencoder, Generator, GeometryError
from rt_enhance.model.spec import level_channels, level_kernels

SMALL = {"width": 0.125, "max_channels": 16, "max_kernel": 17}
OPTIONS = {
    "strided": {},
    "superpixel": {"downsample": "superpixel"},
    "multiscale": {"multiscale": True, "multiscale_kernels": [3, 27]},
    "prelu": {"prelu": True},
    "superpixel+multiscale+prelu": {"downsample": "superpixel", "multiscale": True, "prelu": True},
}


def test_defaults_are_the_original_works() -> None:
    assert level_channels(4) == [64, 128, 256, 512]
    assert level_kernels(4) == [129, 65, 33, 17]
    assert level_channels(5)[-1] == 512 and level_kernels(6)[-1] == 9


@pytest.mark.parametrize("depth,window", [(1, 64), (2, 256), (3, 1024), (4, 2048), (5, 128)])
def test_output_shape_matches_input(depth: int, window: int) -> None:
    torch.manual_seed(depth)
    model = Generator(depth=depth, **SMALL).eval()
    x = torch.randn(2, 1, window)
    assert model(x).shape == (2, 1, window)
    assert model.total_stride == 2 ** (depth + 1)


def test_autoencoder_shapes_and_features() -> None:
    model = Autoencoder(depth=3, **SMALL).eval()
    x = torch.randn(2, 1, 512)
    assert model(x).shape == (2, 1, 512)
    assert model.encode(x).shape == (2, model.channels[-1], 512 // model.total_stride)


def test_valid_length() -> None:
    model = Generator(depth=3, **SMALL)  # stride 16
    assert [model.valid_length(n) for n in (1, 15, 16, 17, 1000, 1024)] == [16, 16, 16, 32, 1008, 1024]
    model.check_window(1024)
    with pytest.raises(GeometryError, match="multiple of the model's total stride 16; use 1008"):
        model.check_window(1000)
    with pytest.raises(GeometryError):
        model(torch.zeros(1, 1, 1000))


def probe(model: torch.nn.Module, window: int, t: int) -> tuple[int, int]:
    """First and last input sample with a nonzero gradient of output sample ``t``."""
    x = torch.randn(1, 1, window, requires_grad=True)
    (grad,) = torch.autograd.grad(model(x)[0, 0, t], x)
    nonzero = torch.nonzero(grad[0, 0]).flatten()
    return int(nonzero.min()), int(nonzero.max())


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("cls", [Generator, Autoencoder])
def test_gradient_probe_shows_the_reported_receptive_field(cls: type, option: str) -> None:
    torch.manual_seed(1)
    model = cls(depth=3, **SMALL, **OPTIONS[option]).eval()
    window = model.valid_length(3 * model.receptive_field)
    for t in (window // 2, window // 2 + 1, window // 2 + 7):  # several phases of the stride
        lo, hi = model.input_span(t)
        assert probe(model, window, t) == (lo, hi)  # nonzero only inside, and reaching both edges
        assert hi - lo + 1 <= model.receptive_field
    widths = {hi - lo + 1 for lo, hi in map(model.input_span, range(model.total_stride))}
    assert max(widths) == model.receptive_field


def test_dropout_is_off_in_eval_and_on_in_train() -> None:
    torch.manual_seed(0)
    model = Generator(depth=2, **SMALL, dropout=0.5)
    x = torch.randn(1, 1, 256)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"depth": 0},
        {"max_kernel": 16},
        {"downsample": "pool"},
        {"dropout": 1.0},
        {"max_channels": 12},
        {"width": 0.0},
        {"multiscale_kernels": [3, 9, 27]},
    ],
)
def test_bad_arguments_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Generator(**kwargs)
