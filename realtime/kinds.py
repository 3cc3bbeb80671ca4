"""Model kinds: the one module that knows how a windowed and a stateful (streaming) model differ.

A model's metadata names its kind (``kind`` in :mod:`rt_enhance.realtime.metadata`). Everything
that depends on it is here, behind one :class:`Kind` per kind:

* its geometry, from the model's metadata and the user's preset and flags (:func:`resolve_geometry`);
* the ONNX processor that runs it (``open_onnx`` asks :func:`kind_of`);
* the adapter the :class:`~rt_enhance.realtime.streamer.Streamer` drives, one protocol for every
  kind (:class:`HopModel`: ``process`` a block of whole hops, ``reset``). The windowed adapter owns
  the windowing and the crossfade; the stateful one passes the hops through to the model's ``step``;
* how many hops file mode hands the model per call.

A new kind of model is one more :class:`Kind` here and its entry in :data:`KINDS`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from rt_enhance.realtime import geometry as geo
from rt_enhance.realtime import kernels, pipeline
from rt_enhance.realtime.errors import first_line
from rt_enhance.realtime.geometry import Geometry
from rt_enhance.realtime.metadata import ModelError, ModelInfo, bounded

if TYPE_CHECKING:
    from rt_enhance.realtime.processor import StatefulProcessor, WindowedProcessor

logger = logging.getLogger(__name__)

FILE_BLOCK_HOPS = 64  # a windowed model in file mode: hops per read, their windows one batch
STATEFUL_BLOCK_SECONDS = 1.0  # a streaming model's call in file mode (1 s: 5-10 % faster per sample than 0.2 s)


class ModelCalls:
    """What every adapter shares with its Streamer: the guarded model call, the timer, and the
    counts of hops played dry (``dry_hops``: skipped to catch up; ``bad_hops``: the model failed)."""

    def __init__(self, timer: Any) -> None:
        self.timer = timer  # a HopTimer: add(seconds, model_seconds, hops)
        self.dry_hops = 0
        self.bad_hops = 0

    def call(self, fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
        """``fn(x)``; if it raises mid-stream, NaNs of ``x``'s shape, so the hops play dry like a NaN output."""
        try:
            return fn(x)
        except Exception as exc:  # onnxruntime raises several private types; the stream must go on
            if self.bad_hops == 0:
                logger.error("the model failed (%s); playing dry", first_line(exc, 200))
            return np.full(x.shape, np.nan, np.float32)

    def count_bad(self, hops: int) -> None:
        if self.bad_hops == 0:
            logger.warning("the model produced NaN or infinite samples; those hops play dry (counted in the report)")
        self.bad_hops += hops


class HopModel(Protocol):
    """The one protocol the Streamer drives, whatever the model's kind."""

    context: int  # past samples each call re-reads before its new hops

    def process(self, buf: np.ndarray, hops: int, dry: bool) -> np.ndarray:
        """float32 ``[channels, context + hops * hop]`` -> the hops' output ``[channels, hops * hop]``,
        ``lookahead`` samples late. ``dry`` asks to skip the model for these hops where the kind can."""

    def prepare(self, hops: int) -> None:
        """The caller will usually hand ``hops`` hops per call (the live engine 1, file mode its block)."""

    def reset(self) -> None:
        """Forget all history: the next hop starts a new stream."""


class WindowedAdapter:
    """A windowed model: each hop runs the model on the latest ``window`` samples, keeps ``hop``
    output samples ending ``lookahead`` before the window's end and crossfades their start with
    the previous window's (see :mod:`rt_enhance.realtime.geometry`)."""

    def __init__(self, processor: WindowedProcessor, geometry: Geometry, channels: int, calls: ModelCalls) -> None:
        self.processor, self.geometry, self.channels, self.calls = processor, geometry, channels, calls
        self.context = geometry.window - geometry.hop
        self._fade = kernels.fade_in_weights(geometry.crossfade)
        kernels.warm_up_overlap()  # compile before any stream starts, never inside a callback
        self.reset()

    def reset(self) -> None:
        self._tail = np.zeros((self.channels, self.geometry.crossfade), np.float32)

    def prepare(self, hops: int) -> None:
        """Windows go to the model in batches of any size; nothing to bind."""

    def process(self, buf: np.ndarray, hops: int, dry: bool) -> np.ndarray:
        g, c = self.geometry, self.channels
        start = time.perf_counter()
        windows = sliding_window_view(buf, g.window, axis=1)[:, : hops * g.hop : g.hop]  # [C, hops, W]
        windows = np.ascontiguousarray(windows.transpose(1, 0, 2))  # [hops, C, W]
        model_start = time.perf_counter()
        if dry or getattr(self.processor, "is_identity", False):
            y = windows
            self.calls.dry_hops += hops if dry else 0
        else:
            y = self.calls.call(self.processor.run, windows.reshape(hops * c, g.window)).reshape(hops, c, g.window)
            bad = ~np.isfinite(y).all(axis=(1, 2))
            if bad.any():
                self.calls.count_bad(int(bad.sum()))
                y[bad] = windows[bad]
        model_seconds = time.perf_counter() - model_start
        out = np.empty((c, hops * g.hop), np.float32)
        kernels.overlap_hops_nb(np.ascontiguousarray(y, np.float32), self._tail, self._fade, out, g.kept_start, g.hop)
        self.calls.timer.add(time.perf_counter() - start, model_seconds, hops)
        return out


class StatefulAdapter:
    """A streaming model: the hops go through to its ``step``, which keeps the context in its state.

    ``dry`` does not apply: a streaming model must see every sample to keep its state consistent,
    so a late hop is still computed (the live callback has played it dry).
    """

    context = 0

    def __init__(self, processor: StatefulProcessor, geometry: Geometry, channels: int, calls: ModelCalls) -> None:
        self.processor, self.geometry, self.channels, self.calls = processor, geometry, channels, calls
        self.reset()

    def reset(self) -> None:
        self.processor.reset(self.channels)
        self._recent = np.zeros((self.channels, self.geometry.lookahead), np.float32)  # dry input, lookahead behind

    def prepare(self, hops: int) -> None:
        """Bind the model for calls of ``hops`` hops, where the processor can
        (``StatefulOnnxProcessor.prepare``); calls of other sizes still work, only their speed differs."""
        prepare = getattr(self.processor, "prepare", None)
        if prepare is not None:
            prepare(self.channels, hops * self.geometry.hop)

    def process(self, buf: np.ndarray, hops: int, dry: bool) -> np.ndarray:
        """All complete hops in one call (the same result as one call per hop)."""
        start = time.perf_counter()
        chunk = np.ascontiguousarray(buf[:, : hops * self.geometry.hop])
        out = self.calls.call(self.processor.step, chunk)
        seconds = time.perf_counter() - start
        self.calls.timer.add(seconds, seconds, hops)
        recent, lookahead = self._recent, self.geometry.lookahead
        if chunk.shape[1] >= lookahead:  # the dry input, lookahead behind, without joining every hop
            self._recent = chunk[:, chunk.shape[1] - lookahead :].copy()
        else:
            self._recent = np.concatenate([recent, chunk], axis=1)[:, -lookahead:]
        if not math.isfinite(out.sum(dtype=np.float64)):  # a float64 sum of float32 samples cannot overflow
            # A broken state would poison every later hop: restart the model, play this chunk dry.
            self.calls.count_bad(hops)
            self.processor.reset(self.channels)
            out = np.concatenate([recent, chunk], axis=1)[:, : chunk.shape[1]]
        return out


class Kind:
    """What differs between kinds of model; one instance per kind in :data:`KINDS`."""

    name = ""
    streaming = False  # computes only each hop's new samples from its state: no window, a fixed lookahead

    def check(self, info: ModelInfo, source: str) -> None:
        """Raise :class:`ModelError` (one line naming the key) if the metadata lacks what this kind needs
        beyond the keys every model has (:func:`rt_enhance.realtime.metadata.parse_props` calls it)."""

    def geometry(self, info: ModelInfo, *, preset: str | None, hop: str | None, lookahead: str | None, crossfade: str | None) -> Geometry:
        raise NotImplementedError

    def processor_class(self) -> type:
        """The class that runs an ONNX model of this kind (``cls(path, threads=, provider=, _loaded=)``)."""
        raise NotImplementedError

    def adapter(self, processor: Any, geometry: Geometry, channels: int, calls: ModelCalls) -> HopModel:
        raise NotImplementedError

    def file_hops(self, g: Geometry, processor: Any = None) -> int:
        """Hops per model call in file mode (``processor``: the one that will run them, where known)."""
        raise NotImplementedError


class Windowed(Kind):
    """``kind = windowed``: the model sees a window per hop; hop, lookahead and crossfade are free."""

    name = "windowed"

    def geometry(self, info: ModelInfo, *, preset: str | None, hop: str | None, lookahead: str | None, crossfade: str | None) -> Geometry:
        return geo.resolve(
            sample_rate=info.sample_rate,
            window=info.window,
            default_hop=info.hop,
            default_lookahead=info.lookahead,
            default_crossfade=info.crossfade,
            preset=preset,
            hop=hop,
            lookahead=lookahead,
            crossfade=crossfade,
        )

    def processor_class(self) -> type:
        from rt_enhance.realtime.processor import OnnxProcessor

        return OnnxProcessor

    def adapter(self, processor: Any, geometry: Geometry, channels: int, calls: ModelCalls) -> HopModel:
        return WindowedAdapter(processor, geometry, channels, calls)

    def file_hops(self, g: Geometry, processor: Any = None) -> int:
        return FILE_BLOCK_HOPS


class Stateful(Kind):
    """``kind = stateful``: only the hop is free (a multiple of the model's stride); the lookahead is
    the model's own and there is no crossfade.

    Stateful (streaming) models compute only the new samples of each hop and carry their context in
    state tensors. Inputs: ``audio`` float32 ``[batch, 1, n]`` with ``n`` any multiple of
    ``total_stride`` (dynamic), then one input per state; outputs: the enhanced ``[batch, 1, n]``,
    then the new value of each state in the same order. Their output lags their input by exactly
    ``lookahead`` samples (a fixed property of the model), ``window`` is their receptive field,
    ``hop`` the default samples per call. Extra required metadata keys (:data:`KEYS`):

    ``total_stride``   the hop must be a multiple of it
    ``state_inputs``   JSON list of the state input names, in graph order
    ``state_outputs``  JSON list of the matching new-state output names
    ``state_shapes``   JSON list of shapes, ``-1`` marking the batch axis; states start at zero
    """

    name = "stateful"
    streaming = True
    KEYS = ("total_stride", "state_inputs", "state_outputs", "state_shapes")

    def check(self, info: ModelInfo, source: str) -> None:
        for key in self.KEYS:
            if key not in info.extra:
                raise ModelError(f"{source}: metadata key '{key}' is missing (required for stateful models)")
        try:
            spec = info.state_spec()
            stride = info.total_stride
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{source}: stateful metadata is malformed ({exc})") from None
        if not (len(spec.inputs) == len(spec.outputs) == len(spec.shapes)):
            raise ModelError(f"{source}: state_inputs, state_outputs and state_shapes differ in length")
        if any(shape.count(-1) != 1 for shape in spec.shapes):
            raise ModelError(f"{source}: every state shape needs exactly one batch axis (-1)")
        if stride <= 0 or info.hop % stride:
            raise ModelError(f"{source}: default hop {info.hop} is not a multiple of total_stride {stride}")
        state_size = sum(_values_per_row(shape) for shape in spec.shapes)
        bounded(source, total_stride=stride, state_size=state_size)

    def geometry(self, info: ModelInfo, *, preset: str | None, hop: str | None, lookahead: str | None, crossfade: str | None) -> Geometry:
        return geo.resolve_stateful(
            sample_rate=info.sample_rate,
            receptive_field=info.window,
            default_hop=info.hop,
            lookahead=info.lookahead,
            stride=info.total_stride,
            preset=preset,
            hop=hop,
            lookahead_flag=lookahead,
        )

    def processor_class(self) -> type:
        from rt_enhance.realtime.processor import StatefulOnnxProcessor

        return StatefulOnnxProcessor

    def adapter(self, processor: Any, geometry: Geometry, channels: int, calls: ModelCalls) -> HopModel:
        return StatefulAdapter(processor, geometry, channels, calls)

    def file_hops(self, g: Geometry, processor: Any = None) -> int:
        """Any number of hops in one call gives the same result as hop by hop (to float rounding),
        so about STATEFUL_BLOCK_SECONDS of audio per call; a processor that runs a call as a pipeline of
        parts (``pipeline_parts`` > 1, :mod:`rt_enhance.realtime.pipeline`) gets that many parts."""
        parts = getattr(processor, "pipeline_parts", 1)
        if parts > 1:
            return parts * max(1, round(pipeline.PART_SECONDS * g.sample_rate / g.hop))
        return max(1, round(STATEFUL_BLOCK_SECONDS * g.sample_rate / g.hop))


KINDS: dict[str, Kind] = {kind.name: kind for kind in (Windowed(), Stateful())}


def _values_per_row(shape: tuple[int, ...]) -> int:
    """Values per batch row of a state shape (the -1 batch axis counts once; -1 if another axis is negative)."""
    n = 1
    for d in shape:
        if d != -1 and d < 0:
            return -1
        n *= max(d, 1)
    return n


def kind_of(described: ModelInfo | Geometry) -> Kind:
    """The kind of a model, from its metadata (``ModelInfo``) or from a geometry derived from it."""
    name = described.kind
    if name not in KINDS:
        raise ModelError(f"model kind {name!r} is not one of {', '.join(KINDS)}")
    return KINDS[name]


def resolve_geometry(
    info: ModelInfo, *, preset: str | None = None, hop: str | None = None, lookahead: str | None = None, crossfade: str | None = None
) -> Geometry:
    """The geometry the engine runs a model with: its metadata's defaults, then a ``--latency``
    preset, then the ``--hop`` / ``--lookahead`` / ``--crossfade`` flags (samples, or ``"5ms"``)."""
    return kind_of(info).geometry(info, preset=preset, hop=hop, lookahead=lookahead, crossfade=crossfade)
