"""Reduced-precision variants of an exported model: fp16 weights and compute, and int8 dynamic
quantization (onnxruntime). They are reported against fp32, never failed on.

The fp16 converter is small and local (the train extra has no onnxconverter-common): every
float32 initializer and constant becomes float16, the graph computes in float16, and Cast nodes
keep the model's input and output float32, so the engine feeds the same arrays to every variant.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from rt_enhance.export.errors import ExportError
from rt_enhance.realtime.errors import first_line

logger = logging.getLogger(__name__)


def variant_path(out: Path, tag: str) -> Path:
    """``MODEL.onnx`` -> ``MODEL.<tag>.onnx``."""
    return out.with_name(f"{out.stem}.{tag}{out.suffix or '.onnx'}")


def to_fp16(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A float16 copy of ``proto`` with float32 input and output (Cast at both ends)."""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    graph = model.graph
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    for node in graph.node:
        _node_to_fp16(node)
    for value in list(graph.value_info):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.FLOAT16
    _cast_io(graph)
    return model


def _node_to_fp16(node: onnx.NodeProto) -> None:
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
            attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float16), attr.t.name))
        if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
            attr.i = TensorProto.FLOAT16


def _cast_io(graph: onnx.GraphProto) -> None:
    """Rename the graph's float inputs/outputs internally and bridge them with Cast nodes."""
    for inp in graph.input:
        inner = f"{inp.name}__fp16"
        for node in graph.node:
            node.input[:] = [inner if name == inp.name else name for name in node.input]
        graph.node.insert(0, helper.make_node("Cast", [inp.name], [inner], to=TensorProto.FLOAT16))
    for out in graph.output:
        inner = f"{out.name}__fp16"
        for node in graph.node:
            node.output[:] = [inner if name == out.name else name for name in node.output]
            node.input[:] = [inner if name == out.name else name for name in node.input]
        graph.node.append(helper.make_node("Cast", [inner], [out.name], to=TensorProto.FLOAT))


def write_int8(src: Path, dst: Path) -> None:
    """onnxruntime dynamic quantization of ``src`` to ``dst`` (after its pre-processing pass; uint8
    weights, which CPU ConvInteger supports)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(src, prepared)
            quantize_dynamic(prepared, dst, weight_type=QuantType.QUInt8)
        except Exception as exc:  # onnxruntime raises many types; one line for the user
            raise ExportError(f"int8 quantization of {src} failed: {first_line(exc)}") from exc
