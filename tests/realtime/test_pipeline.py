"""The two-stage cut of a recurrent step graph (realtime/pipeline.py): the shipped models cut, run part by part
on two threads equal one call of the whole graph, graphs with no recurrence or several are left whole, and all
of it works on the runtime install (no onnx package: realtime/onnx_proto.py)."""

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from rt_enhance.realtime import onnx_proto, pipeline
from rt_enhance.realtime.processor import bundled_model_path, open_onnx

SPEECH = bundled_model_path("speech")


@pytest.mark.skipif(SPEECH is None, reason="speech is not bundled")
@pytest.mark.parametrize("channels", [1, 2])
def test_two_stages_on_two_threads_equal_the_whole_graph(channels):
    whole, staged = open_onnx(SPEECH), open_onnx(SPEECH, threads=2)
    assert (whole.pipeline_parts, staged.pipeline_parts) == (1, pipeline.PARTS)
    n = pipeline.PARTS * 24000
    for p in (whole, staged):
        p.prepare(channels, n)
        p.reset(channels)
    stages = staged._staged[channels]
    assert stages.part == 24000 and stages.stages.a_states and stages.stages.b_states  # both stages keep state
    x = (0.1 * np.random.default_rng(1).standard_normal((channels, 2 * n + 24000 + 480))).astype(np.float32)
    calls = [(0, n), (n, 2 * n), (2 * n, x.shape[1])]  # two whole blocks, then one part and a remainder
    want = np.concatenate([whole.step(x[:, a:b]) for a, b in calls], axis=1)
    got = np.concatenate([staged.step(x[:, a:b]) for a, b in calls], axis=1)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert np.abs(want).max() > 1e-3
    for a, b in zip(whole._states, staged._states):  # the states carried on are the same too, within float rounding
        np.testing.assert_allclose(b, a, atol=1e-5)  # (the whole graph's long calls run the dynamic session's kernels)


def graph_with(*ops: str) -> onnx.ModelProto:
    nodes, name = [], "audio"
    for k, op in enumerate(ops):
        nodes.append(helper.make_node(op, [name], [f"t{k}"]))
        name = f"t{k}"
    nodes.append(helper.make_node("Identity", [name], ["enhanced"]))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, 1, 8])],
        [helper.make_tensor_value_info("enhanced", TensorProto.FLOAT, [1, 1, 8])],
    )
    return helper.make_model(graph)


@pytest.mark.parametrize(("ops", "count"), [(("Relu",), 0), (("GRU", "Relu", "GRU"), 2), (("Relu", "LSTM", "RNN"), 2)])
def test_graphs_without_exactly_one_recurrence_are_not_cut(ops, count):
    model = graph_with(*ops).SerializeToString()
    assert pipeline.recurrences(model) == count
    assert pipeline.split(model, lambda stage: pytest.fail("no stage should be opened")) is None


@pytest.mark.skipif(SPEECH is None, reason="speech is not bundled")
def test_the_protobuf_subset_writes_back_every_field_it_does_not_declare():
    with open(SPEECH, "rb") as f:
        data = f.read()
    model = onnx_proto.load(data)
    again = onnx.load_from_string(model.SerializeToString())
    original = onnx.load_from_string(data)
    assert again == original  # weights, attributes, opsets and metadata included
    assert [n.op_type for n in model.graph.node] == [n.op_type for n in original.graph.node]


NO_ONNX = """
import importlib.abc, sys
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("onnx", "torch"):
            raise ImportError(name + " is blocked: runtime install")
sys.meta_path.insert(0, Blocked())
import numpy as np
from rt_enhance.realtime.processor import open_onnx
p = open_onnx(sys.argv[1], threads=2)
p.prepare(1, 16 * 24000)
p.reset(1)
y = p.step(np.zeros((1, 16 * 24000), np.float32))
print(sorted(p._staged), y.shape)
"""


@pytest.mark.skipif(SPEECH is None, reason="speech is not bundled")
def test_the_pipeline_needs_neither_onnx_nor_torch():
    done = subprocess.run([sys.executable, "-c", NO_ONNX, SPEECH], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[1]", "(1,", "384000)"]


@pytest.mark.skipif(SPEECH is None, reason="speech is not bundled")
def test_a_graph_that_fails_to_cut_runs_whole_and_says_so(monkeypatch, caplog):
    def broken(model, open_session):
        raise RuntimeError("no space left on device")

    monkeypatch.setattr(pipeline, "split", broken)
    staged, whole = open_onnx(SPEECH, threads=2), open_onnx(SPEECH)
    n = pipeline.PARTS * 24000
    for p in (staged, whole):
        p.prepare(1, n)
        p.reset(1)
    assert staged._staged == {} and (1, n) in staged._bound
    assert "no two-stage pipeline: no space left on device" in caplog.text
    x = (0.1 * np.random.default_rng(2).standard_normal((1, n))).astype(np.float32)
    np.testing.assert_allclose(staged.step(x), whole.step(x), atol=1e-6)
