"""The streaming U-Net: causality (gradient probe), streaming == offline for any chunking, the
lookahead's lag, geometry and cost figures, state shapes, reset, checkpoints."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rt_enhance.model import GeometryError, build_model, build_size, get_size, load_checkpoint, save_checkpoint
from rt_enhance.model.causal import CausalUNet
from rt_enhance.model.registry import UnknownModelError

TINY = {"depth": 3, "width": 0.125, "max_channels": 16, "max_kernel": 9}
CONFIGS = {
    "strided": {**TINY, "lookahead": 5},
    "strided+gru": {**TINY, "lookahead": 24, "gru_hidden": 8},
    "superpixel+prelu+gru": {**TINY, "downsample": "superpixel", "prelu": True, "lookahead": 3, "gru_hidden": 8},
    "depth1, no lookahead": {"depth": 1, "width": 0.125, "max_kernel": 5, "min_kernel": 5, "lookahead": 0},
    "mixed kernels": {"depth": 4, "width": 0.125, "max_channels": 32, "max_kernel": 33, "final_kernel": 3, "lookahead": 7},
}


# torch on one thread in every test here.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make(config: dict, seed: int = 0) -> CausalUNet:
    torch.manual_seed(seed)
    return CausalUNet(**config).eval()


def run_chunks(model: CausalUNet, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    states, outputs, start = model.initial_state(x.shape[0]), [], 0
    with torch.no_grad():
        for size in sizes:
            y, states = model.step(x[..., start : start + size], states)
            outputs.append(y)
            start += size
    return torch.cat(outputs, dim=-1)


def probe(model: CausalUNet, window: int, t: int) -> tuple[int, int]:
    """First and last input sample with a nonzero gradient of output sample ``t``."""
    x = torch.randn(1, 1, window, requires_grad=True)
    (grad,) = torch.autograd.grad(model(x)[0, 0, t], x)
    nonzero = torch.nonzero(grad[0, 0]).flatten()
    return int(nonzero.min()), int(nonzero.max())


@pytest.mark.parametrize("name", CONFIGS)
def test_step_over_random_chunks_equals_forward(name: str) -> None:
    model = make(CONFIGS[name])
    stride = model.total_stride
    x = torch.randn(2, 1, 200 * stride)
    with torch.no_grad():
        offline = model(x)
    rng = torch.Generator().manual_seed(1)
    sizes, left = [], x.shape[-1]
    while left:
        sizes.append(min(left, stride * int(torch.randint(1, 40, (1,), generator=rng))))
        left -= sizes[-1]
    torch.testing.assert_close(run_chunks(model, x, sizes), offline, rtol=0, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=1, max_size=12), st.integers(0, 3))
def test_streaming_equals_offline_for_any_chunking(chunks: list[int], config: int) -> None:
    model = make(list(CONFIGS.values())[config])
    sizes = [c * model.total_stride for c in chunks]
    x = torch.randn(1, 1, sum(sizes), generator=torch.Generator().manual_seed(len(sizes)))
    with torch.no_grad():
        offline = model(x)
    torch.testing.assert_close(run_chunks(model, x, sizes), offline, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["strided", "strided+gru", "depth1, no lookahead", "mixed kernels"])
def test_strided_models_are_causal(name: str) -> None:
    model = make(CONFIGS[name])
    for t in (300, 301, 317, 350):
        lo, hi = probe(model, 512, t)
        assert hi <= t, f"output {t} depends on input {hi} in the future"
        span = model.input_span(t)
        assert span[1] <= t
        if not model.recurrent:
            assert span[0] <= lo, f"gradient reaches {lo}, before the analytic span {span}"


def test_superpixel_models_are_causal_per_stride_block() -> None:
    model = make(CONFIGS["superpixel+prelu+gru"])
    stride = model.total_stride
    for t in (296, 297, 303, 350):
        block_end = (t // stride + 1) * stride - 1
        assert probe(model, 512, t)[1] <= block_end
        assert model.input_span(t)[1] == block_end


def test_analytic_span_is_exact_where_every_gradient_is_nonzero() -> None:
    # depth 1, kernel 5, PReLU (no dead units): down0 reads 2j-4..2j, the final conv 4 frames back
    model = make({"depth": 1, "width": 0.125, "max_kernel": 5, "min_kernel": 5, "final_kernel": 5, "prelu": True, "lookahead": 0})
    for t in (100, 101):
        assert probe(model, 256, t) == model.input_span(t) == (100 - 12, t)
    assert model.receptive_field == 14


def test_gru_context_reaches_beyond_the_convolutions() -> None:
    model = make(CONFIGS["strided+gru"])
    lo, _ = probe(model, 1024, 1000)
    assert model.recurrent and lo < model.input_span(1000)[0] - 100


@pytest.mark.parametrize("name", CONFIGS)
def test_lookahead_is_the_lag_of_the_residual_path(name: str) -> None:
    model = make(CONFIGS[name])
    lag = model.lookahead
    with torch.no_grad():
        model.final.conv.conv.weight.zero_()
        model.final.conv.conv.bias.zero_()
    x = torch.randn(2, 1, 64 * model.total_stride)
    with torch.no_grad():
        y = model(x)
    assert torch.equal(y[..., lag:], x[..., : x.shape[-1] - lag])
    assert torch.equal(y[..., :lag], torch.zeros_like(y[..., :lag]))
    assert torch.equal(run_chunks(model, x, [model.total_stride] * 64), y)


def test_geometry_figures() -> None:
    model = make(CONFIGS["strided+gru"])
    assert model.total_stride == 8 and model.lookahead == 24
    assert [model.valid_length(n) for n in (1, 8, 9, 1000)] == [8, 8, 16, 1000]
    assert model.receptive_field == 175
    with pytest.raises(GeometryError, match="multiple of the model's total stride 8"):
        model(torch.zeros(1, 1, 100))
    with pytest.raises(GeometryError, match="multiple of the model's total stride 8"):
        model.step(torch.zeros(1, 1, 12), model.initial_state(1))
    states = model.initial_state(1)
    states[3] = torch.zeros(1, 2, 8)  # the GRU's batch axis is 1
    with pytest.raises(GeometryError, match=r"state 'gru' has shape \[1, 2, 8\], expected \[1, 1, 8\]"):
        model.step(torch.zeros(1, 1, 8), states)


def test_macs_per_second_matches_a_hand_count() -> None:
    # depth 1, 8 channels, kernel 9: down 1->8 at T/2 (36 per sample), final 8->2 at T/2 (72), GRU 4
    # at T/2 frames: 3 * 4 * (8 + 4) = 144 per frame (72 per sample), its 4->8 projection (16).
    model = CausalUNet(depth=1, width=0.125, max_kernel=9, gru_hidden=4)
    assert model.macs(1024) == (36 + 72 + 72 + 16) * 1024
    assert model.macs_per_second() == (36 + 72 + 72 + 16) * 48000


def test_state_names_and_shapes() -> None:
    model = build_size("stream-tiny")
    assert model.state_names() == ["down0", "down1", "down2", "gru", "up1", "up0", "final", "delay"]
    assert model.state_shapes() == [(-1, 1, 8), (-1, 8, 8), (-1, 16, 8), (1, -1, 16), (-1, 16, 8), (-1, 32, 8), (-1, 16, 8), (-1, 1, 24)]
    zeros = model.initial_state(3)
    assert [tuple(z.shape) for z in zeros] == [tuple(3 if d == -1 else d for d in s) for s in model.state_shapes()]
    assert all(not z.any() for z in zeros)
    with torch.no_grad():
        _, new = model.step(torch.randn(3, 1, 16), zeros)
    assert [n.shape for n in new] == [z.shape for z in zeros]


def test_reset_with_initial_state_is_a_fresh_start() -> None:
    model = make(CONFIGS["strided+gru"])
    a, b = torch.randn(1, 1, 400), torch.randn(1, 1, 160)
    with torch.no_grad():
        _, used = model.step(a, model.initial_state(1))
        after_history, _ = model.step(b, used)
        after_reset, _ = model.step(b, model.initial_state(1))
        fresh = make(CONFIGS["strided+gru"])(b)
    assert not torch.allclose(after_history, after_reset)
    torch.testing.assert_close(after_reset, fresh, rtol=0, atol=0)


def test_trains_in_train_mode_with_dropout() -> None:
    torch.manual_seed(0)
    model = CausalUNet(**TINY, dropout=0.2, gru_hidden=8, lookahead=16).train()
    x, target = torch.randn(4, 1, 1024), torch.randn(4, 1, 1024)
    lag = model.lookahead
    y = model(x)
    loss = (y[..., lag:] - target[..., :-lag]).abs().mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_named_streaming_sizes() -> None:
    for name in ("stream-tiny", "stream-small", "stream-base"):
        size, model = get_size(name), build_size(name)
        assert size.family == "CausalUNet" and isinstance(model, CausalUNet)
        assert size.hop % model.total_stride == 0 and size.lookahead == model.lookahead and size.crossfade == 0
        assert all(hop % model.total_stride == 0 for hop in (96, 240, 480))  # 2, 5, 10 ms at 48 kHz
    assert 500_000 < build_size("stream-small").param_count() < 1_500_000
    assert build_size("stream-small").macs_per_second() < 5e9


def test_checkpoint_round_trip(tmp_path) -> None:
    model = make(CONFIGS["superpixel+prelu+gru"])
    save_checkpoint(tmp_path / "c.pt", model, extra={"meta": {"hop": 16}})
    loaded, extra = load_checkpoint(tmp_path / "c.pt")
    x = torch.randn(1, 1, 256)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert isinstance(loaded, CausalUNet) and extra["meta"] == {"hop": 16}


@pytest.mark.parametrize(
    "kwargs", [{"lookahead": -1}, {"gru_hidden": -2}, {"min_kernel": 1, "max_kernel": 1}, {"downsample": "pool"}, {"depth": 0}]
)
def test_bad_arguments_are_one_line_errors(kwargs: dict) -> None:
    with pytest.raises(UnknownModelError, match="cannot build CausalUNet"):
        build_model("CausalUNet", kwargs)
