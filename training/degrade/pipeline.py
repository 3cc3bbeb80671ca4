"""The pipeline: a parsed ``--preprocessing`` string, run on a clean segment (or a parallel pair).

:func:`parse_pipeline` reads the whole string once, through the registry of :mod:`.base`, before any audio is
touched; a mistake raises :class:`DegradationError` naming the step, the syntax it expects and what it got.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from rt_enhance.training.degrade.base import STEPS, DegradationError, Pair, ParamError, Step, fit_length, parse_words
from rt_enhance.training.degrade.control import Identity

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pipeline:
    """A parsed ``--preprocessing`` string. Call it on a clean segment; see :meth:`__call__`."""

    steps: tuple[Step, ...]
    spec: str = ""

    def __str__(self) -> str:
        return repr(self.spec)

    def output_rate(self, rate: int) -> int:
        """The sample rate of the pair the pipeline returns for input at ``rate``."""
        for step in self.steps:
            rate = step.output_rate(rate)
        return rate

    def context(self, rate: int) -> int:
        """Samples of extra audio (each side, at ``rate``) the dataset should read around a window."""
        total, start_rate = 0, rate
        for step in self.steps:
            total += int(math.ceil(step.context(rate) * start_rate / rate))
            rate = step.output_rate(rate)
        return total

    def __call__(self, clean: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Degrade ``clean`` mono ``[samples]`` at ``rate`` Hz: returns ``(degraded, target)``, float32
        ``[samples']`` each, time aligned, at :meth:`output_rate` (same length as ``clean`` when that is
        ``rate``)."""
        clean = _mono(clean)
        return self.apply(clean.copy(), clean, rate, rng)

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Run the steps on an existing pair (parallel data: the degraded file and its clean partner)."""
        degraded, target = _mono(degraded).astype(np.float64), _mono(target).astype(np.float64)
        if degraded.shape != target.shape:
            raise ValueError(f"degraded {degraded.shape} and target {target.shape} differ in length")
        length, start_rate = len(target), rate
        for number, step in enumerate(self.steps, 1):
            if isinstance(step, Identity) and rng.random() < step.p:
                break
            degraded, target, rate = _run_step(number, step, degraded, target, rate, rng)
        if rate == start_rate:
            degraded, target = fit_length(degraded, length), fit_length(target, length)
        return degraded.astype(np.float32), target.astype(np.float32)


def _mono(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"the pipeline takes mono audio [samples], got shape {x.shape}")
    return x


def _run_step(number: int, step: Step, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
    try:
        return step.apply(degraded, target, rate, rng)
    except DegradationError as err:
        raise DegradationError(f"step {number} '{step.name}': {err}") from err


def _parse_step(number: int, text: str) -> Step:
    words = text.split()
    if not words:
        raise DegradationError(f"step {number} is empty (two commas in a row, or a trailing comma?)")
    name = words[0]
    if name not in STEPS:
        raise DegradationError(f"step {number} '{name}': unknown step; known steps: {', '.join(sorted(STEPS))}")
    try:
        return parse_words(words)
    except ParamError as err:
        raise DegradationError(f"step {number} '{name}': expected '{STEPS[name].syntax(name)}', got '{text.strip()}' ({err})") from None


def parse_pipeline(spec: str) -> Pipeline:
    """Parse and validate a whole ``--preprocessing`` string (see the package docstring for the syntax).

    An empty or blank string gives the identity pipeline (target = degraded = clean).
    """
    if not spec.strip():
        return Pipeline((), spec)
    steps = tuple(_parse_step(i, part) for i, part in enumerate(spec.split(","), 1))
    _check_identity(steps)
    logger.debug("pipeline %r: %s", spec, steps)
    return Pipeline(steps, spec)


def _check_identity(steps: tuple[Step, ...]) -> None:
    """An ``identity`` step may only be followed by steps that keep the sample rate."""
    for number, step in enumerate(steps, 1):
        if isinstance(step, Identity):
            for later in steps[number:]:
                if later.output_rate(48000) != 48000:
                    raise DegradationError(f"step {number} 'identity': a later step ('{later.name}') changes the sample rate")
