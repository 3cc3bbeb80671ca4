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

Optional keys: ``kind`` (``windowed``; ``stateful`` is reserved for streaming models with
state inputs), ``task``, ``family``, ``model_args`` (JSON), ``params``, ``macs_per_second``,
``receptive_field``, ``total_stride``, ``version``, ``checkpoint_sha256``, ``training``
(JSON), ``metrics`` (JSON), ``name``, ``description``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

REQUIRED_KEYS = ("sample_rate", "window", "hop", "lookahead", "crossfade")
KINDS = ("windowed", "stateful")


class ModelError(ValueError):
    """A model file the engine cannot use; the message is one line for the user."""


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
    extra = {k: v for k, v in props.items() if k not in REQUIRED_KEYS and k != "kind"}
    return ModelInfo(kind=kind, extra=extra, **values)


def to_props(info: ModelInfo) -> dict[str, str]:
    """The metadata_props dictionary that describes ``info`` (the inverse of parse_props)."""
    props = {key: str(getattr(info, key)) for key in REQUIRED_KEYS}
    props["kind"] = info.kind
    props.update(info.extra)
    return props
