"""Steps that decide whether and where other steps run: ``maybe P STEP ...``, ``both STEP ...`` and ``identity P``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from rt_enhance.training.degrade.base import STEPS, Pair, Param, ParamError, Step, parse_words, probability, register

logger = logging.getLogger(__name__)


@register("maybe")
@dataclass(frozen=True)
class Maybe(Step):
    """``maybe P STEP ...``: run STEP (any step that keeps the sample rate) with probability P, per segment."""

    SYNTAX: ClassVar[str] = "maybe P STEP [STEP ARGS...]"
    p: float
    inner: Step

    @classmethod
    def parse(cls, args: list[str], name: str) -> Maybe:
        if len(args) < 2:
            raise ParamError("give a probability and a step")
        p = probability(args[0], "P")
        return cls(p, _inner(args[1:], ("maybe", "identity"), "cannot be optional"))  # "maybe P both STEP" is fine

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        if rng.random() < self.p:
            return self.inner.apply(degraded, target, rate, rng)
        return degraded, target, rate

    def context(self, rate: int) -> int:
        return self.inner.context(rate)


@register("both")
@dataclass(frozen=True)
class Both(Step):
    """``both STEP ...``: STEP applied to the degraded signal and to the target alike, with the same random draws:
    a property of the source to keep, not a degradation to undo. ``both bandlimit 3500 16000`` makes band-limited
    clean material (a microphone or a codec that lost the highs), which a gains-only denoiser should pass through
    as it is, where ``bandlimit`` alone asks it to restore the highs. Only steps that keep the sample rate."""

    SYNTAX: ClassVar[str] = "both STEP [STEP ARGS...]"
    inner: Step

    @classmethod
    def parse(cls, args: list[str], name: str) -> Both:
        return cls(_inner(args, ("maybe", "identity", "both"), "cannot apply to both signals"))

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        twin = np.random.Generator(type(rng.bit_generator)())
        twin.bit_generator.state = rng.bit_generator.state
        degraded = self.inner.apply(degraded, degraded, rate, rng)[0]
        return degraded, self.inner.apply(target, target, rate, twin)[0], rate

    def context(self, rate: int) -> int:
        return self.inner.context(rate)


def _inner(words: list[str], excluded: tuple[str, ...], why: str) -> Step:
    """The step a wrapper (``maybe``, ``both``) runs, from its words; it must keep the sample rate (``why``)."""
    if not words or words[0] not in STEPS or words[0] in excluded:
        raise ParamError(f"unknown or unsupported step {words[0] if words else ''!r}")
    inner = parse_words(words)
    if not inner.keeps_rate():
        raise ParamError(f"'{words[0]}' changes the sample rate, so it {why}")
    return inner


@register("identity")
@dataclass(frozen=True)
class Identity(Step):
    """``identity P``: with probability P, skip every later step, so the pair is (clean, clean) or whatever the
    earlier steps made (e.g. band-limited only): teaches a model to leave good audio alone. Later steps may not
    change the sample rate (the pipeline draws P and stops; :meth:`apply` itself changes nothing)."""

    SYNTAX: ClassVar[str] = "identity P"
    PARAMS: ClassVar[tuple[Param, ...]] = (Param("P", probability),)
    p: float

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        return degraded, target, rate
