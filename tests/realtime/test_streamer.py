"""The streaming core: block-size independence, exactness of identity models, real ONNX models."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rt_enhance.realtime.geometry import Geometry
from rt_enhance.realtime.processor import OnnxProcessor, PassthroughProcessor
from rt_enhance.realtime.streamer import Streamer


def stream(streamer: Streamer, x: np.ndarray, sizes) -> np.ndarray:
    outs, i, k = [], 0, 0
    while i < x.shape[1]:
        n = sizes[k % len(sizes)]
        outs.append(streamer.feed(x[:, i : i + n]))
        i, k = i + n, k + 1
    outs.append(streamer.flush())
    return np.concatenate(outs, axis=1)


geometries = st.builds(
    lambda window, hop, la, xf: (window, hop, la, xf),
    st.sampled_from([64, 256, 1024]),
    st.integers(1, 64),
    st.integers(0, 64),
    st.integers(0, 64),
).filter(lambda g: g[1] + g[2] <= g[0] and g[3] <= min(g[1], g[2]))


@settings(max_examples=40, deadline=None)
@given(geom=geometries, sizes=st.lists(st.integers(1, 700), min_size=1, max_size=6), channels=st.integers(1, 2), n=st.integers(1, 3000))
def test_block_by_block_equals_one_shot_and_identity_is_exact(geom, sizes, channels, n):
    window, hop, la, xf = geom
    g = Geometry(16000, window, hop, la, xf)
    x = np.random.default_rng(n).standard_normal((channels, n)).astype(np.float32)
    proc = PassthroughProcessor.at_rate(16000)
    blocky = stream(Streamer(proc, g, channels), x, sizes)
    one_shot = stream(Streamer(proc, g, channels), x, [n])
    assert blocky.shape == x.shape
    np.testing.assert_array_equal(blocky, one_shot)
    np.testing.assert_allclose(blocky, x, atol=1e-6)


def test_feed_lags_by_at_most_the_latency():
    g = Geometry(48000, 1024, 100, 30, 20)
    s = Streamer(PassthroughProcessor.at_rate(48000), g, 1)
    fed = produced = 0
    for n in [1, 99, 250, 7, 1000, 3]:
        produced += s.feed(np.zeros((1, n), np.float32)).shape[1]
        fed += n
        assert 0 <= fed - produced <= g.latency


@pytest.mark.parametrize("gain", [None, 0.5])
@pytest.mark.parametrize("sizes", [[256], [1], [1000, 37], [4096]])
def test_real_onnx_models_identity_and_half(onnx_model, gain, sizes):
    path = onnx_model(gain=gain, window=1024, hop=256, lookahead=128, crossfade=64)
    proc = OnnxProcessor(path)
    assert (proc.info.window, proc.info.hop, proc.info.lookahead) == (1024, 256, 128)
    g = Geometry(proc.info.sample_rate, proc.info.window, 200, 150, 100)
    x = np.random.default_rng(1).standard_normal((2, 9000)).astype(np.float32)
    y = stream(Streamer(proc, g, 2), x, sizes)
    np.testing.assert_allclose(y, x * (1.0 if gain is None else gain), atol=1e-6)


def test_dry_hops_join_smoothly_and_keep_timing(onnx_model):
    proc = OnnxProcessor(onnx_model(gain=0.5))
    g = Geometry(48000, 1024, 256, 128, 64)
    s = Streamer(proc, g, 1)
    x = np.ones((1, 256 * 40), np.float32)
    outs = [s.feed(x[:, i * 256 : (i + 1) * 256], dry=(10 <= i < 20)) for i in range(40)]
    y = np.concatenate(outs + [s.flush()], axis=1)[0]
    assert y.shape[0] == x.shape[1]
    assert s.dry_hops == 10
    assert np.all((y >= 0.5 - 1e-6) & (y <= 1 + 1e-6))  # only blends between wet (0.5) and dry (1)
    assert np.max(np.abs(np.diff(y))) < 0.5 / 64 * 2  # a crossfade, never a step
    assert np.isclose(y[100], 0.5) and np.isclose(y[256 * 15], 1.0)


def test_reset_forgets_history():
    g = Geometry(48000, 512, 128, 64, 32)
    s = Streamer(PassthroughProcessor.at_rate(48000), g, 1)
    s.feed(np.ones((1, 1000), np.float32))
    s.reset()
    x = np.random.default_rng(0).standard_normal((1, 700)).astype(np.float32)
    y = np.concatenate([s.feed(x), s.flush()], axis=1)
    np.testing.assert_allclose(y, x, atol=1e-6)


def test_model_nan_output_plays_dry_and_is_counted(onnx_model):
    """A model that returns NaN for some windows: those hops play the input, the rest is enhanced."""
    path = onnx_model(gain=float("nan"))
    proc = OnnxProcessor(path)
    g = Geometry(48000, 1024, 256, 128, 64)
    s = Streamer(proc, g, 1)
    x = np.random.default_rng(0).standard_normal((1, 5000)).astype(np.float32)
    y = np.concatenate([s.feed(x), s.flush()], axis=1)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, x, atol=1e-6)
    assert s.bad_hops > 0


def test_hop_timer_percentiles_in_constant_memory():
    from rt_enhance.realtime.streamer import HopTimer

    rng = np.random.default_rng(0)
    values = rng.lognormal(mean=0.0, sigma=1.0, size=200_000)  # ms
    timer = HopTimer()
    size = memoryview(timer._hist).nbytes + memoryview(timer._recent).nbytes
    for v in values:
        timer.add(v / 1000.0, 0.0, 1)
    assert memoryview(timer._hist).nbytes + memoryview(timer._recent).nbytes == size
    for q in (50, 90, 99, 99.9):
        assert abs(timer.percentile_ms(q) / np.percentile(values, q) - 1) < 0.02
    assert np.isclose(timer.max_ms, values.max()) and timer.hops == values.size
    np.testing.assert_allclose(timer.per_hop_ms(), values[-HopTimer.RECENT :], rtol=1e-12)
