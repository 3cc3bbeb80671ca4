"""Model runners: an ONNX model through onnxruntime, or the built-in pass-through.

A processor maps float32 windows ``[n, window]`` to enhanced windows of the same shape. The
engine only ever talks to this interface, so the same streaming code serves every model.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rt_enhance.realtime import pipeline
from rt_enhance.realtime.binding import BoundStep, dim_overrides
from rt_enhance.realtime.errors import first_line
from rt_enhance.realtime.kinds import kind_of
from rt_enhance.realtime.metadata import ModelError, ModelInfo, parse_props
from rt_enhance.realtime.providers import PROVIDERS

logger = logging.getLogger(__name__)

PASSTHROUGH_WINDOW = 2048


class Processor(Protocol):
    """Any model runner. Its kind (``info.kind``, see :mod:`rt_enhance.realtime.kinds`) says which
    of the two call protocols below it keeps; the Streamer drives both through the kind's adapter."""

    info: ModelInfo
    native_rate: bool  # True if the model runs at info.sample_rate only (ONNX); False for any rate


class WindowedProcessor(Processor, Protocol):
    """``kind = windowed``."""

    def run(self, windows: np.ndarray) -> np.ndarray:
        """float32 ``[n, window]`` -> float32 ``[n, window]``."""


class StatefulProcessor(Processor, Protocol):
    """``kind = stateful``; it may also offer ``prepare(batch, n)`` to bind a shape it will see often."""

    def reset(self, batch: int) -> None:
        """Zero state for ``batch`` independent streams."""

    def step(self, x: np.ndarray) -> np.ndarray:
        """float32 ``[batch, n]`` (n a multiple of ``info.total_stride``) -> ``[batch, n]``, state carried."""


@dataclass
class PassthroughProcessor:
    """The identity: runs the whole engine (windows, crossfades, rings) with no model."""

    info: ModelInfo
    native_rate: bool = False
    is_identity: bool = True

    @classmethod
    def at_rate(cls, sample_rate: int) -> PassthroughProcessor:
        hop = max(1, round(sample_rate * 0.010))
        info = ModelInfo(
            sample_rate=sample_rate,
            window=PASSTHROUGH_WINDOW * max(1, round(sample_rate / 48000)),
            hop=hop,
            lookahead=hop,
            crossfade=hop // 2,
            extra={"name": "passthrough", "task": "identity"},
        )
        return cls(info=info)

    def run(self, windows: np.ndarray) -> np.ndarray:
        return windows


def _session(path: str, threads: int, provider: str, dims: dict[str, int] | None = None, optimised_to: str | None = None):
    """An onnxruntime session on ``threads`` threads; ``dims`` fixes named dynamic dimensions; ``optimised_to``
    writes the graph as optimised up to the portable level (no layout changes) to that file."""
    import onnxruntime as ort

    if provider not in PROVIDERS:
        raise ModelError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    wanted = PROVIDERS[provider]
    if wanted not in ort.get_available_providers():
        raise ModelError(
            f"provider {provider!r} is not available in this onnxruntime "
            f"({', '.join(ort.get_available_providers())}); install the 'gpu' extra for cuda"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    for name, value in (dims or {}).items():
        options.add_free_dimension_override_by_name(name, value)
    if optimised_to:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = optimised_to
    providers = [wanted] if wanted == "CPUExecutionProvider" else [wanted, "CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(path, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises several private exception types
        raise ModelError(f"{path}: not a loadable ONNX model ({first_line(exc, 200)})") from None
    if session.get_providers()[0] != wanted:
        raise ModelError(f"{path}: onnxruntime could not start {provider!r} (running on {session.get_providers()[0]})")
    return session


def _stage_session(model: bytes):
    """A one-thread CPU session on a pipeline stage's graph (:mod:`rt_enhance.realtime.pipeline`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def _load(path: str, threads: int, provider: str):
    if not os.path.isfile(path):
        raise ModelError(f"model file not found: {path}")
    session = _session(path, threads, provider)
    return session, parse_props(session.get_modelmeta().custom_metadata_map, source=path)


class OnnxProcessor:
    """A windowed ONNX model: input ``[batch, 1, window]`` (or ``[batch, window]``), same output."""

    native_rate = True
    is_identity = False

    def __init__(self, path: str, *, threads: int = 1, provider: str = "cpu", max_batch: int = 64, _loaded=None) -> None:
        self.path = path
        self.session, self.info = _loaded or _load(path, threads, provider)
        self.max_batch = max_batch
        self._input, self._output, self._rank = self._check_io()
        self.provider = self.session.get_providers()[0]
        self.run(np.zeros((1, self.info.window), np.float32))  # a wrong output shape fails here, not mid-stream

    def _check_io(self) -> tuple[str, str, int]:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if self.info.kind != "windowed":
            raise ModelError(f"{self.path}: a {self.info.kind} model; open it with open_onnx()")
        if len(inputs) != 1 or len(outputs) < 1:
            raise ModelError(f"{self.path}: a windowed model needs exactly one input, got {len(inputs)}")
        shape = inputs[0].shape
        if len(shape) not in (2, 3) or (len(shape) == 3 and shape[1] not in (1, None, "1")):
            raise ModelError(f"{self.path}: input shape {shape} is not [batch, 1, window] or [batch, window]")
        if isinstance(shape[-1], int) and shape[-1] != self.info.window:
            raise ModelError(f"{self.path}: input length {shape[-1]} contradicts metadata window {self.info.window}")
        if inputs[0].type != "tensor(float)":
            raise ModelError(f"{self.path}: input type {inputs[0].type}; expected float32")
        return inputs[0].name, outputs[0].name, len(shape)

    def run(self, windows: np.ndarray) -> np.ndarray:
        """float32 ``[n, window]`` -> float32 ``[n, window]``, in batches of at most max_batch."""
        n, window = windows.shape
        if n > self.max_batch:
            parts = [self.run(windows[i : i + self.max_batch]) for i in range(0, n, self.max_batch)]
            return np.concatenate(parts)
        feed = windows[:, None, :] if self._rank == 3 else windows
        try:
            out = self.session.run([self._output], {self._input: np.ascontiguousarray(feed, np.float32)})[0]
        except Exception as exc:  # onnxruntime's own error types
            raise ModelError(f"{self.path}: the model fails on a [{n}, 1, {window}] batch ({first_line(exc, 200)})") from None
        if out.size != n * window:
            raise ModelError(f"{self.path}: output shape {out.shape} does not match input [{n}, 1, {window}]")
        return out.reshape(n, window)


class StatefulOnnxProcessor:
    """A streaming ONNX model: each call takes the next ``n`` samples and the state, returns the
    ``n`` enhanced samples (``lookahead`` samples late) and the new state. One state set per
    batch row (channel).

    :meth:`prepare` binds a shape the caller will use over and over (the live hop, file mode's
    block) to a session of its own (:class:`~rt_enhance.realtime.binding.BoundStep`); calls of
    any other shape run on the dynamic session. Both give the same samples, to float rounding.
    With two threads or more, a file-mode block of ``pipeline_parts`` parts runs as a two-stage
    pipeline on two cores instead (:mod:`rt_enhance.realtime.pipeline`), with the same samples too.
    """

    native_rate = True
    is_identity = False
    MAX_BOUND = 4  # shapes bound at once; each holds a session
    # Calls up to this long get a session with their dimensions fixed (the graph's shape arithmetic folded away: ~15 %
    # less per live hop); longer ones (file mode's big steps) bind on the dynamic session, which onnxruntime runs
    # ~5 % faster there (session 18: 107-112x against 102-104x real time on a 1 s step, one thread).
    FIXED_DIMS_MAX_SECONDS = 0.1

    def __init__(self, path: str, *, threads: int = 1, provider: str = "cpu", _loaded=None) -> None:
        self.path, self.threads, self.provider_name = path, threads, provider
        self.session, self.info = _loaded or _load(path, threads, provider)
        self._bound: dict[tuple[int, int], BoundStep] = {}
        self._staged: dict[int, pipeline.PipelinedStep] = {}  # by batch: calls of whole parts on two cores
        self.spec = self.info.state_spec()
        self.provider = self.session.get_providers()[0]
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        names_in = [i.name for i in inputs]
        if len(inputs) != 1 + len(self.spec.inputs) or tuple(names_in[1:]) != self.spec.inputs:
            raise ModelError(f"{path}: graph inputs {names_in} do not match metadata state_inputs {list(self.spec.inputs)}")
        names_out = [o.name for o in outputs]
        if tuple(names_out[1:]) != self.spec.outputs:
            raise ModelError(f"{path}: graph outputs {names_out} do not match metadata state_outputs {list(self.spec.outputs)}")
        self._input, self._output = names_in[0], names_out[0]
        self._fetch = [self._output, *self.spec.outputs]
        self._states: list[np.ndarray] = []
        self._batch = 0
        self._probe()
        self.pipeline_parts = self._pipeline_parts()

    def _pipeline_parts(self) -> int:
        """Parts per file-mode call: ``pipeline.PARTS`` where two threads or more may run the graph's
        stages side by side (a CPU session, one recurrence), else 1."""
        if self.threads < 2 or self.provider != PROVIDERS["cpu"]:
            return 1
        with open(self.path, "rb") as f:
            return pipeline.PARTS if pipeline.recurrences(f.read()) == 1 else 1

    def _probe(self) -> None:
        """One call on silence: a graph that does not keep the contract fails at load, not mid-stream."""
        n = self.info.total_stride * max(1, self.info.hop // self.info.total_stride)
        try:
            y = self.step(np.zeros((1, n), np.float32))
        except ModelError:
            raise
        except Exception as exc:  # onnxruntime's own error types
            raise ModelError(f"{self.path}: the model fails on a {n}-sample hop ({first_line(exc, 200)})") from None
        if y.shape != (1, n):
            raise ModelError(f"{self.path}: output shape {y.shape} for a [1, {n}] hop")
        self._batch = 0

    def reset(self, batch: int) -> None:
        """Zero state for ``batch`` independent streams."""
        self._batch = batch
        self._states = self.spec.zeros(batch)

    def prepare(self, batch: int, n: int) -> None:
        """Bind calls of ``[batch, n]`` (n a multiple of total_stride): a session with those
        dimensions fixed (calls up to FIXED_DIMS_MAX_SECONDS; longer ones the dynamic session), its input,
        output and states in preallocated buffers. CPU only; on
        another provider, or past MAX_BOUND shapes, such calls stay on the dynamic session."""
        if (batch, n) in self._bound or self.provider != PROVIDERS["cpu"] or len(self._bound) >= self.MAX_BOUND:
            return
        if batch in self._staged and n % self._staged[batch].part == 0:  # whole parts: already pipelined
            return
        if n <= 0 or n % self.info.total_stride:
            raise ModelError(f"{self.path}: {n} samples per call is not a multiple of total_stride {self.info.total_stride}")
        dims = dim_overrides(self.session, self.spec, batch, n)
        parts = self.pipeline_parts
        part = n // parts
        long_enough = part >= pipeline.MIN_PART_SECONDS * self.info.sample_rate
        if parts > 1 and dims and long_enough and part % self.info.total_stride == 0 and n % parts == 0:
            staged = self._pipelined(batch, part)
            if staged is not None:
                self._staged[batch] = staged
                return
        fixed = dims and n <= self.FIXED_DIMS_MAX_SECONDS * self.info.sample_rate
        session = _session(self.path, self.threads, self.provider_name, dims) if fixed else self.session
        self._bound[(batch, n)] = BoundStep(session, self.spec, batch, n)
        logger.debug("bound [%d, 1, %d] calls (fixed dimensions %s)", batch, n, dims if fixed else "none")

    def _pipelined(self, batch: int, part: int) -> pipeline.PipelinedStep | None:
        """Calls of ``[batch, k * part]`` as ``k`` parts through the graph's two stages; None (and a log line)
        where the graph does not cut."""
        part_dims = dim_overrides(self.session, self.spec, batch, part)

        def open_fixed(path: str, optimised_to: str):
            return _session(path, 1, self.provider_name, part_dims, optimised_to=optimised_to)

        try:
            stages = pipeline.split(pipeline.optimised(open_fixed, self.path), _stage_session)
        except Exception as exc:  # onnxruntime's and protobuf's own error types; the whole graph still runs
            logger.warning(
                "%s: file mode runs the graph whole on %d threads (no two-stage pipeline: %s)",
                self.path,
                self.threads,
                first_line(exc, 200),
            )
            return None
        if stages is None:
            logger.info("%s: the graph does not cut into two stages; file mode runs it whole", self.path)
            return None
        logger.debug("calls of [%d, 1, k * %d] run part by part on two stages", batch, part)
        return pipeline.PipelinedStep(stages, part)

    def step(self, x: np.ndarray) -> np.ndarray:
        """float32 ``[batch, n]`` (n a multiple of total_stride) -> ``[batch, n]``, state carried."""
        if x.shape[0] != self._batch:
            self.reset(x.shape[0])
        bound = self._bound.get(x.shape)
        if bound is not None:
            y, self._states = bound.run(x, self._states)
            return y
        staged = self._staged.get(x.shape[0])
        if staged is not None and x.shape[1] >= staged.part:
            whole = x.shape[1] // staged.part * staged.part
            y, self._states = staged.run(x[:, :whole], self._states)
            return y if whole == x.shape[1] else np.concatenate([y, self.step(x[:, whole:])], axis=1)
        feed = {self._input: np.ascontiguousarray(x[:, None, :], np.float32)}
        feed.update(zip(self.spec.inputs, self._states))
        out = self.session.run(self._fetch, feed)
        if out[0].size != x.size:
            raise ModelError(f"{self.path}: output holds {out[0].size} samples for a {list(x.shape)} hop")
        self._states = out[1:]
        return out[0].reshape(x.shape)


def open_onnx(path: str, *, threads: int = 1, provider: str = "cpu") -> Processor:
    """The processor a model's metadata asks for: the one of its kind (``kind_of(info).processor_class()``)."""
    loaded = _load(path, threads, provider)
    return kind_of(loaded[1]).processor_class()(path, threads=threads, provider=provider, _loaded=loaded)


def bundled_models_dir() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")


def bundled_model_path(name: str) -> str | None:
    """Path of a model shipped in the package (``speech``, ``music``...), or None."""
    path = os.path.join(bundled_models_dir(), f"{name}.onnx")
    return path if os.path.isfile(path) else None


def open_processor(model: str, *, threads: int = 1, provider: str = "cpu", rate_hint: int = 48000) -> Processor:
    """Resolve ``--model``: 'passthrough', a bundled model name, or a path to an ONNX file."""
    if model == "passthrough":
        return PassthroughProcessor.at_rate(rate_hint)
    bundled = bundled_model_path(model)
    if bundled is not None and not os.path.exists(model):
        return open_onnx(bundled, threads=threads, provider=provider)
    if not model.endswith(".onnx") and not os.path.exists(model):
        names = sorted(f[:-5] for f in os.listdir(bundled_models_dir())) if os.path.isdir(bundled_models_dir()) else []
        raise ModelError(
            f"unknown model {model!r}: give a path to an .onnx file, 'passthrough'" + (f", or one of {', '.join(names)}" if names else "")
        )
    return open_onnx(model, threads=threads, provider=provider)
