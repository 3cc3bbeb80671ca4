"""Export one model end to end: trace, check, attach metadata, prove parity, write atomically,
then the optional fp16 / int8 variants.

A failed check leaves nothing under the output name: the model is written to a temporary file,
verified there with onnxruntime, and only then ``os.replace``d into place. Streaming models
(:class:`~rt_enhance.model.base.StreamingModel`) export as a stateful step through
:func:`rt_enhance.export.streaming.export_streaming` instead.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from rt_enhance.export.errors import ExportError
from rt_enhance.export.metadata import EngineDefaults, attach, info_props, model_info
from rt_enhance.export.parity import (
    ErrorFigure,
    check_fp32,
    compare,
    ort_outputs,
    parity_inputs,
    torch_reference,
)
from rt_enhance.export.to_onnx import DEFAULT_OPSET, check_onnx, export_onnx
from rt_enhance.export.variants import to_fp16, variant_path, write_int8
from rt_enhance.model.base import AudioModel, StreamingModel
from rt_enhance.realtime.fileio import replacing
from rt_enhance.realtime.metadata import ModelInfo, parse_props

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportReport:
    """What was written and how close each file is to torch."""

    path: Path
    info: ModelInfo
    fp32: list[ErrorFigure]
    variants: dict[str, tuple[Path, list[ErrorFigure]]] = field(default_factory=dict)


def export_model(
    model: AudioModel,
    out: str | os.PathLike,
    geometry: EngineDefaults,
    *,
    task: str = "denoise",
    meta: dict[str, Any] | None = None,
    checkpoint_sha256: str | None = None,
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
    int8: bool = False,
) -> ExportReport:
    """Export ``model`` to ``out`` with ``geometry`` as the engine defaults; raise :class:`ExportError`
    if the checker or the float32 parity check (1e-4 relative) fails.
    """
    out = Path(out)
    if isinstance(model, StreamingModel):
        raise ExportError(f"{type(model).__name__} is a streaming model: export it with export_streaming (rt-export does)")
    if model.sample_rate != geometry.sample_rate:
        raise ExportError(f"the model was built for {model.sample_rate} Hz, not {geometry.sample_rate} Hz")
    info = model_info(model, geometry, task=task, meta=meta, checkpoint_sha256=checkpoint_sha256)
    proto = export_onnx(model, window=geometry.window, opset=opset)
    attach(proto, info_props(info))
    inputs = parity_inputs(geometry.window, geometry.sample_rate)
    reference = torch_reference(model, inputs)
    figures = _write_verified(proto, out, inputs, reference, info)
    report = ExportReport(out, info, figures)
    if fp16:
        report.variants["fp16"] = _fp16_variant(proto, out, inputs, reference, info)
    if int8:
        report.variants["int8"] = _int8_variant(out, inputs, reference, info)
    return report


def _write_verified(
    proto: onnx.ModelProto, out: Path, inputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], info: ModelInfo
) -> list[ErrorFigure]:
    with replacing(out) as tmp:
        onnx.save(proto, tmp)
        figures = compare(ort_outputs(str(tmp), inputs), reference)
        check_fp32(figures)
        check_metadata(str(tmp), info)
    logger.info("wrote %s", out)
    return figures


def check_metadata(path: str, info: ModelInfo) -> None:
    """Read the metadata back through onnxruntime and the engine's parser; it must equal ``info``."""
    props = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    read = parse_props(dict(props), source=path)
    if read != info:
        raise ExportError(f"{path}: metadata read back by onnxruntime differs from what was written")


def _fp16_variant(
    proto: onnx.ModelProto, out: Path, inputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], info: ModelInfo
) -> tuple[Path, list[ErrorFigure]]:
    half = to_fp16(proto)
    attach(half, info_props(info, precision="fp16"))
    check_onnx(half)
    path = variant_path(out, "fp16")
    onnx.save(half, path)
    return path, _variant_figures(path, inputs, reference)


def _int8_variant(
    out: Path, inputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], info: ModelInfo
) -> tuple[Path, list[ErrorFigure]]:
    path = variant_path(out, "int8")
    write_int8(out, path)
    quantized = onnx.load(path)
    attach(quantized, info_props(info, precision="int8"))
    onnx.save(quantized, path)
    return path, _variant_figures(path, inputs, reference)


def _variant_figures(path: Path, inputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> list[ErrorFigure]:
    return compare(ort_outputs(str(path), inputs), reference)
