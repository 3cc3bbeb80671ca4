"""Room steps: ``reverb`` (the original tool's sox-style synthetic reverb), ``rir DIR`` (measured or corpus
responses) and ``rir simulate`` (a shoebox room from :mod:`.rooms`, the project's one room simulator).

Every room step keeps the pair aligned on the response's direct path, and the ``rir`` steps' target is the clean
signal through the direct sound (see :func:`~.base.direct_part`)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import soundfile as sf
from scipy import signal

from rt_enhance.training.degrade import noisegen, rooms
from rt_enhance.training.degrade.base import (
    DIRECT_SECONDS,
    DegradationError,
    Pair,
    Param,
    ParamError,
    Step,
    convolve_aligned,
    early_part,
    number,
    ordered,
    rate,
    register,
    resample,
)
from rt_enhance.training.degrade.files import AudioFolder

logger = logging.getLogger(__name__)

_REVERB_NAMES = ("VARIANCE", "REVERBERANCE", "HF_DAMPING", "ROOM_SCALE", "STEREO_DEPTH", "PRE_DELAY", "WET_GAIN")


@register("reverb")
@dataclass(frozen=True)
class Reverb(Step):
    """``reverb RATE [VARIANCE [REVERBERANCE [HF_DAMPING [ROOM_SCALE [STEREO_DEPTH [PRE_DELAY [WET_GAIN]]]]]]]``.

    The original tool's syntax (it called sox's reverb with these parameters, defaults 0 80 100 100 100 40 0,
    then resampled both signals to RATE). Here the reverb is a synthetic impulse response: a unit direct path,
    then after PRE_DELAY ms an exponentially decaying Gaussian-noise tail, so the target (the clean signal) is
    aligned with the degraded signal's direct path. Exact reading of the parameters:

    - RT60 = (0.1 + 0.9 * REVERBERANCE/100) * (0.25 + 0.75 * ROOM_SCALE/100) s (80 %, 100 % -> 0.82 s);
    - HF_DAMPING (%): above 2 kHz the tail decays faster, RT60_hf = RT60 * (1 - 0.8 * HF_DAMPING/100);
    - WET_GAIN (dB): tail energy relative to the direct path (0 dB: direct-to-reverberant ratio 0 dB);
    - STEREO_DEPTH: accepted for compatibility; it has no effect on mono audio;
    - VARIANCE: the standard deviation of a Gaussian jitter added to each of the six parameters per segment
      (what the original meant to do; its code dropped the jitter), then clamped to sox's ranges
      (0-100 %, PRE_DELAY 0-500 ms, WET_GAIN -10..10 dB);
    - RATE: both signals are resampled to RATE Hz afterwards, as in the original.
    """

    SYNTAX: ClassVar[str] = "reverb RATE [VARIANCE [REVERBERANCE [HF_DAMPING [ROOM_SCALE [STEREO_DEPTH [PRE_DELAY [WET_GAIN]]]]]]]"
    DEFAULTS: ClassVar[tuple[float, ...]] = (0.0, 80.0, 100.0, 100.0, 100.0, 40.0, 0.0)
    LIMITS: ClassVar[tuple[tuple[float, float], ...]] = ((0, 100), (0, 100), (0, 100), (0, 100), (0, 500), (-10, 10))
    PARAMS: ClassVar[tuple[Param, ...]] = (Param("RATE", rate), *(Param(n, number, d) for n, d in zip(_REVERB_NAMES, DEFAULTS)))
    TASK: ClassVar[str | None] = "dereverb"
    rate: int
    variance: float = 0.0
    params: tuple[float, ...] = DEFAULTS[1:]

    @classmethod
    def build(cls, name: str, values: list[Any]) -> Reverb:
        return cls(values[0], values[1], tuple(values[2:]))

    def check(self) -> None:
        if self.variance < 0:
            raise ParamError("VARIANCE must be >= 0")
        for value, (lo, hi), what in zip(self.params, self.LIMITS, _REVERB_NAMES[1:]):
            if not lo <= value <= hi:
                raise ParamError(f"{what} must lie in [{lo:g}, {hi:g}], got {value:g}")

    def draw(self, rng: np.random.Generator) -> tuple[float, ...]:
        """Per-segment parameters: each jittered by N(0, VARIANCE) and clamped to its range."""
        jitter = rng.normal(0.0, self.variance, len(self.params)) if self.variance > 0 else np.zeros(len(self.params))
        return tuple(float(np.clip(p + j, lo, hi)) for p, j, (lo, hi) in zip(self.params, jitter, self.LIMITS))

    @staticmethod
    def rt60(reverberance: float, room_scale: float) -> float:
        """The documented mapping from sox's percentages to a reverberation time in seconds."""
        return (0.1 + 0.9 * reverberance / 100) * (0.25 + 0.75 * room_scale / 100)

    def impulse_response(self, params: tuple[float, ...], rate: int, rng: np.random.Generator) -> np.ndarray:
        """The synthetic RIR ``[taps]`` for drawn ``params``; tap 0 is the unit direct path."""
        reverberance, damping, room_scale, _, pre_delay, wet_gain = params
        rt60 = self.rt60(reverberance, room_scale)
        start, length = int(round(pre_delay * 1e-3 * rate)), max(1, int(math.ceil(rt60 * rate)))
        tail = _two_band_tail(length, rate, rt60, rt60 * (1 - 0.8 * damping / 100), rng)
        rir = np.zeros(1 + start + length)
        rir[0] = 1.0
        rir[1 + start :] = tail * math.sqrt(10 ** (wet_gain / 10) / max(noisegen.power(tail) * length, 1e-30))
        return rir

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        rir = self.impulse_response(self.draw(rng), rate, rng)
        wet = convolve_aligned(degraded, rir, 0)
        return resample(wet, rate, self.rate), resample(target, rate, self.rate), self.rate

    def output_rate(self, rate: int) -> int:
        return self.rate

    def context(self, rate: int) -> int:
        worst = [min(p + 3 * self.variance, hi) for p, (_, hi) in zip(self.params, self.LIMITS)]
        return int(math.ceil((self.rt60(worst[0], worst[2]) + worst[4] * 1e-3) * rate)) + 256


def _two_band_tail(n: int, rate: int, rt60_low: float, rt60_high: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise ``[n]`` decaying by 60 dB in ``rt60_low`` s below 2 kHz and ``rt60_high`` s above."""
    noise = rng.standard_normal(n)
    crossover = min(2000.0, 0.4 * rate)
    low = signal.sosfiltfilt(signal.butter(2, crossover, fs=rate, output="sos"), noise) if n > 15 else noise
    t = np.arange(n) / rate
    decay = 3 * math.log(10)  # amplitude falls by 60 dB (1e-3) at t = rt60
    return low * np.exp(-decay * t / rt60_low) + (noise - low) * np.exp(-decay * t / max(rt60_high, 1e-3))


def _reverberate(degraded: np.ndarray, target: np.ndarray, rir: np.ndarray, direct: int, rate: int, early: float = 0.0) -> Pair:
    """The pair through ``rir`` (degraded) and through its direct sound (target; with ``early`` > 0 s, also
    the reflections that arrive within ``early`` of it: :func:`~.base.early_part`), aligned on tap ``direct``."""
    target = convolve_aligned(target, early_part(rir, direct, rate, early), direct)
    return convolve_aligned(degraded, rir, direct), target, rate


def _split_early(args: list[str]) -> tuple[list[str], float]:
    """``[..., "early", MS]`` -> the other words and the early part in seconds (0 without it)."""
    if "early" not in args:
        return args, 0.0
    at = args.index("early")
    if at != len(args) - 2:
        raise ParamError("'early MS' comes last: the milliseconds of early reflections the target keeps, e.g. early 50")
    ms = number(args[-1], "early MS")
    if not 0 < ms <= 200:
        raise ParamError(f"early MS must lie in (0, 200] ms, got {args[-1]}")
    return args[:at], ms / 1000.0


@register("rir")
@dataclass(frozen=True)
class RirFiles(Step):
    """``rir DIR [DRR_MIN DRR_MAX] [early MS]``: convolution with a random impulse response file from DIR (recursive; first
    channel; resampled to the current rate). The direct path is the largest-magnitude tap; the response is scaled
    so that tap is 1 and the result is shifted so it lands on the target (direct-path alignment). With
    DRR_MIN DRR_MAX, the reverberant part (everything beyond 2.5 ms around the direct path) is rescaled to a
    direct-to-reverberant ratio drawn uniformly in that range (dB): the distance of the microphone, from close
    (+15) to across the room (-5). Windows get up to 2 s of past context for the tail. The target is the clean
    signal through the direct sound; ``early MS`` keeps the reflections of the first MS milliseconds in it too
    (:func:`~.base.early_part`): only the late reverberation is to be removed."""

    SYNTAX: ClassVar[str] = "rir DIR [DRR_MIN DRR_MAX] [early MS] | rir simulate RT60_MIN RT60_MAX [early MS]"
    TASK: ClassVar[str | None] = "dereverb"
    files: AudioFolder
    drr: tuple[float, float] | None = None
    early: float = 0.0

    @classmethod
    def parse(cls, args: list[str], name: str) -> Step:
        if args and args[0] == "simulate":
            return RirSimulate.parse(args[1:], name)
        args, early = _split_early(args)
        if len(args) not in (1, 3):
            raise ParamError("give a folder, optionally followed by DRR_MIN DRR_MAX in dB, then optionally early MS")
        drr = None
        if len(args) == 3:
            drr = (number(args[1], "DRR_MIN"), number(args[2], "DRR_MAX"))
            ordered(*drr, "DRR")
        return cls(AudioFolder.scan(args[0]), drr, early)

    def with_drr(self, rir: np.ndarray, direct: int, rate: int, rng: np.random.Generator) -> np.ndarray:
        """``rir`` with its reverberant part rescaled to a random direct-to-reverberant ratio (unchanged without a
        DRR range or a tail)."""
        half = int(DIRECT_SECONDS * rate)
        near = np.zeros_like(rir, dtype=bool)
        near[max(direct - half, 0) : direct + half + 1] = True
        direct_energy, tail_energy = np.sum(rir[near] ** 2), np.sum(rir[~near] ** 2)
        if self.drr is None or tail_energy <= 0:
            return rir
        wanted = float(rng.uniform(*self.drr))
        scale = np.sqrt(direct_energy / tail_energy * 10 ** (-wanted / 10))
        return np.where(near, rir, rir * scale)

    def load(self, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """A random response ``[taps]`` at ``rate``, normalised to a unit direct path, and its direct-path tap."""
        path = self.files.paths[int(rng.integers(len(self.files.paths)))]
        data, file_rate = sf.read(path, dtype="float64", always_2d=True)
        rir = resample(data[:, 0], file_rate, rate)
        direct = int(np.argmax(np.abs(rir)))
        if rir[direct] == 0:
            raise DegradationError(f"impulse response {path} is silent")
        return rir / rir[direct], direct

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        rir, direct = self.load(rate, rng)
        if self.drr is not None:
            rir = self.with_drr(rir, direct, rate, rng)
        return _reverberate(degraded, target, rir, direct, rate, self.early)

    def context(self, rate: int) -> int:
        longest = max(self.files.info(i).frames_at(rate) for i in range(len(self.files.paths)))
        return min(longest, 2 * rate)


@dataclass(frozen=True)
class RirSimulate(Step):
    """``rir simulate RT60_MIN RT60_MAX``: a room from :func:`.rooms.simulate` (the corpus's room simulator: a
    shoebox from a booth to a hall, image sources up to order 8, then a diffuse tail that decays faster in the
    highs) whose measured RT60 (Schroeder T30) is near a value drawn uniformly in [RT60_MIN, RT60_MAX] s (the
    Sabine target is that value over :data:`.rooms.SABINE_BIAS`). The response is scaled to a unit direct path
    (the strongest tap: positions are redrawn while a reflection outweighs it) and the pair is aligned on it,
    exactly as ``rir DIR`` treats the corpus's stored rooms."""

    NAME: ClassVar[str] = "rir"
    SYNTAX: ClassVar[str] = "rir simulate RT60_MIN RT60_MAX [early MS]"
    PARAMS: ClassVar[tuple[Param, ...]] = (Param("RT60_MIN"), Param("RT60_MAX"))
    TASK: ClassVar[str | None] = "dereverb"
    rt60_min: float
    rt60_max: float
    early: float = 0.0

    @classmethod
    def parse(cls, args: list[str], name: str) -> Step:
        args, early = _split_early(args)
        step = super().parse(args, name)
        assert isinstance(step, RirSimulate)
        return step if not early else RirSimulate(step.rt60_min, step.rt60_max, early)

    def check(self) -> None:
        ordered(self.rt60_min, self.rt60_max, "RT60")
        if self.rt60_min < 0.1 or self.rt60_max > 3.0:
            raise ParamError("RT60 must lie in [0.1, 3] s")
        try:
            import pyroomacoustics  # noqa: F401
        except ImportError:
            raise ParamError("needs pyroomacoustics: pip install 'rt-enhance[train]'") from None

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        rir, direct = simulate_rir(rng.uniform(self.rt60_min, self.rt60_max), rate, rng)
        return _reverberate(degraded, target, rir, direct, rate, self.early)

    def context(self, rate: int) -> int:
        return int(math.ceil(1.3 * self.rt60_max * rate))


def simulate_rir(rt60: float, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A simulated room response ``[taps]`` whose measured RT60 is about ``rt60`` s, scaled to a unit direct
    path, and the tap of that direct path (:data:`.rooms.DIRECT_INDEX`)."""
    try:
        rir, _ = rooms.simulate(rt60 / rooms.SABINE_BIAS, rate, rng)
    except rooms.RoomError as err:
        raise DegradationError(str(err)) from None
    return rir / rir[rooms.DIRECT_INDEX], rooms.DIRECT_INDEX
