"""Sample-wise and level steps: ``clip``, ``quantize`` (what an input stage does to the degraded signal) and
``gain`` (level augmentation of both signals)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from rt_enhance.training.degrade.base import Pair, Param, Step, ordered, positive, register, whole

logger = logging.getLogger(__name__)


@register("clip")
@dataclass(frozen=True)
class Clip(Step):
    """``clip LEVEL``: hard clipping of the degraded signal at +-LEVEL (full scale = 1.0, LEVEL > 0)."""

    SYNTAX: ClassVar[str] = "clip LEVEL"
    PARAMS: ClassVar[tuple[Param, ...]] = (Param("LEVEL", positive),)
    TASK: ClassVar[str | None] = "denoise"
    level: float

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        return np.clip(degraded, -self.level, self.level), target, rate


@register("quantize")
@dataclass(frozen=True)
class Quantize(Step):
    """``quantize BITS``: the degraded signal as BITS-bit PCM would hold it: rounded to multiples of
    2**(1-BITS) and clipped to [-1, 1 - 2**(1-BITS)] (no dither). BITS is a whole number in 1..32."""

    SYNTAX: ClassVar[str] = "quantize BITS"
    PARAMS: ClassVar[tuple[Param, ...]] = (Param("BITS", whole(1, 32)),)
    TASK: ClassVar[str | None] = "denoise"
    bits: int

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        step = 2.0 ** (1 - self.bits)
        return np.clip(np.round(degraded / step) * step, -1.0, 1.0 - step), target, rate


@register("gain")
@dataclass(frozen=True)
class Gain(Step):
    """``gain DB_MIN DB_MAX``: a gain drawn uniformly in [DB_MIN, DB_MAX] dB applied to BOTH signals (level
    augmentation: the target stays the clean version of the input). Put it before ``clip``/``quantize`` to
    simulate a too hot or too quiet input stage."""

    SYNTAX: ClassVar[str] = "gain DB_MIN DB_MAX"
    PARAMS: ClassVar[tuple[Param, ...]] = (Param("DB_MIN"), Param("DB_MAX"))
    db_min: float
    db_max: float

    def check(self) -> None:
        ordered(self.db_min, self.db_max, "gain")

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        factor = 10.0 ** (rng.uniform(self.db_min, self.db_max) / 20.0)
        return degraded * factor, target * factor, rate
