"""A cost-equal probe of a model: ``gain * input + 0 * model(input)``.

An untrained (or any real) model changes a click beyond recognition, so a loopback client
cannot find it in the output. The probe runs the whole model (onnxruntime does not fold a
product with zero: ``0 * x`` is not 0 for NaN or infinite x), so every hop costs what the model
costs, but what comes out is the input scaled by ``gain``: a click survives to the sample, and
with ``gain != 1`` an enhanced sample can be told from the engine's dry fallback (gain 1).
"""

from __future__ import annotations

import json
import logging

from rt_enhance.realtime.errors import RtEnhanceError
from rt_enhance.realtime.fileio import replacing

logger = logging.getLogger(__name__)


class ProbeUnavailable(RtEnhanceError, RuntimeError):
    """The probe cannot be built (no onnx package, or an unexpected graph); one line."""


def write_probe(src: str, dst: str, *, gain: float = 1.0) -> str:
    """Write the probe of ONNX model ``src`` (first input the audio, first output the enhanced audio) to ``dst``.

    A windowed model's output is aligned with its input window, so the probe passes the input.
    A streaming (stateful) model's output is ``lookahead`` samples late, so the probe passes the
    input through a delay line of that length, kept as one more state tensor (``probe_delay``,
    appended to the metadata's ``state_*`` lists): the engine times it exactly as the model.
    """
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        raise ProbeUnavailable("the click probe needs the onnx package (pip install onnx), or pass --raw") from None
    model = onnx.load(src)
    graph = model.graph
    props = {p.key: p.value for p in model.metadata_props}
    stateful = props.get("kind") == "stateful"
    if (len(graph.input) != 1 and not stateful) or not graph.output:
        raise ProbeUnavailable(f"{src}: expected one input and an output, got {len(graph.input)} inputs")
    x, y = graph.input[0].name, graph.output[0].name
    inner = f"{y}__probe_model"
    for node in graph.node:
        node.output[:] = [inner if name == y else name for name in node.output]
        node.input[:] = [inner if name == y else name for name in node.input]
    passed = _delay_line(model, x, int(props.get("lookahead", 0))) if stateful else x
    graph.initializer.extend(
        [
            helper.make_tensor("probe_zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("probe_gain", TensorProto.FLOAT, [], [float(gain)]),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Mul", [inner, "probe_zero"], ["probe_nothing"]),
            helper.make_node("Mul", [passed, "probe_gain"], ["probe_scaled"]),
            helper.make_node("Add", ["probe_scaled", "probe_nothing"], [y]),
        ]
    )
    onnx.checker.check_model(model)
    with replacing(dst) as tmp:
        onnx.save(model, str(tmp))
    return dst


def _delay_line(model, x: str, delay: int) -> str:
    """Add state ``probe_delay`` ``[batch, 1, delay]`` and return the name of ``x`` delayed by ``delay``."""
    if delay <= 0:
        return x
    from onnx import TensorProto, helper

    graph = model.graph
    big = 2**62
    graph.input.append(helper.make_tensor_value_info("probe_delay", TensorProto.FLOAT, ["batch", 1, delay]))
    graph.output.append(helper.make_tensor_value_info("next_probe_delay", TensorProto.FLOAT, ["batch", 1, delay]))
    graph.initializer.extend(
        [
            helper.make_tensor(name, TensorProto.INT64, [1], [value])
            for name, value in (("probe_zero_i", 0), ("probe_minus_delay", -delay), ("probe_end", big), ("probe_axis", 2))
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Concat", ["probe_delay", x], ["probe_cat"], axis=2),
            helper.make_node("Slice", ["probe_cat", "probe_zero_i", "probe_minus_delay", "probe_axis"], ["probe_delayed"]),
            helper.make_node("Slice", ["probe_cat", "probe_minus_delay", "probe_end", "probe_axis"], ["next_probe_delay"]),
        ]
    )
    meta = {p.key: p for p in model.metadata_props}
    for key, value in (("state_inputs", "probe_delay"), ("state_outputs", "next_probe_delay"), ("state_shapes", [-1, 1, delay])):
        meta[key].value = json.dumps([*json.loads(meta[key].value), value])
    return "probe_delayed"
