"""The engine's stateful path with a real stateful ONNX model (a delay line held in its state)."""

import json

import numpy as np
import pytest
import soundfile as sf
from helpers import run_cli, write_noise_wav, write_stateful_delay_model
from hypothesis import given, settings
from hypothesis import strategies as st

from rt_enhance.realtime.geometry import GeometryError, resolve_stateful
from rt_enhance.realtime.metadata import ModelError, parse_props
from rt_enhance.realtime.processor import StatefulOnnxProcessor, open_onnx
from rt_enhance.realtime.streamer import Streamer, build_streamer


@pytest.fixture(scope="module")
def delay_model(tmp_path_factory):
    return write_stateful_delay_model(str(tmp_path_factory.mktemp("m") / "delay.onnx"), delay=3, stride=4, hop=8, gain=0.5)


def streamer_for(path: str, channels: int, hop: str | None = None) -> Streamer:
    return build_streamer(open_onnx(path), channels, hop=hop)


def test_open_onnx_reads_the_state_contract(delay_model):
    proc = open_onnx(delay_model)
    assert isinstance(proc, StatefulOnnxProcessor)
    assert proc.info.kind == "stateful" and proc.info.lookahead == 3 and proc.info.total_stride == 4
    assert proc.spec.inputs == ("state",) and proc.spec.shapes == ((-1, 1, 3),)


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 500), min_size=1, max_size=5), hop=st.sampled_from(["4", "8", "12", "64"]), channels=st.integers(1, 2))
def test_streaming_model_output_is_aligned_and_block_size_free(delay_model, sizes, hop, channels):
    x = np.random.default_rng(len(sizes)).standard_normal((channels, 2000)).astype(np.float32)
    s = streamer_for(delay_model, channels, hop)
    outs, i, k = [], 0, 0
    while i < x.shape[1]:
        n = sizes[k % len(sizes)]
        outs.append(s.feed(x[:, i : i + n]))
        i, k = i + n, k + 1
    y = np.concatenate(outs + [s.flush()], axis=1)
    np.testing.assert_allclose(y, 0.5 * x, atol=1e-7)  # the model's lag is removed exactly


def test_reset_starts_a_fresh_stream(delay_model):
    s = streamer_for(delay_model, 1)
    s.feed(np.ones((1, 100), np.float32))
    s.reset()
    x = np.random.default_rng(0).standard_normal((1, 300)).astype(np.float32)
    y = np.concatenate([s.feed(x), s.flush()], axis=1)
    np.testing.assert_allclose(y, 0.5 * x, atol=1e-7)  # no leftover state from the first stream


def test_hop_must_be_a_multiple_of_the_stride_and_lookahead_is_fixed(delay_model):
    with pytest.raises(GeometryError, match="multiple of 4"):
        streamer_for(delay_model, 1, hop="10")
    with pytest.raises(GeometryError, match="fixed lookahead of 3"):
        resolve_stateful(sample_rate=48000, receptive_field=4, default_hop=8, lookahead=3, stride=4, lookahead_flag="5")
    assert resolve_stateful(sample_rate=48000, receptive_field=4, default_hop=8, lookahead=3, stride=4, preset="monitor").hop == 120


def test_missing_state_metadata_is_refused():
    props = {
        "sample_rate": "48000",
        "window": "4",
        "hop": "8",
        "lookahead": "3",
        "crossfade": "0",
        "kind": "stateful",
        "total_stride": "4",
        "state_inputs": json.dumps(["state"]),
        "state_outputs": json.dumps(["next_state"]),
    }
    with pytest.raises(ModelError, match="'state_shapes' is missing"):
        parse_props(props, "m.onnx")


def test_cli_file_mode_with_a_stateful_model(tmp_path, delay_model):
    src, dst = str(tmp_path / "in.wav"), str(tmp_path / "out.wav")
    x = write_noise_wav(src, rate=48000, channels=2, seconds=0.5)
    done = run_cli("--in", src, "--out", dst, "--model", delay_model, "--latency", "monitor", "--stats-json", str(tmp_path / "s.json"))
    assert done.returncode == 0, done.stderr
    y, _ = sf.read(dst, dtype="float32", always_2d=True)
    np.testing.assert_allclose(y, 0.5 * x, atol=1e-6)
    record = json.loads((tmp_path / "s.json").read_text())
    assert record["hop"] == 120 and record["latency_samples"] == 120 + 3


def test_stateful_nan_output_plays_dry_and_restarts_the_state(tmp_path):
    path = write_stateful_delay_model(str(tmp_path / "nan.onnx"), delay=3, stride=4, hop=8, gain=float("nan"))
    s = streamer_for(path, 1)
    x = np.random.default_rng(0).standard_normal((1, 400)).astype(np.float32)
    y = np.concatenate([s.feed(x[:, :200]), s.feed(x[:, 200:]), s.flush()], axis=1)
    np.testing.assert_allclose(y, x, atol=1e-7)  # dry, still aligned
    assert s.bad_hops > 0
