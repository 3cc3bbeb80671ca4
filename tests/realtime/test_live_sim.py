"""The live engine in simulated time: constant delay through a worker stall, and an hour-long soak."""

import os

import numpy as np
import pytest

from rt_enhance.realtime.geometry import Geometry
from rt_enhance.realtime.live import LiveEngine
from rt_enhance.realtime.processor import OnnxProcessor
from rt_enhance.realtime.simulate import simulate_duplex
from rt_enhance.realtime.streamer import Streamer


def click_train(every: int, amplitude: float = 0.8, channels: int = 1):
    def signal(first: int, frames: int) -> np.ndarray:
        x = np.zeros((frames, channels), np.float32)
        x[(-first) % every :: every] = amplitude
        return x

    return signal


def engine_for(processor, geometry: Geometry, channels: int = 1) -> LiveEngine:
    from rt_enhance.realtime.devices import Device

    device = Device(0, "simulated", "none", channels, 48000, 0.0)
    return LiveEngine(
        streamer=Streamer(processor, geometry, channels), device_rate=48000, input_device=device, output_device=device, limit_knee=0.0
    )


def test_a_500ms_worker_stall_keeps_the_delay_and_recovers_within_two_hops(onnx_model):
    g = Geometry(48000, 1024, 240, 240, 120)
    engine = engine_for(OnnxProcessor(onnx_model(gain=0.5)), g)
    block, every = 256, 96
    outputs = []
    stall = (400, 400 + 94)  # 94 blocks of 256 = 501 ms without the worker
    simulate_duplex(
        engine, click_train(every), blocks=800, block=block, stall=stall, observe=lambda i, x, y: outputs.append(y[:, 0].copy())
    )
    y = np.concatenate(outputs)
    d = engine.delay
    assert d == 240 + 240 + 256 - 16
    clicks = np.flatnonzero(y > 0.1)
    np.testing.assert_array_equal((clicks - d) % every, 0)  # every click at input + D, always
    levels = y[clicks]
    assert np.all((levels > 0.4 - 1e-5) & (levels < 0.8 + 1e-5))  # enhanced (x0.5), dry, or a crossfade
    stall_start, stall_end = stall[0] * block, stall[1] * block
    not_wet = clicks[~np.isclose(levels, 0.4)]
    assert np.isclose(levels, 0.8).sum() > 0.8 * 0.5 * 48000 / every  # the stall played dry
    assert not_wet.min() >= stall_start - block and not_wet.max() < stall_end + 2 * g.hop + block  # only around it
    late = clicks[clicks >= stall_end + 2 * g.hop + block]
    assert np.allclose(y[late], 0.4)  # enhanced again within two hops of the worker's return
    assert engine.status().missed_samples > 0


@pytest.mark.slow
def test_one_hour_soak_memory_and_counts_do_not_drift(onnx_model):
    """One hour of 48 kHz stereo at 256-frame callbacks through an ONNX model, in simulated time."""
    g = Geometry(48000, 1024, 256, 128, 64)
    engine = engine_for(OnnxProcessor(onnx_model(gain=0.5)), g, channels=2)
    block = 256
    blocks = 3600 * 48000 // block
    noise = np.random.default_rng(0).standard_normal((block * 64, 2)).astype(np.float32) * 0.1
    state = {"rss0": 0, "rss_max": 0, "worst_gap": 0}

    def signal(first, frames):
        start = first % noise.shape[0]
        return noise[start : start + frames]

    def rss_bytes() -> int:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def observe(i, x, y):
        status = engine.status()
        ahead = status.watermark - (status.input_samples - status.delay)
        state["worst_gap"] = min(state["worst_gap"], ahead)
        if i == 48000 * 60 // block:
            state["rss0"] = rss_bytes()
        if i % 20000 == 0 and i:
            state["rss_max"] = max(state["rss_max"], rss_bytes())

    simulate_duplex(engine, signal, blocks=blocks, block=block, observe=observe)
    status = engine.status()
    assert status.input_samples == blocks * block  # input count exact after an hour
    assert state["worst_gap"] >= 0 and status.missed_samples == 0  # output never fell behind its delay
    assert engine.streamer.samples_in == blocks * block
    assert state["rss_max"] - state["rss0"] <= 5 * 1024 * 1024
