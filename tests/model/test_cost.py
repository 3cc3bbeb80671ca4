"""Parameters and MACs per second of audio, and the named sizes."""

from __future__ import annotations

import pytest

from rt_enhance.model import SIZES, Generator, build_size, get_size


def test_macs_per_second_matches_a_hand_count() -> None:
    # depth 1, 8 channels, kernel 9: down 1->8 at W/2, bottleneck 8->8 at W/4, up 8->16 at W/4,
    # final 16->2 at W/2: (8*9/2 + 8*8*9/4 + 8*16*9/4 + 16*2*9/2) = 612 MACs per input sample.
    model = Generator(depth=1, width=0.125, max_kernel=9, sample_rate=48000)
    assert model.macs(1024) == 612 * 1024
    assert model.macs_per_second() == 612 * 48000
    assert Generator(depth=1, width=0.125, max_kernel=9, sample_rate=16000).macs_per_second() == 612 * 16000


def test_macs_scale_with_the_window_and_params_count() -> None:
    model = Generator(depth=3, width=0.125, max_kernel=17)
    assert model.macs(2048) == 2 * model.macs(1024)
    assert model.param_count() == sum(p.numel() for p in model.parameters())


def test_describe_reports_every_figure() -> None:
    info = Generator(depth=2, width=0.125, max_kernel=9).describe()
    assert set(info) == {"family", "params", "macs_per_second", "receptive_field", "total_stride", "sample_rate"}
    assert info["family"] == "Generator" and info["total_stride"] == 8


def test_named_sizes() -> None:
    assert set(SIZES) >= {"tiny", "small", "base"}
    tiny = build_size("tiny")
    assert tiny.param_count() < 50_000
    assert get_size("tiny").window % tiny.total_stride == 0
    small = build_size("small")
    assert 100_000 < small.param_count() < 1_000_000
    assert small.macs_per_second() < 1e9
    with pytest.raises(KeyError, match="known sizes: tiny, small, base"):
        get_size("huge")


def test_base_is_the_original_configuration() -> None:
    base = get_size("base")
    model = Generator(**base.kwargs)
    assert model.channels == [64, 128, 256, 512] and model.kernels == [129, 65, 33, 17]
    assert model.param_count() > 40_000_000  # large: not a real-time CPU model
