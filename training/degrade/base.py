"""What every degradation step shares: the :class:`Step` base, the one registry of step names, the readers that
turn a step's words into values, and the signal helpers the families use (resampling, aligned convolution).

A step declares its words in ``PARAMS`` (name in the syntax, reader, default) and its range rules in
:meth:`Step.check`; :meth:`Step.parse` does the rest, so most steps hold no parsing code. Steps whose syntax
branches (``noise DIR|synth``, ``rir DIR|simulate``, ``maybe P STEP``) override :meth:`Step.parse`.
A new step is one class with ``@register("name")`` in its family's module.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import soxr
from scipy import signal

from rt_enhance.realtime.errors import RtEnhanceError

logger = logging.getLogger(__name__)

Pair = tuple[np.ndarray, np.ndarray, int]


class DegradationError(RtEnhanceError, ValueError):
    """A preprocessing string is malformed, or a step cannot run at the given rate; the message names the step."""


class ParamError(RtEnhanceError, ValueError):
    """Raised while a step reads its words; the registry adds the step number, name and syntax."""


# ---------------------------------------------------------------------------------------------------------------
# Readers: one word -> one value (or ParamError naming the word)
# ---------------------------------------------------------------------------------------------------------------

Reader = Callable[[str, str], Any]


def number(text: str, what: str) -> float:
    """``text`` as a finite float."""
    try:
        value = float(text)
    except ValueError:
        raise ParamError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ParamError(f"{what} must be finite, got {text!r}")
    return value


def rate(text: str, what: str) -> int:
    """``text`` as a positive whole number of Hz."""
    value = number(text, what)
    if value <= 0 or value != int(value):
        raise ParamError(f"{what} must be a positive whole number of Hz, got {text!r}")
    return int(value)


def probability(text: str, what: str) -> float:
    """``text`` as a number in [0, 1]."""
    value = number(text, what)
    if not 0 <= value <= 1:
        raise ParamError(f"{what} must be between 0 and 1")
    return value


def positive(text: str, what: str) -> float:
    """``text`` as a number above 0."""
    value = number(text, what)
    if value <= 0:
        raise ParamError(f"{what} must be > 0, got {value:g}")
    return value


def whole(low: int, high: int) -> Reader:
    """A reader of whole numbers in ``low..high``."""

    def read(text: str, what: str) -> int:
        value = number(text, what)
        if value != int(value) or not low <= value <= high:
            raise ParamError(f"{what} must be a whole number in {low}..{high}, got {text!r}")
        return int(value)

    return read


def choice(*options: str) -> Reader:
    """A reader of one of ``options``."""

    def read(text: str, what: str) -> str:
        if text not in options:
            raise ParamError(f"{what} must be {' or '.join(options)}, got {text!r}")
        return text

    return read


def arity(args: Sequence[str], least: int, most: int) -> None:
    """ParamError unless ``least <= len(args) <= most``."""
    if not least <= len(args) <= most:
        count = str(least) if least == most else f"{least} to {most}"
        raise ParamError(f"takes {count} parameters, got {len(args)}")


def ordered(low: float, high: float, what: str) -> None:
    """ParamError when a range's minimum is above its maximum."""
    if low > high:
        raise ParamError(f"{what}: the minimum {low:g} is above the maximum {high:g}")


REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """One word of a step's syntax: its NAME as the syntax writes it, its reader, its default (none: required)."""

    name: str
    read: Reader = number
    default: Any = REQUIRED


# ---------------------------------------------------------------------------------------------------------------
# The step base and the registry
# ---------------------------------------------------------------------------------------------------------------


class Step:
    """One pipeline step. Subclasses are registered (:func:`register`, which sets NAME), set SYNTAX and PARAMS
    (or override :meth:`parse`) and implement :meth:`apply`; ``TASK`` is what undoing the step teaches a model
    (the exported task), None for no task."""

    NAME: ClassVar[str] = ""
    SYNTAX: ClassVar[str] = ""
    PARAMS: ClassVar[tuple[Param, ...]] = ()
    TASK: ClassVar[str | None] = None

    @property
    def name(self) -> str:
        """The step's name as the pipeline string writes it."""
        return self.NAME

    @classmethod
    def syntax(cls, name: str) -> str:
        """The syntax shown when the words after ``name`` do not parse."""
        return cls.SYNTAX

    @classmethod
    def parse(cls, args: list[str], name: str) -> Step:
        """Build the step from its words after ``name`` (read by PARAMS); raise ParamError with the problem."""
        required = sum(p.default is REQUIRED for p in cls.PARAMS)
        arity(args, required, len(cls.PARAMS))
        values = [p.read(word, p.name) for p, word in zip(cls.PARAMS, args)]
        step = cls.build(name, values + [p.default for p in cls.PARAMS[len(args) :]])
        step.check()
        return step

    @classmethod
    def build(cls, name: str, values: list[Any]) -> Step:
        """The step from its PARAMS values, in order."""
        return cls(*values)

    def check(self) -> None:
        """Raise ParamError when the values break a rule between them (a range's order, a limit)."""

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        """Return ``(degraded, target, rate)`` after this step; both ``[samples]`` float64, same length."""
        raise NotImplementedError

    def output_rate(self, rate: int) -> int:
        """Sample rate after this step, given the rate before it."""
        return rate

    def keeps_rate(self) -> bool:
        """Whether the step leaves every sample rate as it is (so it may be optional or follow ``identity``)."""
        return self.output_rate(48000) == 48000 and self.output_rate(44100) == 44100

    def context(self, rate: int) -> int:
        """Samples of surrounding audio this step wants on each side of a window (reverb tails, filter edges)."""
        return 0


#: Every step name the pipeline string knows, and its class (filled by :func:`register`).
STEPS: dict[str, type[Step]] = {}


def register(*names: str) -> Callable[[type[Step]], type[Step]]:
    """Class decorator: the step answers to ``names`` in a pipeline string (its NAME is the first)."""

    def add(cls: type[Step]) -> type[Step]:
        cls.NAME = names[0]
        for name in names:
            STEPS[name] = cls
        return cls

    return add


def parse_words(words: list[str]) -> Step:
    """One step from its words (name first); ParamError for an unknown name or bad parameters."""
    name, args = words[0], words[1:]
    if name not in STEPS:
        raise ParamError(f"unknown step; known steps: {', '.join(sorted(STEPS))}")
    return STEPS[name].parse(args, name)


# ---------------------------------------------------------------------------------------------------------------
# Signal helpers
# ---------------------------------------------------------------------------------------------------------------


def resample(x: np.ndarray, rate: int, new_rate: int, length: int | None = None) -> np.ndarray:
    """Resample ``x`` ``[n]`` with soxr (HQ, linear phase); pad/crop to ``length`` (default round(n*new/rate))."""
    length = int(round(len(x) * new_rate / rate)) if length is None else length
    y = x if rate == new_rate else soxr.resample(np.asarray(x, dtype=np.float64), rate, new_rate)
    return fit_length(y, length)


def fit_length(x: np.ndarray, length: int) -> np.ndarray:
    """``x`` ``[n]`` cropped or zero-padded at its end to ``length`` samples."""
    if len(x) >= length:
        return x[:length]
    return np.concatenate([x, np.zeros(length - len(x), dtype=x.dtype)])


def convolve_aligned(x: np.ndarray, rir: np.ndarray, direct: int) -> np.ndarray:
    """``x`` ``[n]`` convolved with ``rir`` and shifted so that tap ``direct`` (the direct path) lands at lag 0."""
    return signal.fftconvolve(x, rir)[direct : direct + len(x)]


DIRECT_SECONDS = 0.0025  # half-width of the direct sound around a response's direct-path tap


EARLY_TAPER_SECONDS = 0.005  # the early part of a response ends in a raised-cosine fade this long


def early_part(rir: np.ndarray, direct: int, rate: int, early: float) -> np.ndarray:
    """The direct sound and the early reflections of a room response: its taps from ``DIRECT_SECONDS`` before
    tap ``direct`` to ``early`` seconds after it, the last EARLY_TAPER_SECONDS faded out, the rest zero
    (``early`` 0: :func:`direct_part`).

    The dereverberation target that a mask can reach: reflections within ~50 ms fuse with the direct sound
    (they colour it, they are not heard as reverberation), and a gain per bin cannot remove them from a
    frame that they overlap; the late tail is what the listener hears as the room."""
    if early <= 0:
        return direct_part(rir, direct, rate)
    lo, hi = max(direct - int(DIRECT_SECONDS * rate), 0), min(direct + int(early * rate) + 1, len(rir))
    out = np.zeros_like(rir)
    out[lo:hi] = rir[lo:hi]
    taper = min(int(EARLY_TAPER_SECONDS * rate), hi - direct - 1)
    if taper > 0:
        out[hi - taper : hi] *= 0.5 * (1.0 + np.cos(np.pi * (np.arange(taper) + 1) / taper))
    return out


def direct_part(rir: np.ndarray, direct: int, rate: int) -> np.ndarray:
    """The direct sound of a room response: its taps within +-DIRECT_SECONDS of tap ``direct``, the rest zero.

    The dereverberation target is the clean signal through this part, not the dry signal: a measured or
    simulated direct path is a band-limited fractional delay, not a unit impulse, and against the dry
    signal its sub-sample shift looks like missing high frequencies (a model learns to cut them)."""
    half = int(DIRECT_SECONDS * rate)
    out = np.zeros_like(rir)
    lo, hi = max(direct - half, 0), min(direct + half + 1, len(rir))
    out[lo:hi] = rir[lo:hi]
    return out
