"""torch -> ONNX for windowed models: one input ``audio`` and one output ``enhanced``, float32
``[batch, 1, window]``, batch dynamic, window fixed. Eval mode (dropout off), legacy TorchScript
exporter (``dynamo=False``; the dynamo exporter needs onnxscript, which the train extra lacks).
"""

from __future__ import annotations

import io
import logging
import warnings
from typing import Any

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from rt_enhance.export.errors import ExportError
from rt_enhance.export.options import DEFAULT_OPSET
from rt_enhance.model.base import AudioModel
from rt_enhance.realtime.errors import first_line

logger = logging.getLogger(__name__)

INPUT_NAME = "audio"
OUTPUT_NAME = "enhanced"

#: The dynamic axes of each named input and output: ``{name: {axis: label}}``.
Axes = dict[str, dict[int, str]]


def export_onnx(model: AudioModel, *, window: int, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Trace ``model`` on ``[1, 1, window]`` and return the checked ONNX model (no metadata yet)."""
    model.check_window(window)
    model.eval()
    example = torch.zeros(1, 1, window)
    check_windowed(model, example)
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
    return trace(model, (example,), inputs=[INPUT_NAME], outputs=[OUTPUT_NAME], axes=axes, opset=opset)


def trace(
    module: torch.nn.Module, example: tuple[torch.Tensor, ...], *, inputs: list[str], outputs: list[str], axes: Axes, opset: int
) -> onnx.ModelProto:
    """Trace ``module`` on ``example`` with the legacy exporter (its warnings silenced) and return the checked ONNX
    model: inputs and outputs named ``inputs`` / ``outputs``, ``axes`` dynamic."""
    buffer = io.BytesIO()
    target: Any = buffer  # the legacy exporter writes to a file object too; torch's stub allows only a path
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)  # the legacy exporter, on purpose
        # "batch_size other than 1 ... with GRU": the batch axes are dynamic (streaming parity runs batch 2)
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
        # strided slices (the sub-pixel shuffle, the DFT's rows) are left to onnxruntime's folding; nothing to act on
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1 can be constant folded")
        torch.onnx.export(  # constant folding is on by default
            module, example, target, input_names=inputs, output_names=outputs, opset_version=opset, dynamic_axes=axes, dynamo=False
        )
    proto = onnx.load_from_string(buffer.getvalue())
    prelu_as_max(proto)
    check_onnx(proto)
    return proto


def prelu_as_max(proto: onnx.ModelProto) -> int:
    """Rewrite each ``PRelu`` whose slopes are constants of at most 1 as ``Max(x, slope * x)`` (the same
    value to the last bit: for ``a <= 1``, ``a x <= x`` when ``x >= 0`` and ``a x >= x`` when ``x < 0``), in
    place; return how many. onnxruntime runs PRelu with a per-channel slope element by element, ~10x slower
    than a broadcast ``Mul`` and a ``Max`` on a block of frames (file mode); one frame costs the same."""
    constants = {t.name: t for t in proto.graph.initializer}
    nodes, rewritten = [], 0
    for node in proto.graph.node:
        slope = constants.get(node.input[1]) if node.op_type == "PRelu" else None
        if slope is not None and np.all(numpy_helper.to_array(slope) <= 1.0):
            x, (out,) = node.input[0], node.output
            nodes.append(helper.make_node("Mul", [x, node.input[1]], [f"{out}_scaled"], name=f"{node.name}_mul"))
            nodes.append(helper.make_node("Max", [x, f"{out}_scaled"], [out], name=f"{node.name}_max"))
            rewritten += 1
        else:
            nodes.append(node)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    return rewritten


def check_windowed(model: AudioModel, example: torch.Tensor) -> None:
    """Raise :class:`ExportError` unless ``model`` maps ``[batch, 1, window]`` to the same shape."""
    with torch.no_grad():
        shape = tuple(model(example).shape)
    if shape != tuple(example.shape):
        raise ExportError(
            f"{type(model).__name__} maps {list(example.shape)} to {list(shape)}; only windowed enhancers "
            "(same shape in and out, e.g. Generator) export for the engine"
        )


def check_onnx(proto: onnx.ModelProto) -> None:
    """Run the ONNX checker (with shape inference); raise :class:`ExportError` on failure."""
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"the ONNX checker rejected the exported model: {first_line(exc)}") from None
