"""torch -> ONNX for windowed models: one input ``audio`` and one output ``enhanced``, float32
``[batch, 1, window]``, batch dynamic, window fixed. Eval mode (dropout off), legacy TorchScript
exporter (``dynamo=False``; the dynamo exporter needs onnxscript, which the train extra lacks).
"""

from __future__ import annotations

import io
import logging
import warnings
from typing import Any

import onnx
import torch

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
        torch.onnx.export(  # constant folding is on by default
            module, example, target, input_names=inputs, output_names=outputs, opset_version=opset, dynamic_axes=axes, dynamo=False
        )
    proto = onnx.load_from_string(buffer.getvalue())
    check_onnx(proto)
    return proto


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
