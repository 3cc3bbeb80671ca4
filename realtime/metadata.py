"""The contract between an exported model and the engine: ONNX metadata keys.

An rt-enhance model is an ONNX file whose ``metadata_props`` describe it. The engine derives
its whole geometry from these values and never hard-codes one. ``export/`` writes them with
:func:`to_props`; the engine reads them with :func:`parse_props`.

Windowed models (``kind = windowed``) take one float32 input ``[batch, 1, window]`` and return
one float32 output of the same shape; batch is dynamic (channels, or several windows at once).

Required keys (integers are written as decimal strings):

``sample_rate``  model sample rate in Hz
``window``       samples the model sees per call
``hop``          default hop (new samples per call)
``lookahead``    default lookahead (future samples the kept output sees)
``crossfade``    default crossfade between consecutive kept regions

Optional keys: ``kind`` (``windowed`` by default, or ``stateful``), ``task``, ``family``,
``model_args`` (JSON), ``params``, ``macs_per_second``, ``receptive_field``, ``total_stride``,
``version``, ``checkpoint_sha256``, ``training`` (JSON), ``metrics`` (JSON), ``name``,
``description``.

Stateful (streaming) models (``kind = stateful``) compute only the new samples of each hop and
carry their context in state tensors. Inputs: ``audio`` float32 ``[batch, 1, n]`` with ``n`` any
multiple of ``total_stride`` (dynamic), then one input per state; outputs: the enhanced
``[batch, 1, n]``, then the new value of each state in the same order. Their output lags their
input by exactly ``lookahead`` samples (a fixed property of the model), ``window`` is their
receptive field, ``hop`` the default samples per call. Extra required keys:

``total_stride``   the hop must be a multiple of it
``state_inputs``   JSON list of the state input names, in graph order
``state_outputs``  JSON list of the matching new-state output names
``state_shapes``   JSON list of shapes, ``-1`` marking the batch axis; states start at zero
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from rt_enhance.realtime import limits
from rt_enhance.realtime.errors import RtEnhanceError

logger = logging.getLogger(__name__)

REQUIRED_KEYS = ("sample_rate", "window", "hop", "lookahead", "crossfade")
KINDS = ("windowed", "stateful")
TASKS = ("denoise", "bandwidth_extension", "dereverb", "joint")  # the optional ``task`` key's values


class ModelError(RtEnhanceError, ValueError):
    """A model file the engine cannot use; the message is one line for the user."""


STATEFUL_KEYS = ("total_stride", "state_inputs", "state_outputs", "state_shapes")


@dataclass(frozen=True)
class StateSpec:
    """The state tensors of a stateful model."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]  # -1 marks the batch axis

    def zeros(self, batch: int) -> list:
        import numpy as np

        return [np.zeros([batch if d == -1 else d for d in shape], np.float32) for shape in self.shapes]


@dataclass(frozen=True)
class ModelInfo:
    """What the engine knows about a model, read from its metadata."""

    sample_rate: int
    window: int
    hop: int
    lookahead: int
    crossfade: int
    kind: str = "windowed"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.extra.get("name", "")

    @property
    def total_stride(self) -> int:
        return int(self.extra.get("total_stride", "1"))

    def state_spec(self) -> StateSpec:
        """The state tensors (stateful models only)."""
        import json

        names_in = json.loads(self.extra["state_inputs"])
        names_out = json.loads(self.extra["state_outputs"])
        shapes = json.loads(self.extra["state_shapes"])
        return StateSpec(tuple(names_in), tuple(names_out), tuple(tuple(int(d) for d in s) for s in shapes))


def _int_key(props: dict[str, str], key: str, source: str) -> int:
    if key not in props:
        raise ModelError(
            f"{source}: metadata key '{key}' is missing; export the model with rt-export, "
            f"which writes {', '.join(REQUIRED_KEYS)}"
        )
    try:
        value = int(props[key])
    except ValueError:
        raise ModelError(f"{source}: metadata key '{key}' must be an integer, got {props[key]!r}") from None
    return value


def parse_props(props: dict[str, str], source: str = "model") -> ModelInfo:
    """Read and check a model's metadata; raise :class:`ModelError` naming the bad key."""
    values = {key: _int_key(props, key, source) for key in REQUIRED_KEYS}
    kind = props.get("kind", "windowed")
    if kind not in KINDS:
        raise ModelError(f"{source}: metadata 'kind' is {kind!r}; expected one of {', '.join(KINDS)}")
    if values["sample_rate"] <= 0 or values["window"] <= 0 or values["hop"] <= 0:
        raise ModelError(f"{source}: metadata sample_rate, window and hop must be positive")
    if values["lookahead"] < 0 or values["crossfade"] < 0:
        raise ModelError(f"{source}: metadata lookahead and crossfade must not be negative")
    _bounded(source, **values)
    extra = {k: v for k, v in props.items() if k not in REQUIRED_KEYS and k != "kind"}
    info = ModelInfo(kind=kind, extra=extra, **values)
    if kind == "stateful":
        _check_stateful(info, source)
    return info


def _check_stateful(info: ModelInfo, source: str) -> None:
    import json

    for key in STATEFUL_KEYS:
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
    state_size = sum(_product(shape) for shape in spec.shapes)
    _bounded(source, total_stride=stride, state_size=state_size)


def _product(shape: tuple[int, ...]) -> int:
    """Values per batch row of a state shape (the -1 batch axis counts once)."""
    n = 1
    for d in shape:
        if d != -1 and d < 0:
            return -1
        n *= max(d, 1)
    return n


def _bounded(source: str, **values: int) -> None:
    """Every value within :data:`limits.BOUNDS`, or a ModelError naming the key (keys use '_')."""
    for key, value in values.items():
        try:
            limits.check(key.replace("_", " "), value, f"metadata {key}")
        except limits.LimitError as exc:
            raise ModelError(f"{source}: {exc}") from None


def to_props(info: ModelInfo) -> dict[str, str]:
    """The metadata_props dictionary that describes ``info`` (the inverse of parse_props)."""
    props = {key: str(getattr(info, key)) for key in REQUIRED_KEYS}
    props["kind"] = info.kind
    props.update(info.extra)
    return props
