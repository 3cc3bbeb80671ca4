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

Each kind of model (``windowed``, ``stateful``: :mod:`rt_enhance.realtime.kinds`) may require
more keys and checks them itself (``Kind.check``); the stateful kind's are described there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from rt_enhance.realtime import limits
from rt_enhance.realtime.errors import RtEnhanceError

logger = logging.getLogger(__name__)

REQUIRED_KEYS = ("sample_rate", "window", "hop", "lookahead", "crossfade")
TASKS = ("denoise", "bandwidth_extension", "dereverb", "joint")  # the optional ``task`` key's values


class ModelError(RtEnhanceError, ValueError):
    """A model file the engine cannot use; the message is one line for the user."""


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
            f"{source}: metadata key '{key}' is missing; export the model with rt-export, which writes {', '.join(REQUIRED_KEYS)}"
        )
    try:
        value = int(props[key])
    except ValueError:
        raise ModelError(f"{source}: metadata key '{key}' must be an integer, got {props[key]!r}") from None
    return value


def parse_props(props: dict[str, str], source: str = "model") -> ModelInfo:
    """Read and check a model's metadata; raise :class:`ModelError` naming the bad key."""
    values = {key: _int_key(props, key, source) for key in REQUIRED_KEYS}
    from rt_enhance.realtime.kinds import KINDS  # kinds builds on ModelInfo: imported when first needed

    kind = props.get("kind", "windowed")
    if kind not in KINDS:
        raise ModelError(f"{source}: metadata 'kind' is {kind!r}; expected one of {', '.join(KINDS)}")
    if values["sample_rate"] <= 0 or values["window"] <= 0 or values["hop"] <= 0:
        raise ModelError(f"{source}: metadata sample_rate, window and hop must be positive")
    if values["lookahead"] < 0 or values["crossfade"] < 0:
        raise ModelError(f"{source}: metadata lookahead and crossfade must not be negative")
    bounded(source, **values)
    extra = {k: v for k, v in props.items() if k not in REQUIRED_KEYS and k != "kind"}
    info = ModelInfo(kind=kind, extra=extra, **values)
    KINDS[kind].check(info, source)
    return info


def bounded(source: str, **values: int) -> None:
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
