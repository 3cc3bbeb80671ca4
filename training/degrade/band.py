"""Band and rate steps: ``sample`` and ``scale`` (resampling, as in the original tool), ``lowpass`` and
``bandlimit`` (zero-phase low-pass filters: what a microphone, a codec or a resampler does to the highs), and
``miceq`` (a random microphone colouration, :mod:`.colour`)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import signal

from rt_enhance.training.degrade import colour
from rt_enhance.training.degrade.base import (
    DegradationError,
    Pair,
    Param,
    ParamError,
    Step,
    choice,
    rate,
    register,
    resample,
    whole,
)

logger = logging.getLogger(__name__)


@register("sample")
@dataclass(frozen=True)
class Sample(Step):
    """``sample LOW HIGH``: the degraded signal is resampled to LOW Hz and back up to HIGH Hz, so it keeps no
    content above LOW/2; the target is resampled to HIGH Hz (unchanged when HIGH is already the current rate,
    the usual case: HIGH is the training rate). soxr HQ, linear phase, so both stay time aligned."""

    SYNTAX: ClassVar[str] = "sample LOW HIGH"
    PARAMS: ClassVar[tuple[Param, ...]] = (Param("LOW", rate), Param("HIGH", rate))
    TASK: ClassVar[str | None] = "bandwidth_extension"
    low: int
    high: int

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        length = int(round(len(target) * self.high / rate))
        down = resample(degraded, rate, self.low)
        return resample(down, self.low, self.high, length), resample(target, rate, self.high, length), self.high

    def output_rate(self, rate: int) -> int:
        return self.high

    def context(self, rate: int) -> int:
        return 64 + int(math.ceil(64 * max(1.0, rate / self.low)))


@register("scale")
@dataclass(frozen=True)
class Scale(Step):
    """``scale RATE``: both signals resampled to RATE Hz (the original tool's meaning; with RATE equal to the
    training rate it changes nothing)."""

    SYNTAX: ClassVar[str] = "scale RATE"
    PARAMS: ClassVar[tuple[Param, ...]] = (Param("RATE", rate),)
    rate: int

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        return resample(degraded, rate, self.rate), resample(target, rate, self.rate), self.rate

    def output_rate(self, rate: int) -> int:
        return self.rate

    def context(self, rate: int) -> int:
        return 256 if rate != self.rate else 0


@register("lowpass")
@dataclass(frozen=True)
class Lowpass(Step):
    """``lowpass HZ [cheby1|butter] [ORDER]``: zero-phase (forward-backward, so alignment is kept) low-pass of
    the degraded signal at HZ. Default ``cheby1 8`` with 0.05 dB ripple, the anti-aliasing filter of
    Kuleshov et al. / scipy's decimate; forward-backward filtering doubles the attenuation in dB.
    HZ > 0, ORDER a whole number in 1..32."""

    SYNTAX: ClassVar[str] = "lowpass HZ [cheby1|butter] [ORDER]"
    PARAMS: ClassVar[tuple[Param, ...]] = (
        Param("HZ"),
        Param("TYPE", choice("cheby1", "butter"), "cheby1"),
        Param("ORDER", whole(1, 32), 8),
    )
    TASK: ClassVar[str | None] = "bandwidth_extension"
    hz: float
    kind: str = "cheby1"
    order: int = 8

    def check(self) -> None:
        if self.hz <= 0:
            raise ParamError(f"HZ must be > 0, got {self.hz:g}")

    def sos(self, rate: int) -> np.ndarray:
        """Second-order sections of the filter at ``rate``; DegradationError if HZ is not below Nyquist."""
        if self.hz >= rate / 2:
            raise DegradationError(f"cutoff {self.hz:g} Hz is not below the Nyquist frequency {rate / 2:g} Hz")
        if self.kind == "cheby1":
            return signal.cheby1(self.order, 0.05, self.hz, fs=rate, output="sos")
        return signal.butter(self.order, self.hz, fs=rate, output="sos")

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        sos = self.sos(rate)
        pad = min(len(degraded) - 1, 3 * (2 * len(sos) + 1))
        return signal.sosfiltfilt(sos, degraded, padlen=max(pad, 0)), target, rate

    def context(self, rate: int) -> int:
        return int(math.ceil(self.order * rate / self.hz)) + 64


@register("bandlimit")
@dataclass(frozen=True)
class Bandlimit(Step):
    """``bandlimit HZ_MIN HZ_MAX``: a low-pass at a cutoff drawn log-uniformly in [HZ_MIN, HZ_MAX] for each
    segment, with a random filter (Chebyshev I or Butterworth, order 4-12): the many ways a microphone, a codec or
    a resampler loses the highs. Zero-phase, so alignment is kept. Cutoffs at or above Nyquist leave the
    segment unchanged."""

    SYNTAX: ClassVar[str] = "bandlimit HZ_MIN HZ_MAX"
    PARAMS: ClassVar[tuple[Param, ...]] = (Param("HZ_MIN"), Param("HZ_MAX"))
    low: float
    high: float

    def check(self) -> None:
        if not 0 < self.low <= self.high:
            raise ParamError("need 0 < HZ_MIN <= HZ_MAX")

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        hz = float(np.exp(rng.uniform(np.log(self.low), np.log(self.high))))
        if hz >= 0.49 * rate:
            return degraded, target, rate
        step = Lowpass(hz, str(rng.choice(["cheby1", "butter"])), int(rng.integers(4, 13)))
        return step.apply(degraded, target, rate, rng)

    def context(self, rate: int) -> int:
        return int(math.ceil(12 * rate / self.low)) + 64


@register("miceq")
@dataclass(frozen=True)
class MicColour(Step):
    """``miceq``: the degraded signal through a microphone EQ drawn per segment (:func:`.colour.draw_mic_eq`: an
    optional low cut, a low shelf, 1-3 resonances and a high shelf, RBJ biquads, causal like a real capsule);
    the target stays uncoloured. ``maybe P miceq`` colours a share P of the segments."""

    SYNTAX: ClassVar[str] = "miceq"

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        return colour.random_mic_eq(degraded, rate, rng), target, rate

    def context(self, rate: int) -> int:
        return rate // 20  # the low cut's and low shelf's ring-in (50 ms)
