"""Window geometry: hop, lookahead, crossfade, presets, and the latency they cost.

Every hop of ``hop`` new samples the engine runs the model on the latest ``window`` samples.
From each window's output it keeps ``hop`` samples that end ``lookahead`` samples before the
window's end, and crossfades their first ``crossfade`` samples with the previous window's
samples just after *its* kept region (which is why ``crossfade <= lookahead``).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

from rt_enhance.realtime import limits
from rt_enhance.realtime.errors import GeometryError

logger = logging.getLogger(__name__)

# Presets in milliseconds: (hop, lookahead, crossfade).
PRESETS: dict[str, tuple[float, float, float]] = {
    "monitor": (2.5, 2.5, 1.25),
    "low": (5.0, 5.0, 2.5),
    "balanced": (10.0, 10.0, 5.0),
    "quality": (20.0, 20.0, 10.0),
}


@dataclass(frozen=True)
class Geometry:
    """Samples at the model's rate."""

    sample_rate: int
    window: int
    hop: int
    lookahead: int
    crossfade: int
    stateful: bool = False  # a streaming model: no window to fit, lookahead is the model's own

    def __post_init__(self) -> None:
        if self.hop <= 0:
            raise GeometryError(f"hop must be positive, got {self.hop} samples")
        if self.lookahead < 0 or self.crossfade < 0:
            raise GeometryError("lookahead and crossfade must not be negative")
        if self.stateful:
            return
        if self.hop + self.lookahead > self.window:
            raise GeometryError(
                f"hop ({self.hop}) + lookahead ({self.lookahead}) exceeds the model window "
                f"({self.window} samples); use a smaller hop or lookahead"
            )
        if self.crossfade > self.lookahead or self.crossfade > self.hop:
            raise GeometryError(
                f"crossfade ({self.crossfade}) must not exceed the lookahead ({self.lookahead}) "
                f"or the hop ({self.hop}); the crossfade uses the previous window's lookahead"
            )

    @property
    def kind(self) -> str:
        """The kind of model this geometry runs (:mod:`rt_enhance.realtime.kinds`)."""
        return "stateful" if self.stateful else "windowed"

    @property
    def kept_start(self) -> int:
        """Index in the window of the first kept output sample."""
        return self.window - self.lookahead - self.hop

    @property
    def latency(self) -> int:
        """Algorithmic latency in samples when blocks of ``hop`` arrive: a hop to fill, plus lookahead."""
        return self.hop + self.lookahead

    def ms(self, samples: int) -> float:
        return 1000.0 * samples / self.sample_rate


def parse_duration(text: str, sample_rate: int, what: str) -> int:
    """``'240'`` -> 240 samples; ``'5ms'`` / ``'5 ms'`` / ``'2.5ms'`` -> samples at ``sample_rate``."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|samples?)?\s*", str(text))
    if not match:
        raise GeometryError(f"--{what}: expected samples (e.g. 240) or milliseconds (e.g. 5ms), got {text!r}")
    number, unit = match.groups()
    if unit == "ms":
        value = int(round(float(number) * sample_rate / 1000.0))
    elif "." in number:
        raise GeometryError(f"--{what}: a sample count must be a whole number, got {text!r} (add 'ms' for time)")
    else:
        value = int(number)
    low, high, unit_text = limits.bounds(what)
    if value > high:
        raise GeometryError(f"--{what} {text}: at most {high}{unit_text} ({1000.0 * high / sample_rate:g} ms at {sample_rate} Hz)")
    return value


def resolve(
    *,
    sample_rate: int,
    window: int,
    default_hop: int,
    default_lookahead: int,
    default_crossfade: int,
    preset: str | None = None,
    hop: str | None = None,
    lookahead: str | None = None,
    crossfade: str | None = None,
) -> Geometry:
    """The geometry from a model's defaults, then a preset, then explicit flags (in that order)."""
    values = {"hop": default_hop, "lookahead": default_lookahead, "crossfade": default_crossfade}
    if preset is not None:
        if preset not in PRESETS:
            raise GeometryError(f"--latency: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        for key, ms in zip(values, PRESETS[preset]):
            values[key] = int(round(ms * sample_rate / 1000.0))
    for key, text in (("hop", hop), ("lookahead", lookahead), ("crossfade", crossfade)):
        if text is not None:
            values[key] = parse_duration(text, sample_rate, key)
    if preset is not None and crossfade is None:
        values["crossfade"] = min(values["crossfade"], values["lookahead"], values["hop"])
    return Geometry(sample_rate=sample_rate, window=window, hop=values["hop"], lookahead=values["lookahead"], crossfade=values["crossfade"])


def resolve_stateful(
    *,
    sample_rate: int,
    receptive_field: int,
    default_hop: int,
    lookahead: int,
    stride: int,
    preset: str | None = None,
    hop: str | None = None,
    lookahead_flag: str | None = None,
) -> Geometry:
    """Geometry of a streaming model: only the hop is free (a multiple of the model's stride).

    A preset's hop is rounded to the nearest multiple of the stride; an explicit ``--hop`` must be
    one. The lookahead is a property of the trained model and cannot be changed.
    """
    value = default_hop
    if preset is not None:
        if preset not in PRESETS:
            raise GeometryError(f"--latency: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        value = max(stride, int(round(PRESETS[preset][0] * sample_rate / 1000.0 / stride)) * stride)
        wanted = PRESETS[preset][0] + PRESETS[preset][1]
        got = 1000.0 * (value + lookahead) / sample_rate
        if got > wanted + 1e-6:
            logger.warning(
                "--latency %s: this model steps in multiples of %d samples and looks %d ahead, so its "
                "algorithmic latency is %.1f ms, not %.1f ms; a model with a finer step (the bundled "
                "speech-monitor) reaches it",
                preset,
                stride,
                lookahead,
                got,
                wanted,
            )
    if hop is not None:
        value = parse_duration(hop, sample_rate, "hop")
        if value <= 0:
            raise GeometryError(
                f"--hop {hop}: the hop must be positive; this streaming model needs a multiple of {stride} samples (e.g. {stride})"
            )
        if value % stride:
            near = sorted({max(stride, value // stride * stride), (value // stride + 1) * stride})
            raise GeometryError(
                f"--hop {hop}: this streaming model needs a multiple of {stride} samples (e.g. {' or '.join(map(str, near))})"
            )
    if lookahead_flag is not None and parse_duration(lookahead_flag, sample_rate, "lookahead") != lookahead:
        raise GeometryError(f"--lookahead: this streaming model has a fixed lookahead of {lookahead} samples")
    return Geometry(sample_rate, receptive_field, value, lookahead, 0, stateful=True)


def live_delay(hop: int, lookahead: int, block: int) -> int:
    """Constant stream delay D (samples) of the threaded live engine, same rates in and out.

    Input arrives in callback blocks of ``block`` samples; a hop completes inside some block, the
    worker computes it, and its first output sample must be ready when a later callback plays
    it. With ``D = lookahead + hop + ceil(hop / block) * block - gcd(hop, block)`` the worker
    always has at least one hop of wall time (and at least one callback period) per hop, whatever
    the phase of hops against blocks. With ``block == hop`` this is ``lookahead + hop``.
    """
    g = math.gcd(hop, block)
    return lookahead + hop + math.ceil(hop / block) * block - g
