"""Export a streaming model (:class:`~rt_enhance.model.base.StreamingModel`: ``CausalUNet``,
``SpectralUNet``) as one stateful ONNX step.

The graph (the ``stateful`` contract of :mod:`rt_enhance.realtime.metadata`, the pattern of
GTCRN's shipped ONNX and DeepFilterNet's streaming graphs)::

    inputs   audio [batch, 1, n]   state_<name> ...   (n: any multiple of total_stride)
    outputs  enhanced [batch, 1, n]   next_state_<name> ...

with batch and ``n`` dynamic, every state's batch axis dynamic (axis 1 for the GRU's
``[1, batch, hidden]``), and metadata naming the states, their shapes (``-1`` = batch) and their
initial value (zeros).

Parity fails loudly: the ONNX checker, then onnxruntime runs the step hop by hop, state carried,
over a few seconds of seeded noise for several hop sizes (and one run of random chunk sizes, as
the engine calls it with several hops at once), and each result must equal the torch ``forward``
over the whole signal to 1e-4 relative error; finally the engine's own loader must open the file
as a stateful model and reproduce the same output. A failure raises :class:`ExportError` and
leaves no file at ``out``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from rt_enhance.export.errors import ExportError
from rt_enhance.export.metadata import TASKS, _optional, attach, common_extra, info_props
from rt_enhance.export.parity import ORT_ERRORS, ErrorFigure, check_fp32, compare
from rt_enhance.export.pipeline import ExportReport, check_metadata
from rt_enhance.export.to_onnx import DEFAULT_OPSET, INPUT_NAME, OUTPUT_NAME, trace
from rt_enhance.model.base import StreamingModel
from rt_enhance.realtime.errors import first_line
from rt_enhance.realtime.fileio import replacing
from rt_enhance.realtime.metadata import ModelError, ModelInfo
from rt_enhance.realtime.processor import StatefulOnnxProcessor, open_onnx

logger = logging.getLogger(__name__)

PARITY_SECONDS = 3.0
PARITY_BATCH = 2
ENGINE_SECONDS = 0.5  # the engine-loader check runs on the first half second


class StepGraph(nn.Module):
    """``model.step`` with flat tensors: ``(audio, *states) -> (enhanced, *new_states)``."""

    def __init__(self, model: StreamingModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, audio: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        enhanced, new = self.model.step(audio, list(states))
        return (enhanced, *new)


def state_io_names(model: StreamingModel) -> tuple[list[str], list[str]]:
    """ONNX names of the state inputs (``state_down0``...) and outputs (``next_state_down0``...)."""
    names = model.state_names()
    return [f"state_{n}" for n in names], [f"next_state_{n}" for n in names]


def export_step(model: StreamingModel, *, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Trace ``model.step`` (eval mode, legacy exporter) and return the checked ONNX model, no metadata yet."""
    model.eval()
    state_in, state_out = state_io_names(model)
    axes = {INPUT_NAME: {0: "batch", 2: "samples"}, OUTPUT_NAME: {0: "batch", 2: "samples"}}
    for name_in, name_out, shape in zip(state_in, state_out, model.state_shapes()):
        axes[name_in] = axes[name_out] = {shape.index(-1): "batch"}
    example = (torch.zeros(PARITY_BATCH, 1, 2 * model.total_stride), *model.initial_state(PARITY_BATCH))
    return trace(StepGraph(model), example, inputs=[INPUT_NAME, *state_in], outputs=[OUTPUT_NAME, *state_out], axes=axes, opset=opset)


def streaming_info(
    model: StreamingModel,
    *,
    hop: int,
    task: str = "denoise",
    meta: dict[str, Any] | None = None,
    checkpoint_sha256: str | None = None,
) -> ModelInfo:
    """The ``stateful`` :class:`ModelInfo` of ``model`` with default ``hop`` (``window`` = receptive field)."""
    check_hop(model, hop)
    if task not in TASKS:
        raise ExportError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    figures = model.describe(hop)
    state_in, state_out = state_io_names(model)
    extra = common_extra(model, figures, task)
    extra |= {
        "recurrent": "true" if model.recurrent else "false",
        "total_stride": str(model.total_stride),
        "state_inputs": json.dumps(state_in),
        "state_outputs": json.dumps(state_out),
        "state_shapes": json.dumps([list(s) for s in model.state_shapes()]),
        "state_initial": "zeros",
    }
    extra.update(_optional(meta or {}, checkpoint_sha256))
    return ModelInfo(
        sample_rate=model.sample_rate,
        window=model.receptive_field,
        hop=hop,
        lookahead=model.lookahead,
        crossfade=0,
        kind="stateful",
        extra=extra,
    )


def check_hop(model: StreamingModel, hop: int) -> None:
    """Raise :class:`ExportError` unless ``hop`` is a positive multiple of the model's total stride."""
    stride = model.total_stride
    if hop <= 0 or hop % stride:
        lower, upper = max(stride, hop // stride * stride), (max(hop, 0) // stride + 1) * stride
        raise ExportError(f"hop {hop} is not a multiple of the model's total stride {stride}; use {lower} or {upper}")


def parity_hops(model: StreamingModel, hop: int) -> list[int]:
    """The hops checked: the stride, 2 / 5 / 10 ms rounded to the stride, and the default ``hop``."""
    stride, rate = model.total_stride, model.sample_rate
    rounded = [max(stride, round(ms * rate / 1000 / stride) * stride) for ms in (2, 5, 10)]
    return sorted({stride, *rounded, hop})


def parity_signal(model: StreamingModel, seconds: float, seed: int = 0) -> np.ndarray:
    """Seeded test audio ``[2, 1, T]`` float32 (T a multiple of the stride): white noise, and
    a tone burst with clicks over quieter noise."""
    rng = np.random.default_rng(seed)
    n = model.valid_length(round(seconds * model.sample_rate))
    t = np.arange(n) / model.sample_rate
    burst = 0.4 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 3 * t) > 0) + 0.05 * rng.standard_normal(n)
    burst[rng.integers(0, n, size=max(1, n // 4800))] = 0.9
    return np.stack([0.3 * rng.standard_normal(n), burst])[:, None].astype(np.float32)


def chunk_sizes(total: int, hop: int) -> list[int]:
    """``hop``-sized chunks covering ``total`` samples, the last one shorter if need be."""
    return [min(hop, total - start) for start in range(0, total, hop)]


def random_chunks(total: int, stride: int, seed: int = 0, most: int = 64) -> list[int]:
    """Seeded chunk sizes, each a multiple of ``stride`` up to ``most`` strides, covering ``total``."""
    rng, sizes, left = np.random.default_rng(seed), [], total
    while left:
        sizes.append(min(left, stride * int(rng.integers(1, most + 1))))
        left -= sizes[-1]
    return sizes


def run_session(session: ort.InferenceSession, audio: np.ndarray, sizes: Sequence[int], zeros: list[np.ndarray]) -> np.ndarray:
    """Run the ONNX step over ``audio [batch, 1, T]`` in chunks of ``sizes``, state carried from ``zeros``."""
    names = [i.name for i in session.get_inputs()]
    states, outputs, start = zeros, [], 0
    for size in sizes:
        result = session.run(None, {names[0]: audio[..., start : start + size], **dict(zip(names[1:], states))})
        outputs.append(result[0])
        states, start = result[1:], start + size
    return np.concatenate(outputs, axis=-1)


def streaming_parity(
    path: str, model: StreamingModel, info: ModelInfo, *, hops: Sequence[int], seconds: float = PARITY_SECONDS
) -> list[ErrorFigure]:
    """Hop-by-hop onnxruntime against the offline torch ``forward``, per hop (plus random chunks
    and the engine's loader); raise :class:`ExportError` on any mismatch above 1e-4 relative."""
    audio = parity_signal(model, seconds)
    model.eval()
    with torch.no_grad():
        reference = model(torch.from_numpy(audio)).numpy()
    session = _session(path)
    zeros = info.state_spec().zeros(audio.shape[0])
    runs = {f"hop {hop}": chunk_sizes(audio.shape[-1], hop) for hop in hops}
    runs["random chunks"] = random_chunks(audio.shape[-1], model.total_stride)
    try:
        outputs = {name: run_session(session, audio, sizes, zeros) for name, sizes in runs.items()}
    except ORT_ERRORS as exc:
        raise ExportError(f"onnxruntime cannot run the step of {path}: {first_line(exc)}") from None
    engine_length = min(audio.shape[-1], model.valid_length(round(ENGINE_SECONDS * model.sample_rate)))
    outputs["engine loader"] = _engine_output(path, audio, info.hop, engine_length)
    references = {name: reference for name in runs}
    references["engine loader"] = reference[..., : outputs["engine loader"].shape[-1]]
    figures = compare(outputs, references)
    check_fp32(figures)
    return figures


def _engine_output(path: str, audio: np.ndarray, hop: int, length: int) -> np.ndarray:
    """What the engine computes: ``open_onnx`` must give a stateful processor; run it from reset."""
    try:
        processor = open_onnx(path)
    except ModelError as exc:
        raise ExportError(f"the engine cannot load the export: {exc}") from None
    if not isinstance(processor, StatefulOnnxProcessor):
        raise ExportError(f"the engine opens the export as {type(processor).__name__}, not as a stateful model")
    processor.reset(audio.shape[0])
    flat = audio[:, 0, :length]
    return np.concatenate([processor.step(flat[:, s : s + hop]) for s in range(0, length, hop)], axis=-1)[:, None]


def _session(path: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except ORT_ERRORS as exc:
        raise ExportError(f"onnxruntime cannot load {path}: {first_line(exc)}") from None


def export_streaming(
    model: StreamingModel,
    out: str | os.PathLike,
    *,
    hop: int,
    sample_rate: int | None = None,
    task: str = "denoise",
    meta: dict[str, Any] | None = None,
    checkpoint_sha256: str | None = None,
    opset: int = DEFAULT_OPSET,
    parity_seconds: float = PARITY_SECONDS,
) -> ExportReport:
    """Export ``model``'s streaming step to ``out`` with default ``hop`` (a multiple of the total
    stride); raise :class:`ExportError` if the checker, streaming parity, the engine's loader or the
    metadata round trip fails. ``report.fp32`` holds one figure per hop checked."""
    if not isinstance(model, StreamingModel):
        raise ExportError(f"{type(model).__name__} is not a streaming model; export it with export_model")
    if sample_rate is not None and sample_rate != model.sample_rate:
        raise ExportError(f"the model was built for {model.sample_rate} Hz, not {sample_rate} Hz")
    info = streaming_info(model, hop=hop, task=task, meta=meta, checkpoint_sha256=checkpoint_sha256)
    proto = export_step(model, opset=opset)
    attach(proto, info_props(info))
    out = Path(out)
    with replacing(out) as tmp:
        onnx.save(proto, tmp)
        figures = streaming_parity(str(tmp), model, info, hops=parity_hops(model, hop), seconds=parity_seconds)
        check_metadata(str(tmp), info)
    logger.info("wrote %s", out)
    return ExportReport(out, info, figures)
