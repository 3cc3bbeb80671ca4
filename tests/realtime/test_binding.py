"""Bound calls (fixed dimensions, preallocated inputs, outputs and states) give the dynamic session's samples."""

import numpy as np
import pytest
from helpers import write_stateful_delay_model

from rt_enhance.realtime.binding import dim_overrides
from rt_enhance.realtime.metadata import ModelError
from rt_enhance.realtime.processor import bundled_model_path, open_onnx

SHIPPED = bundled_model_path("speech-monitor")


def run_chunks(processor, x: np.ndarray, hops: list[int]) -> list[np.ndarray]:
    """Step through ``x`` ``[channels, samples]`` in chunks of ``hops[i]`` hops, cycling."""
    hop, out, i, k = processor.info.hop, [], 0, 0
    while i + hops[k % len(hops)] * hop <= x.shape[1]:
        n = hops[k % len(hops)] * hop
        out.append(processor.step(x[:, i : i + n]))
        i, k = i + n, k + 1
    return out


@pytest.mark.skipif(SHIPPED is None, reason="speech-monitor is not bundled")
def test_bound_calls_equal_the_dynamic_session_on_a_shipped_model():
    x = (0.1 * np.random.default_rng(0).standard_normal((2, 96 * 60))).astype(np.float32)
    dynamic, bound = open_onnx(SHIPPED), open_onnx(SHIPPED)
    hop = bound.info.hop
    bound.prepare(2, hop)
    bound.prepare(2, 5 * hop)
    dynamic.reset(2)
    bound.reset(2)
    pattern = [1, 1, 5, 3, 1, 5, 2]  # bound, bound, bound, dynamic, ...: the state crosses between them
    want, got = run_chunks(dynamic, x, pattern), run_chunks(bound, x, pattern)
    assert [y.shape for y in got] == [y.shape for y in want]
    np.testing.assert_allclose(np.concatenate(got, axis=1), np.concatenate(want, axis=1), atol=1e-5)
    assert bound._bound[(2, hop)].session is not bound.session  # its own session, dimensions fixed
    last = max(i for i, y in enumerate(got) if y.shape[1] == 5 * hop)
    np.testing.assert_array_equal(bound._bound[(2, 5 * hop)].y[:, 0, :], got[last])  # 5-hop calls ran bound
    long = (int(bound.FIXED_DIMS_MAX_SECONDS * bound.info.sample_rate) // hop + 1) * hop
    bound.prepare(1, long)
    assert bound._bound[(1, long)].session is bound.session  # file mode's long calls: bound on the dynamic session


def test_dimension_names_come_from_the_graph(tmp_path):
    proc = open_onnx(write_stateful_delay_model(str(tmp_path / "d.onnx"), delay=3, stride=4, hop=8))
    assert dim_overrides(proc.session, proc.spec, 2, 16) == {"batch": 2, "n": 16}


def test_a_bound_delay_model_keeps_its_state_across_resets(tmp_path):
    proc = open_onnx(write_stateful_delay_model(str(tmp_path / "d.onnx"), delay=3, stride=4, hop=8, gain=0.5))
    proc.prepare(1, 8)
    x = np.arange(1, 33, dtype=np.float32)[None]
    for _ in range(2):  # the second stream starts from zero state again
        proc.reset(1)
        y = np.concatenate([proc.step(x[:, i : i + 8]) for i in range(0, 32, 8)], axis=1)
        np.testing.assert_array_equal(y[0], 0.5 * np.concatenate([[0, 0, 0], x[0, :-3]]))


def test_prepare_refuses_a_call_size_off_the_stride(tmp_path):
    proc = open_onnx(write_stateful_delay_model(str(tmp_path / "d.onnx"), delay=3, stride=4, hop=8))
    with pytest.raises(ModelError, match="not a multiple of total_stride 4"):
        proc.prepare(1, 10)
