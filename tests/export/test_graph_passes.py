"""The exported graph's rewrites: PRelu with slopes of at most 1 becomes ``Max(x, a x)``, equal to the last bit."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper
from torch import nn

from rt_enhance.export.to_onnx import prelu_as_max, trace


def ops(proto: onnx.ModelProto) -> list[str]:
    return [node.op_type for node in proto.graph.node]


def run(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_prelu_with_slopes_up_to_one_becomes_max_with_the_same_bits():
    below = np.array([-0.3, 0.0, 0.25, 1.0], np.float32).reshape(4, 1)  # negative, zero, ordinary and unit slopes
    above = np.array([0.1, 1.5, 0.2, 0.3], np.float32).reshape(4, 1)  # one slope above 1: max(x, a x) would be wrong
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "below"], ["h"]), helper.make_node("PRelu", ["h", "above"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, 64])],
        initializer=[onnx.numpy_helper.from_array(below, "below"), onnx.numpy_helper.from_array(above, "above")],
    )
    original = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    rewritten = copy.deepcopy(original)
    assert prelu_as_max(rewritten) == 1
    assert ops(rewritten) == ["Mul", "Max", "PRelu"]
    onnx.checker.check_model(rewritten, full_check=True)
    x = np.random.default_rng(0).standard_normal((2, 4, 64)).astype(np.float32)
    x[0, :, :4] = [0.0, -0.0, 1e-30, -1e-30]  # zeros and tiny values of both signs
    np.testing.assert_array_equal(run(rewritten, x), run(original, x))


def test_exported_graphs_carry_the_rewrite():
    model = nn.Sequential(nn.Conv1d(1, 4, 3, padding=1), nn.PReLU(4)).eval()  # slopes start at 0.25
    x = torch.randn(2, 1, 64)
    proto = trace(model, (x,), inputs=["x"], outputs=["y"], axes={"x": {0: "batch"}}, opset=17)
    assert "PRelu" not in ops(proto) and "Max" in ops(proto)
    with torch.no_grad():
        np.testing.assert_allclose(run(proto, x.numpy()), model(x).numpy(), atol=1e-6)
