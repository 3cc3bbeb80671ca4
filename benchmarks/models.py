"""Opening the model under test: the engine's own processors, a GPU one, or a fixed window.

``--model`` means what it means to ``rt-enhance``: ``passthrough``, a bundled name, or a path to
an ``.onnx`` file written by ``rt-export``. Reduced-precision exports sit next to the model as
``MODEL.fp16.onnx`` / ``MODEL.int8.onnx`` (``rt-export --fp16 --int8``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import numpy as np

from rt_enhance.realtime import geometry as geo
from rt_enhance.realtime import kinds
from rt_enhance.realtime.errors import RtEnhanceError
from rt_enhance.realtime.processor import (
    OnnxProcessor,
    PassthroughProcessor,
    Processor,
    bundled_model_path,
    open_processor,
)

if TYPE_CHECKING:
    from rt_enhance.realtime.processor import StatefulProcessor, WindowedProcessor

logger = logging.getLogger(__name__)

VARIANT_TAGS = ("fp16", "int8")


class Skip(RtEnhanceError):
    """This configuration cannot run here (no GPU, fixed window, ...); one line for the table."""


def model_path(model: str) -> str | None:
    """The ONNX file behind ``--model`` (None for passthrough)."""
    if model == "passthrough":
        return None
    if not os.path.exists(model) and bundled_model_path(model):
        return bundled_model_path(model)
    return model


def variants(model: str) -> dict[str, str]:
    """``{"fp32": path, "fp16": path, "int8": path}`` for the exports that exist next to the model."""
    path = model_path(model)
    if path is None:
        return {"fp32": model}
    stem, ext = os.path.splitext(path)
    found = {"fp32": path}
    for tag in VARIANT_TAGS:
        if os.path.isfile(f"{stem}.{tag}{ext}"):
            found[tag] = f"{stem}.{tag}{ext}"
    return found


def open_model(model: str, *, threads: int, provider: str = "cpu", window: int | None = None, rate: int = 48000) -> Processor:
    """The processor for one configuration; :class:`Skip` if it cannot run here."""
    processor: Processor
    if provider in ("cuda", "tensorrt"):
        from rt_enhance.benchmarks.gpu import GpuProcessor, GpuUnavailable

        path = model_path(model)
        if path is None:
            raise Skip("passthrough runs no model, so it has no GPU configuration")
        try:
            processor = GpuProcessor(path, provider, threads=threads)
        except GpuUnavailable as exc:
            raise Skip(str(exc)) from None
    elif provider.startswith("torch-"):
        processor = _open_twin(model, provider, threads)
    else:
        processor = open_processor(model, threads=threads, provider=provider, rate_hint=rate)
    return with_window(processor, window)


def _open_twin(model: str, provider: str, threads: int) -> Processor:
    """The model's torch twin (benchmarks/torch_twin.py); :class:`Skip` when it cannot run here."""
    from rt_enhance.benchmarks.torch_twin import TwinUnavailable, open_twin

    path = model_path(model)
    if path is None:
        raise Skip("passthrough runs no model, so it has no torch twin")
    try:
        return open_twin(path, provider, threads=threads)
    except TwinUnavailable as exc:
        raise Skip(str(exc)) from None


def with_window(processor: Processor, window: int | None) -> Processor:
    """The processor run at another window length, where the model allows it."""
    if window is None or window == processor.info.window:
        return processor
    if isinstance(processor, PassthroughProcessor):
        return dataclasses.replace(processor, info=dataclasses.replace(processor.info, window=window))
    if kinds.kind_of(processor.info).streaming:
        raise Skip("a streaming (stateful) model has no window to change")
    if isinstance(processor, OnnxProcessor):
        length = processor.session.get_inputs()[0].shape[-1]
        if isinstance(length, int):
            raise Skip(f"the model's window is fixed at {length} samples (export another with rt-export --window)")
        processor.info = dataclasses.replace(processor.info, window=window)
        return processor
    raise Skip(f"window {window} not supported by {type(processor).__name__}")


def resolve_geometry(
    processor: Processor, *, preset: str | None = None, hop: str | None = None, lookahead: str | None = None, crossfade: str | None = None
) -> geo.Geometry:
    """The geometry rt-enhance would run ``processor`` with, given the same flags."""
    return kinds.resolve_geometry(processor.info, preset=preset, hop=hop, lookahead=lookahead, crossfade=crossfade)


class TimedProcessor:
    """Wraps a processor and records the wall time of every model call (``run`` for windowed
    models, ``step`` for streaming ones) in nanoseconds; everything else passes through."""

    def __init__(self, inner: Processor) -> None:
        self.inner = inner
        self.info = inner.info
        self.native_rate = inner.native_rate
        self.is_identity = getattr(inner, "is_identity", False)
        self.ns: list[int] = []

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def _timed(self, call: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter_ns()
        out = call(x)
        self.ns.append(time.perf_counter_ns() - t0)
        return out

    # The Streamer calls the method of the model's kind only: run for windowed, step for stateful.
    def run(self, windows: np.ndarray) -> np.ndarray:
        return self._timed(cast("WindowedProcessor", self.inner).run, windows)

    def step(self, chunk: np.ndarray) -> np.ndarray:
        return self._timed(cast("StatefulProcessor", self.inner).step, chunk)


def describe(model: str) -> str:
    """A short name for tables: the file's stem, or the built-in name."""
    path = model_path(model)
    return model if path is None else os.path.splitext(os.path.basename(path))[0]
