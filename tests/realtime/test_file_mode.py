"""File mode's big steps give the live path's samples: a shipped streaming model, whole blocks
per call against one hop per call, on one core and as the two-stage pipeline on two."""

import numpy as np
import pytest
import soundfile as sf

from rt_enhance.realtime import offline
from rt_enhance.realtime.audio_io import FileSink, FileSource
from rt_enhance.realtime.geometry import resolve_stateful
from rt_enhance.realtime.processor import bundled_model_path, open_onnx
from rt_enhance.realtime.streamer import Streamer

SHIPPED = bundled_model_path("speech-monitor")


def streamer(channels: int, threads: int = 1) -> Streamer:
    proc = open_onnx(SHIPPED, threads=threads)
    i = proc.info
    g = resolve_stateful(
        sample_rate=i.sample_rate, receptive_field=i.window, default_hop=i.hop, lookahead=i.lookahead, stride=i.total_stride
    )
    return Streamer(proc, g, channels)


def live_hops(x: np.ndarray) -> np.ndarray:
    """``x`` ``[channels, samples]`` fed one hop at a time, as the live worker does, then flushed."""
    s = streamer(x.shape[0])
    s.prepare(1)
    hop = s.geometry.hop
    return np.concatenate([s.feed(x[:, i : i + hop]) for i in range(0, x.shape[1], hop)] + [s.flush()], axis=1)


@pytest.mark.skipif(SHIPPED is None, reason="speech-monitor is not bundled")
def test_file_mode_in_big_steps_equals_the_live_hops(tmp_path):
    rng = np.random.default_rng(3)
    t = np.arange(int(48000 * 1.37)) / 48000
    x = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 1250 * t)]) + 0.05 * rng.standard_normal((2, t.size))
    x = x.astype(np.float32)
    sf.write(tmp_path / "in.wav", x.T, 48000, subtype="FLOAT")
    s = streamer(2)
    sink = FileSink(str(tmp_path / "out.wav"), rate=48000, channels=2, subtype="FLOAT")
    offline.enhance_file(FileSource(str(tmp_path / "in.wav")), [sink], s)
    sink.close()
    y, _ = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    hops = offline.block_hops(s.geometry)
    assert hops * s.geometry.hop >= 0.1 * 48000  # 100 ms or more per call
    assert (2, hops * s.geometry.hop) in s.processor._bound  # and those calls ran bound
    want = live_hops(x)
    assert y.T.shape == want.shape == x.shape
    np.testing.assert_allclose(y.T, want, atol=1e-5)
    assert np.abs(want).max() > 0.1  # the model passes the tones: a real signal was compared


@pytest.mark.skipif(SHIPPED is None, reason="speech-monitor is not bundled")
def test_file_mode_on_two_cores_runs_the_two_stage_pipeline_and_equals_the_live_hops(tmp_path):
    rng = np.random.default_rng(4)
    t = np.arange(int(48000 * 9.3)) / 48000  # one 8 s block of 16 parts, then a shorter block
    x = np.stack([0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.size)]).astype(np.float32)
    sf.write(tmp_path / "in.wav", x.T, 48000, subtype="FLOAT")
    s = streamer(1, threads=2)
    assert s.processor.pipeline_parts == 16
    hops = offline.block_hops(s.geometry, s.processor)
    assert hops * s.geometry.hop == 8 * 48000  # sixteen half-second parts per call
    sink = FileSink(str(tmp_path / "out.wav"), rate=48000, channels=1, subtype="FLOAT")
    offline.enhance_file(FileSource(str(tmp_path / "in.wav")), [sink], s)
    sink.close()
    y, _ = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    staged = s.processor._staged[1]
    assert staged.part * 16 == hops * s.geometry.hop and (1, hops * s.geometry.hop) not in s.processor._bound
    want = live_hops(x)
    assert y.T.shape == want.shape == x.shape
    np.testing.assert_allclose(y.T, want, atol=1e-5)
    assert np.abs(want).max() > 0.1
