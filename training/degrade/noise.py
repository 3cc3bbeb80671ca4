"""Additive noise steps: the original tool's coloured noises (``whitenoise`` ...) at a level, and ``noise DIR`` /
``noise synth`` at a drawn SNR."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rt_enhance.training.degrade import noisegen
from rt_enhance.training.degrade.base import Pair, Param, ParamError, Step, arity, number, ordered, register
from rt_enhance.training.degrade.files import AudioFolder

logger = logging.getLogger(__name__)

#: ``noise DIR ... vary``: each stretch plays at a speed of 2**U(-VARY_OCTAVES, VARY_OCTAVES) (pitch and tempo
#: together, as a tape would) and is tilted by U(-VARY_TILT_DB, VARY_TILT_DB) dB per octave around
#: TILT_PIVOT_HZ (flat below TILT_FLOOR_HZ), so a few recorded noises stand for many.
VARY_OCTAVES = 1.0
VARY_TILT_DB = 4.0
TILT_PIVOT_HZ = 1000.0
TILT_FLOOR_HZ = 50.0

#: RMS of sox's full-scale white noise (uniform in [-1, 1]); the original's VOLUME scaled that noise.
SOX_FULL_SCALE_RMS = 1.0 / math.sqrt(3.0)
COLOURS = {"whitenoise": "white", "pinknoise": "pink", "brownnoise": "brown", "tpdfnoise": "tpdf"}


@register(*COLOURS)
@dataclass(frozen=True)
class ColouredNoise(Step):
    """``whitenoise|pinknoise|brownnoise|tpdfnoise VARIANCE VOLUME`` (the original tool's noise steps).

    Reading of the two numbers, as the original code did it: the amplitude is ``VOLUME + N(0, VARIANCE)`` drawn
    per segment (VARIANCE is used as the standard deviation of that jitter, as the original passed it to
    ``random.gauss``; the name is historical), and its absolute value scales noise of sox's full-scale level,
    so the added noise has RMS ``|amplitude| / sqrt(3)`` (the RMS of uniform [-1, 1] white noise) whatever its
    colour. Unlike the original (``sox -m``, which halved both signals) the clean signal is not attenuated, so
    input and target keep the same level. Pink/brown noise has no energy below 20 Hz.
    """

    SYNTAX: ClassVar[str] = "whitenoise|pinknoise|brownnoise|tpdfnoise VARIANCE VOLUME"
    PARAMS: ClassVar[tuple[Param, ...]] = (Param("VARIANCE"), Param("VOLUME"))
    TASK: ClassVar[str | None] = "denoise"
    colour: str
    variance: float
    volume: float

    @classmethod
    def build(cls, name: str, values: list[Any]) -> ColouredNoise:
        return cls(COLOURS[name], *values)

    @classmethod
    def syntax(cls, name: str) -> str:
        return f"{name} VARIANCE VOLUME"

    def check(self) -> None:
        if self.variance < 0 or self.volume < 0:
            raise ParamError("VARIANCE and VOLUME must be >= 0")

    @property
    def name(self) -> str:
        return self.colour + "noise"

    def amplitude(self, rng: np.random.Generator) -> float:
        """The per-segment noise amplitude |VOLUME + N(0, VARIANCE)| (full-scale units)."""
        return abs(self.volume + (rng.normal(0.0, self.variance) if self.variance > 0 else 0.0))

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        level = self.amplitude(rng) * SOX_FULL_SCALE_RMS
        return degraded + level * noisegen.synth_noise(self.colour, len(degraded), rate, rng), target, rate


@register("noise")
@dataclass(frozen=True)
class Noise(Step):
    """``noise DIR SNR_MIN SNR_MAX [vary]`` or ``noise synth SNR_MIN SNR_MAX [KINDS]``: additive noise at an SNR
    drawn uniformly in [SNR_MIN, SNR_MAX] dB, measured against the degraded signal over the whole segment the
    step sees (exact up to float rounding; a silent segment counts as -60 dBFS).

    ``DIR``: noise files (any soundfile format, recursive) read lazily: a random file, a random stretch, looped
    when shorter; a stretch that is silent is redrawn (3 tries, then the segment is left clean with a warning).
    With ``vary`` each stretch is also played at a random speed (half to twice, linear interpolation: a sped-up
    stretch keeps what folds down) and tilted by a random spectral slope (:data:`VARY_OCTAVES`,
    :data:`VARY_TILT_DB`): the same recordings at other pitches, tempi and colours.
    ``synth``: built-in generators (training/degrade/noisegen.py); KINDS is a ``+``-separated subset of
    white, tpdf, pink, brown, hum, clicks, babble (default: all), one drawn per segment. A folder literally
    called ``synth`` can be given as ``./synth``. DIR cannot hold spaces or commas (the syntax's separators).
    """

    SYNTAX: ClassVar[str] = "noise DIR SNR_MIN SNR_MAX [vary] | noise synth SNR_MIN SNR_MAX [KINDS]"
    TASK: ClassVar[str | None] = "denoise"
    snr_min: float
    snr_max: float
    files: AudioFolder | None = None
    kinds: tuple[str, ...] = tuple(noisegen.GENERATORS)
    vary: bool = False

    @classmethod
    def parse(cls, args: list[str], name: str) -> Noise:
        arity(args, 3, 4)
        low, high = number(args[1], "SNR_MIN"), number(args[2], "SNR_MAX")
        ordered(low, high, "SNR")
        if args[0] != "synth":
            if len(args) > 3 and args[3] != "vary":
                raise ParamError(f"the 4th word of 'noise DIR' can only be 'vary', got {args[3]!r}")
            return cls(low, high, AudioFolder.scan(args[0]), vary=len(args) > 3)
        kinds = tuple(args[3].split("+")) if len(args) > 3 else tuple(noisegen.GENERATORS)
        unknown = [k for k in kinds if k not in noisegen.GENERATORS]
        if unknown:
            raise ParamError(f"unknown noise kind(s) {', '.join(unknown)}; known: {', '.join(noisegen.GENERATORS)}")
        return cls(low, high, None, kinds)

    def draw_noise(self, n: int, rate: int, rng: np.random.Generator) -> np.ndarray | None:
        """Unscaled noise ``[n]``, or None when the noise files only gave silence."""
        if self.files is None:
            return noisegen.synth_noise(self.kinds[int(rng.integers(len(self.kinds)))], n, rate, rng)
        for _ in range(3):
            segment = self.varied(n, rate, rng) if self.vary else self.files.segment(n, rate, rng)
            if noisegen.power(segment) > 0:
                return segment
        logger.warning("noise: 3 silent stretches drawn from %s; segment left without noise", self.files.folder)
        return None

    def varied(self, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
        """A stretch of ``n`` samples at a drawn speed and spectral tilt (``vary``)."""
        assert self.files is not None
        if n == 0:
            return np.zeros(0)
        speed = 2.0 ** rng.uniform(-VARY_OCTAVES, VARY_OCTAVES)
        slope = rng.uniform(-VARY_TILT_DB, VARY_TILT_DB)
        read = int(math.ceil((n - 1) * speed)) + 2
        stretch = self.files.segment(read, rate, rng)
        return tilt(np.interp(np.arange(n) * speed, np.arange(read), stretch), rate, slope)

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        snr = rng.uniform(self.snr_min, self.snr_max)
        noise = self.draw_noise(len(degraded), rate, rng)
        if noise is None or not len(degraded):
            return degraded, target, rate
        return degraded + noisegen.scale_to_snr(degraded, noise, snr), target, rate


def tilt_gains(freqs: Any, db_per_octave: Any) -> Any:
    """Amplitude gains at ``freqs`` (Hz) of a slope of ``db_per_octave`` through 1 at TILT_PIVOT_HZ, flat below
    TILT_FLOOR_HZ; numpy arrays or torch tensors (the device pipeline's batches), broadcast together."""
    return (freqs.clip(min=TILT_FLOOR_HZ) / TILT_PIVOT_HZ) ** (db_per_octave / (20.0 * math.log10(2.0)))


def tilt(x: np.ndarray, rate: int, db_per_octave: float) -> np.ndarray:
    """``x`` ``[n]`` with its spectrum tilted by ``db_per_octave`` (see :func:`tilt_gains`), filtered over
    ``noisegen.fft_size`` samples (zero-padded: a window with its context can be a length whose FFT is slow)."""
    size = noisegen.fft_size(len(x))
    freqs = np.fft.rfftfreq(size, 1.0 / rate)
    return np.fft.irfft(np.fft.rfft(x, size) * tilt_gains(freqs, db_per_octave), size)[: len(x)]
