"""The degradation pipeline (``--preprocessing``): turns a clean segment into a (degraded, target) pair.

Syntax: steps separated by commas, each step's words by spaces, e.g. ``"sample 5000 10000,whitenoise 0 0.002"``.
:func:`parse_pipeline` validates the whole string before any audio is touched; a mistake raises
:class:`DegradationError` naming the step, the syntax it expects and what it got.

Every step works on float64 mono ``[samples]`` pairs ``(degraded, target)``: it degrades ``degraded`` and keeps
``target`` time aligned with it (reverberation is aligned on the direct path, and its target is the clean
signal through the room's direct sound). Steps that change the sample rate (``sample``, ``reverb``,
``scale``, as in the original tool) resample both signals. Pure numpy/scipy/soxr (and
pyroomacoustics for ``rir simulate``): nothing is shelled out.

Steps (the original tool's first, then the new ones):

- ``sample LOW HIGH``: degraded resampled to LOW Hz then to HIGH Hz (band limit LOW/2); target resampled to HIGH.
- ``whitenoise|pinknoise|brownnoise|tpdfnoise VARIANCE VOLUME``: additive noise of that colour.
- ``reverb RATE [VARIANCE [REVERBERANCE [HF_DAMPING [ROOM_SCALE [STEREO_DEPTH [PRE_DELAY [WET_GAIN]]]]]]]``.
- ``scale RATE``: both signals resampled to RATE.
- ``lowpass HZ [cheby1|butter] [ORDER]``, ``noise DIR SNR_MIN SNR_MAX``, ``noise synth SNR_MIN SNR_MAX [KINDS]``,
  ``rir simulate RT60_MIN RT60_MAX``, ``rir DIR``, ``clip LEVEL``, ``quantize BITS``, ``gain DB_MIN DB_MAX``,
  ``bandlimit HZ_MIN HZ_MAX`` (random cutoff and filter), ``maybe P STEP ...`` (a step with probability P), ``both STEP ...`` (applied to the target too),
  ``identity P`` (with probability P, stop here: clean or lightly degraded pairs).

Each step class's docstring gives its exact reading of the parameters.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import soundfile as sf
import soxr
from scipy import signal

from rt_enhance.realtime.errors import RtEnhanceError
from rt_enhance.training import noise as noisegen
from rt_enhance.training.datasets import AudioInfo, audio_info, list_audio, read_segment

logger = logging.getLogger(__name__)

Pair = tuple[np.ndarray, np.ndarray, int]


class DegradationError(RtEnhanceError, ValueError):
    """A preprocessing string is malformed, or a step cannot run at the given rate; the message names the step."""


class _Bad(RtEnhanceError, ValueError):
    """Raised by a step's parser; parse_pipeline adds the step number, name and syntax."""


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _Bad(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise _Bad(f"{what} must be finite, got {text!r}")
    return value


def _rate(text: str, what: str) -> int:
    value = _number(text, what)
    if value <= 0 or value != int(value):
        raise _Bad(f"{what} must be a positive whole number of Hz, got {text!r}")
    return int(value)


def _arity(args: Sequence[str], least: int, most: int) -> None:
    if not least <= len(args) <= most:
        count = str(least) if least == most else f"{least} to {most}"
        raise _Bad(f"takes {count} parameters, got {len(args)}")


def _range(low: float, high: float, what: str) -> None:
    if low > high:
        raise _Bad(f"{what}: the minimum {low:g} is above the maximum {high:g}")


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


# ---------------------------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------------------------


class Step:
    """One pipeline step. Subclasses set NAME and SYNTAX and implement ``parse`` and ``apply``."""

    NAME: ClassVar[str] = ""
    SYNTAX: ClassVar[str] = ""

    @classmethod
    def parse(cls, args: list[str], name: str) -> Step:
        """Build the step from its words after the name; raise _Bad with the problem."""
        raise NotImplementedError

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        """Return ``(degraded, target, rate)`` after this step; both ``[samples]`` float64, same length."""
        raise NotImplementedError

    def output_rate(self, rate: int) -> int:
        """Sample rate after this step, given the rate before it."""
        return rate

    def context(self, rate: int) -> int:
        """Samples of surrounding audio this step wants on each side of a window (reverb tails, filter edges)."""
        return 0


@dataclass(frozen=True)
class Sample(Step):
    """``sample LOW HIGH``: the degraded signal is resampled to LOW Hz and back up to HIGH Hz, so it keeps no
    content above LOW/2; the target is resampled to HIGH Hz (unchanged when HIGH is already the current rate,
    the usual case: HIGH is the training rate). soxr HQ, linear phase, so both stay time aligned."""

    NAME: ClassVar[str] = "sample"
    SYNTAX: ClassVar[str] = "sample LOW HIGH"
    low: int
    high: int

    @classmethod
    def parse(cls, args: list[str], name: str) -> Sample:
        _arity(args, 2, 2)
        return cls(_rate(args[0], "LOW"), _rate(args[1], "HIGH"))

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        length = int(round(len(target) * self.high / rate))
        down = resample(degraded, rate, self.low)
        return resample(down, self.low, self.high, length), resample(target, rate, self.high, length), self.high

    def output_rate(self, rate: int) -> int:
        return self.high

    def context(self, rate: int) -> int:
        return 64 + int(math.ceil(64 * max(1.0, rate / self.low)))


#: RMS of sox's full-scale white noise (uniform in [-1, 1]); the original's VOLUME scaled that noise.
SOX_FULL_SCALE_RMS = 1.0 / math.sqrt(3.0)
_COLOURS = {"whitenoise": "white", "pinknoise": "pink", "brownnoise": "brown", "tpdfnoise": "tpdf"}


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
    colour: str
    variance: float
    volume: float

    @classmethod
    def parse(cls, args: list[str], name: str) -> ColouredNoise:
        _arity(args, 2, 2)
        variance, volume = _number(args[0], "VARIANCE"), _number(args[1], "VOLUME")
        if variance < 0 or volume < 0:
            raise _Bad("VARIANCE and VOLUME must be >= 0")
        return cls(_COLOURS[name], variance, volume)

    @property
    def name(self) -> str:
        return self.colour + "noise"

    def amplitude(self, rng: np.random.Generator) -> float:
        """The per-segment noise amplitude |VOLUME + N(0, VARIANCE)| (full-scale units)."""
        return abs(self.volume + (rng.normal(0.0, self.variance) if self.variance > 0 else 0.0))

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        level = self.amplitude(rng) * SOX_FULL_SCALE_RMS
        return degraded + level * noisegen.synth_noise(self.colour, len(degraded), rate, rng), target, rate


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

    NAME: ClassVar[str] = "reverb"
    SYNTAX: ClassVar[str] = "reverb RATE [VARIANCE [REVERBERANCE [HF_DAMPING [ROOM_SCALE [STEREO_DEPTH " \
                            "[PRE_DELAY [WET_GAIN]]]]]]]"
    DEFAULTS: ClassVar[tuple[float, ...]] = (0.0, 80.0, 100.0, 100.0, 100.0, 40.0, 0.0)
    LIMITS: ClassVar[tuple[tuple[float, float], ...]] = ((0, 100), (0, 100), (0, 100), (0, 100), (0, 500), (-10, 10))
    rate: int
    variance: float = 0.0
    params: tuple[float, ...] = DEFAULTS[1:]

    @classmethod
    def parse(cls, args: list[str], name: str) -> Reverb:
        _arity(args, 1, 8)
        names = ("VARIANCE", "REVERBERANCE", "HF_DAMPING", "ROOM_SCALE", "STEREO_DEPTH", "PRE_DELAY", "WET_GAIN")
        values = [_number(a, n) for a, n in zip(args[1:], names)] + list(cls.DEFAULTS[len(args) - 1 :])
        if values[0] < 0:
            raise _Bad("VARIANCE must be >= 0")
        for value, (lo, hi), what in zip(values[1:], cls.LIMITS, names[1:]):
            if not lo <= value <= hi:
                raise _Bad(f"{what} must lie in [{lo:g}, {hi:g}], got {value:g}")
        return cls(_rate(args[0], "RATE"), values[0], tuple(values[1:]))

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


@dataclass(frozen=True)
class Scale(Step):
    """``scale RATE``: both signals resampled to RATE Hz (the original tool's meaning; with RATE equal to the
    training rate it changes nothing)."""

    NAME: ClassVar[str] = "scale"
    SYNTAX: ClassVar[str] = "scale RATE"
    rate: int

    @classmethod
    def parse(cls, args: list[str], name: str) -> Scale:
        _arity(args, 1, 1)
        return cls(_rate(args[0], "RATE"))

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        return resample(degraded, rate, self.rate), resample(target, rate, self.rate), self.rate

    def output_rate(self, rate: int) -> int:
        return self.rate

    def context(self, rate: int) -> int:
        return 256 if rate != self.rate else 0


@dataclass(frozen=True)
class Lowpass(Step):
    """``lowpass HZ [cheby1|butter] [ORDER]``: zero-phase (forward-backward, so alignment is kept) low-pass of
    the degraded signal at HZ. Default ``cheby1 8`` with 0.05 dB ripple, the anti-aliasing filter of
    Kuleshov et al. / scipy's decimate; forward-backward filtering doubles the attenuation in dB."""

    NAME: ClassVar[str] = "lowpass"
    SYNTAX: ClassVar[str] = "lowpass HZ [cheby1|butter] [ORDER]"
    hz: float
    kind: str = "cheby1"
    order: int = 8

    @classmethod
    def parse(cls, args: list[str], name: str) -> Lowpass:
        _arity(args, 1, 3)
        hz = _number(args[0], "HZ")
        kind = args[1] if len(args) > 1 else "cheby1"
        order = _number(args[2], "ORDER") if len(args) > 2 else 8
        if hz <= 0 or kind not in ("cheby1", "butter") or order != int(order) or not 1 <= order <= 32:
            raise _Bad("HZ must be > 0, the type cheby1 or butter, ORDER a whole number in 1..32")
        return cls(hz, kind, int(order))

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


@dataclass(frozen=True)
class AudioFolder:
    """Audio files (noise or impulse responses) under a folder, listed at parse time; headers read on first use."""

    folder: str
    paths: tuple[str, ...]
    _infos: dict[str, AudioInfo] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def scan(cls, folder: str) -> AudioFolder:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise _Bad(f"folder {folder!r} does not exist")
        files = tuple(str(p) for p in list_audio(path))
        if not files:
            raise _Bad(f"folder {folder!r} holds no audio files")
        return cls(folder, files)

    def info(self, index: int) -> AudioInfo:
        path = self.paths[index]
        if path not in self._infos:
            self._infos[path] = audio_info(path)
        return self._infos[path]

    def segment(self, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
        """A random file's random ``n``-sample stretch at ``rate``; a shorter file is looped from a random point."""
        info = self.info(int(rng.integers(len(self.paths))))
        frames = info.frames_at(rate)
        if frames >= n:
            return read_segment(info, int(rng.integers(frames - n + 1)), n, rate).astype(np.float64)
        whole = read_segment(info, 0, max(frames, 1), rate).astype(np.float64)
        return np.roll(np.resize(whole, n), -int(rng.integers(len(whole))))


@dataclass(frozen=True)
class Noise(Step):
    """``noise DIR SNR_MIN SNR_MAX`` or ``noise synth SNR_MIN SNR_MAX [KINDS]``: additive noise at an SNR drawn
    uniformly in [SNR_MIN, SNR_MAX] dB, measured against the degraded signal over the whole segment the step
    sees (exact up to float rounding; a silent segment counts as -60 dBFS).

    ``DIR``: noise files (any soundfile format, recursive) read lazily: a random file, a random stretch, looped
    when shorter; a stretch that is silent is redrawn (3 tries, then the segment is left clean with a warning).
    ``synth``: built-in generators (training/noise.py); KINDS is a ``+``-separated subset of
    white, tpdf, pink, brown, hum, clicks, babble (default: all), one drawn per segment. A folder literally
    called ``synth`` can be given as ``./synth``. DIR cannot hold spaces or commas (the syntax's separators).
    """

    NAME: ClassVar[str] = "noise"
    SYNTAX: ClassVar[str] = "noise DIR|synth SNR_MIN SNR_MAX [KINDS]"
    snr_min: float
    snr_max: float
    files: AudioFolder | None = None
    kinds: tuple[str, ...] = tuple(noisegen.GENERATORS)

    @classmethod
    def parse(cls, args: list[str], name: str) -> Noise:
        _arity(args, 3, 4 if args and args[0] == "synth" else 3)
        low, high = _number(args[1], "SNR_MIN"), _number(args[2], "SNR_MAX")
        _range(low, high, "SNR")
        if args[0] != "synth":
            return cls(low, high, AudioFolder.scan(args[0]))
        kinds = tuple(args[3].split("+")) if len(args) > 3 else tuple(noisegen.GENERATORS)
        unknown = [k for k in kinds if k not in noisegen.GENERATORS]
        if unknown:
            raise _Bad(f"unknown noise kind(s) {', '.join(unknown)}; known: {', '.join(noisegen.GENERATORS)}")
        return cls(low, high, None, kinds)

    def draw_noise(self, n: int, rate: int, rng: np.random.Generator) -> np.ndarray | None:
        """Unscaled noise ``[n]``, or None when the noise files only gave silence."""
        if self.files is None:
            return noisegen.synth_noise(self.kinds[int(rng.integers(len(self.kinds)))], n, rate, rng)
        for _ in range(3):
            segment = self.files.segment(n, rate, rng)
            if noisegen.power(segment) > 0:
                return segment
        logger.warning("noise: 3 silent stretches drawn from %s; segment left without noise", self.files.folder)
        return None

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        snr = rng.uniform(self.snr_min, self.snr_max)
        noise = self.draw_noise(len(degraded), rate, rng)
        if noise is None or not len(degraded):
            return degraded, target, rate
        return degraded + noisegen.scale_to_snr(degraded, noise, snr), target, rate


@dataclass(frozen=True)
class RirFiles(Step):
    """``rir DIR [DRR_MIN DRR_MAX]``: convolution with a random impulse response file from DIR (recursive; first
    channel; resampled to the current rate). The direct path is the largest-magnitude tap; the response is scaled
    so that tap is 1 and the result is shifted so it lands on the target (direct-path alignment). With
    DRR_MIN DRR_MAX, the reverberant part (everything beyond 2.5 ms around the direct path) is rescaled to a
    direct-to-reverberant ratio drawn uniformly in that range (dB): the distance of the microphone, from close
    (+15) to across the room (-5). Windows get up to 2 s of past context for the tail."""

    NAME: ClassVar[str] = "rir"
    SYNTAX: ClassVar[str] = "rir DIR [DRR_MIN DRR_MAX] | rir simulate RT60_MIN RT60_MAX"
    files: AudioFolder
    drr: tuple[float, float] | None = None

    @classmethod
    def parse(cls, args: list[str], name: str) -> Step:
        if args and args[0] == "simulate":
            return RirSimulate.parse(args[1:], name)
        if len(args) not in (1, 3):
            raise _Bad("give a folder, optionally followed by DRR_MIN DRR_MAX in dB")
        drr = None
        if len(args) == 3:
            drr = (_number(args[1], "DRR_MIN"), _number(args[2], "DRR_MAX"))
            _range(*drr, "DRR")
        return cls(AudioFolder.scan(args[0]), drr)

    def with_drr(self, rir: np.ndarray, direct: int, rate: int, rng: np.random.Generator) -> np.ndarray:
        """``rir`` with its reverberant part rescaled to a random direct-to-reverberant ratio."""
        half = int(DIRECT_SECONDS * rate)
        near = np.zeros_like(rir, dtype=bool)
        near[max(direct - half, 0) : direct + half + 1] = True
        direct_energy, tail_energy = np.sum(rir[near] ** 2), np.sum(rir[~near] ** 2)
        if tail_energy <= 0:
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
        target = convolve_aligned(target, direct_part(rir, direct, rate), direct)
        return convolve_aligned(degraded, rir, direct), target, rate

    def context(self, rate: int) -> int:
        longest = max(self.files.info(i).frames_at(rate) for i in range(len(self.files.paths)))
        return min(longest, 2 * rate)


#: Image-source order simulated exactly; later reflections are a diffuse exponential tail (see RirSimulate).
ISM_MAX_ORDER = 6


@dataclass(frozen=True)
class RirSimulate(Step):
    """``rir simulate RT60_MIN RT60_MAX``: a random shoebox room (3-10 x 3-8 x 2.4-4 m) with source and mic at
    least 0.5 m from the walls and each other, absorption set by Sabine's formula for an RT60 drawn uniformly
    in [RT60_MIN, RT60_MAX] s (pyroomacoustics). Reflections up to order 6 come from the image-source method;
    beyond that a diffuse tail (Gaussian noise decaying at the drawn RT60, energy-matched to the image-source
    response) replaces the exact but slow high orders, as gpuRIR's diffuse model does; the response's measured
    RT60 (Schroeder T30) lies within about 20 % of the draw. The response is scaled to a unit direct path
    (positions are redrawn while a cluster of coincident reflections outweighs it) and shifted so the direct path lands
    on the target (alignment)."""

    NAME: ClassVar[str] = "rir"
    SYNTAX: ClassVar[str] = "rir simulate RT60_MIN RT60_MAX"
    rt60_min: float
    rt60_max: float

    @classmethod
    def parse(cls, args: list[str], name: str) -> RirSimulate:
        _arity(args, 2, 2)
        low, high = _number(args[0], "RT60_MIN"), _number(args[1], "RT60_MAX")
        _range(low, high, "RT60")
        if low < 0.1 or high > 3.0:
            raise _Bad("RT60 must lie in [0.1, 3] s")
        try:
            import pyroomacoustics  # noqa: F401
        except ImportError:
            raise _Bad("needs pyroomacoustics: pip install 'rt-enhance[train]'") from None
        return cls(low, high)

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        rir = simulate_rir(rng.uniform(self.rt60_min, self.rt60_max), rate, rng)
        target = convolve_aligned(target, direct_part(rir, 0, rate), 0)
        return convolve_aligned(degraded, rir, 0), target, rate

    def context(self, rate: int) -> int:
        return int(math.ceil(1.3 * self.rt60_max * rate))


def _room(rt60: float, rng: np.random.Generator) -> tuple[np.ndarray, float, int]:
    """Random room dimensions (m) whose Sabine absorption can reach ``rt60``, with (energy absorption, order)."""
    import pyroomacoustics as pra

    for _ in range(50):
        dims = rng.uniform([3.0, 3.0, 2.4], [10.0, 8.0, 4.0])
        try:
            absorption, order = pra.inverse_sabine(rt60, dims)
        except ValueError:  # RT60 too short for this room even with full absorption
            continue
        return dims, float(absorption), int(order)
    raise DegradationError(f"found no room with RT60 {rt60:.2f} s")


def _positions(dims: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Source and microphone positions >= 0.5 m from the walls and >= 0.5 m apart."""
    while True:
        source, mic = rng.uniform(0.5, dims - 0.5, (2, 3))
        if np.linalg.norm(source - mic) >= 0.5:
            return source, mic


def _image_source_rir(dims: np.ndarray, absorption: float, order: int, rate: int,
                      source: np.ndarray, mic: np.ndarray) -> np.ndarray:
    import pyroomacoustics as pra

    room = pra.ShoeBox(dims, fs=rate, materials=pra.Material(absorption), max_order=order)
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    return np.asarray(room.rir[0][0], dtype=np.float64)


def simulate_rir(rt60: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A simulated room response ``[taps]`` for ``rt60`` s at ``rate``, starting at its unit direct path.

    Positions are redrawn (up to 10 times) while a later tap outweighs the direct path (coincident reflections
    near a corner), so that the direct path is the response's strongest tap.
    """
    dims, absorption, order = _room(rt60, rng)
    for _ in range(10):
        rir = _hybrid_rir(dims, absorption, order, rt60, rate, rng)
        if _direct_dominates(rir):
            break
    return rir


def _direct_dominates(rir: np.ndarray, half_width: int = 2) -> bool:
    """Whether the direct path (taps 0-1) beats every later tap by 10 % and has the most energy within
    +-``half_width`` taps."""
    local = np.convolve(rir**2, np.ones(2 * half_width + 1), mode="same")
    peak_later = float(np.max(np.abs(rir[2:]))) if len(rir) > 2 else 0.0
    return float(np.max(np.abs(rir[:2]))) >= 1.1 * peak_later and int(np.argmax(local)) <= half_width


def _hybrid_rir(dims: np.ndarray, absorption: float, order: int, rt60: float, rate: int,
                rng: np.random.Generator) -> np.ndarray:
    """Image sources up to ISM_MAX_ORDER, then a diffuse tail; ``[taps]`` from the unit direct path."""
    import pyroomacoustics as pra

    source, mic = _positions(dims, rng)
    direct = _image_source_rir(dims, absorption, 0, rate, source, mic)
    start, gain = int(np.argmax(np.abs(direct))), float(direct.sum())
    rir = _image_source_rir(dims, absorption, min(order, ISM_MAX_ORDER), rate, source, mic)[start:] / gain
    if order <= ISM_MAX_ORDER:
        return rir
    cut = int(ISM_MAX_ORDER * dims.min() / pra.constants.get("c") * rate)
    return _with_diffuse_tail(rir, cut, rt60, rate, rng)


def _with_diffuse_tail(rir: np.ndarray, cut: int, rt60: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """``rir`` up to tap ``cut``, then Gaussian noise decaying at ``rt60`` with the power of the 10 ms before."""
    cut = min(cut, len(rir))
    level = math.sqrt(noisegen.power(rir[max(cut - rate // 100, 0) : cut]))
    length = int(math.ceil(1.1 * rt60 * rate))
    tail = rng.standard_normal(length) * level * np.exp(-3 * math.log(10) * np.arange(length) / (rt60 * rate))
    return np.concatenate([rir[:cut], tail])


@dataclass(frozen=True)
class Clip(Step):
    """``clip LEVEL``: hard clipping of the degraded signal at +-LEVEL (full scale = 1.0, LEVEL > 0)."""

    NAME: ClassVar[str] = "clip"
    SYNTAX: ClassVar[str] = "clip LEVEL"
    level: float

    @classmethod
    def parse(cls, args: list[str], name: str) -> Clip:
        _arity(args, 1, 1)
        level = _number(args[0], "LEVEL")
        if level <= 0:
            raise _Bad(f"LEVEL must be > 0, got {level:g}")
        return cls(level)

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        return np.clip(degraded, -self.level, self.level), target, rate


@dataclass(frozen=True)
class Quantize(Step):
    """``quantize BITS``: the degraded signal as BITS-bit PCM would hold it: rounded to multiples of
    2**(1-BITS) and clipped to [-1, 1 - 2**(1-BITS)] (no dither). BITS is a whole number in 1..32."""

    NAME: ClassVar[str] = "quantize"
    SYNTAX: ClassVar[str] = "quantize BITS"
    bits: int

    @classmethod
    def parse(cls, args: list[str], name: str) -> Quantize:
        _arity(args, 1, 1)
        bits = _number(args[0], "BITS")
        if bits != int(bits) or not 1 <= bits <= 32:
            raise _Bad(f"BITS must be a whole number in 1..32, got {args[0]!r}")
        return cls(int(bits))

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        step = 2.0 ** (1 - self.bits)
        return np.clip(np.round(degraded / step) * step, -1.0, 1.0 - step), target, rate


@dataclass(frozen=True)
class Gain(Step):
    """``gain DB_MIN DB_MAX``: a gain drawn uniformly in [DB_MIN, DB_MAX] dB applied to BOTH signals (level
    augmentation: the target stays the clean version of the input). Put it before ``clip``/``quantize`` to
    simulate a too hot or too quiet input stage."""

    NAME: ClassVar[str] = "gain"
    SYNTAX: ClassVar[str] = "gain DB_MIN DB_MAX"
    db_min: float
    db_max: float

    @classmethod
    def parse(cls, args: list[str], name: str) -> Gain:
        _arity(args, 2, 2)
        low, high = _number(args[0], "DB_MIN"), _number(args[1], "DB_MAX")
        _range(low, high, "gain")
        return cls(low, high)

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        factor = 10.0 ** (rng.uniform(self.db_min, self.db_max) / 20.0)
        return degraded * factor, target * factor, rate


@dataclass(frozen=True)
class Bandlimit(Step):
    """``bandlimit HZ_MIN HZ_MAX``: a low-pass at a cutoff drawn log-uniformly in [HZ_MIN, HZ_MAX] for each
    segment, with a random filter (Chebyshev I or Butterworth, order 4-12): the many ways a microphone, a codec or
    a resampler loses the highs. Zero-phase, so alignment is kept. Cutoffs at or above Nyquist leave the
    segment unchanged."""

    NAME: ClassVar[str] = "bandlimit"
    SYNTAX: ClassVar[str] = "bandlimit HZ_MIN HZ_MAX"
    low: float
    high: float

    @classmethod
    def parse(cls, args: list[str], name: str) -> Bandlimit:
        _arity(args, 2, 2)
        low, high = _number(args[0], "HZ_MIN"), _number(args[1], "HZ_MAX")
        if not 0 < low <= high:
            raise _Bad("need 0 < HZ_MIN <= HZ_MAX")
        return cls(low, high)

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        hz = float(np.exp(rng.uniform(np.log(self.low), np.log(self.high))))
        if hz >= 0.49 * rate:
            return degraded, target, rate
        step = Lowpass(hz, str(rng.choice(["cheby1", "butter"])), int(rng.integers(4, 13)))
        return step.apply(degraded, target, rate, rng)

    def context(self, rate: int) -> int:
        return int(math.ceil(12 * rate / self.low)) + 64


@dataclass(frozen=True)
class Maybe(Step):
    """``maybe P STEP ...``: run STEP (any step that keeps the sample rate) with probability P, per segment."""

    NAME: ClassVar[str] = "maybe"
    SYNTAX: ClassVar[str] = "maybe P STEP [STEP ARGS...]"
    p: float
    inner: Step

    @classmethod
    def parse(cls, args: list[str], name: str) -> Maybe:
        if len(args) < 2:
            raise _Bad("give a probability and a step")
        p = _number(args[0], "P")
        if not 0 <= p <= 1:
            raise _Bad("P must be between 0 and 1")
        if args[1] not in STEPS or args[1] in ("maybe", "identity"):  # "maybe P both STEP" is fine
            raise _Bad(f"unknown or unsupported step {args[1]!r}")
        inner = STEPS[args[1]].parse(args[2:], args[1])
        if inner.output_rate(48000) != 48000 or inner.output_rate(44100) != 44100:
            raise _Bad(f"'{args[1]}' changes the sample rate, so it cannot be optional")
        return cls(p, inner)

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        if rng.random() < self.p:
            return self.inner.apply(degraded, target, rate, rng)
        return degraded, target, rate

    def context(self, rate: int) -> int:
        return self.inner.context(rate)


@dataclass(frozen=True)
class Both(Step):
    """``both STEP ...``: STEP applied to the degraded signal and to the target alike, with the same random draws:
    a property of the source to keep, not a degradation to undo. ``both bandlimit 3500 16000`` makes band-limited
    clean material (a microphone or a codec that lost the highs), which a gains-only denoiser should pass through
    as it is, where ``bandlimit`` alone asks it to restore the highs. Only steps that keep the sample rate."""

    NAME: ClassVar[str] = "both"
    SYNTAX: ClassVar[str] = "both STEP [STEP ARGS...]"
    inner: Step

    @classmethod
    def parse(cls, args: list[str], name: str) -> Both:
        if not args or args[0] not in STEPS or args[0] in ("maybe", "identity", "both"):
            raise _Bad(f"unknown or unsupported step {args[0] if args else ''!r}")
        inner = STEPS[args[0]].parse(args[1:], args[0])
        if inner.output_rate(48000) != 48000 or inner.output_rate(44100) != 44100:
            raise _Bad(f"'{args[0]}' changes the sample rate, so it cannot apply to both signals")
        return cls(inner)

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        twin = np.random.Generator(type(rng.bit_generator)())
        twin.bit_generator.state = rng.bit_generator.state
        degraded = self.inner.apply(degraded, degraded, rate, rng)[0]
        return degraded, self.inner.apply(target, target, rate, twin)[0], rate

    def context(self, rate: int) -> int:
        return self.inner.context(rate)


@dataclass(frozen=True)
class Identity(Step):
    """``identity P``: with probability P, skip every later step, so the pair is (clean, clean) or whatever the
    earlier steps made (e.g. band-limited only): teaches a model to leave good audio alone. Later steps may not
    change the sample rate."""

    NAME: ClassVar[str] = "identity"
    SYNTAX: ClassVar[str] = "identity P"
    p: float

    @classmethod
    def parse(cls, args: list[str], name: str) -> Identity:
        _arity(args, 1, 1)
        p = _number(args[0], "P")
        if not 0 <= p <= 1:
            raise _Bad("P must be between 0 and 1")
        return cls(p)

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int, rng: np.random.Generator) -> Pair:
        return degraded, target, rate


STEPS: dict[str, type[Step]] = {
    "bandlimit": Bandlimit,
    "maybe": Maybe,
    "identity": Identity,
    "both": Both,
    "sample": Sample,
    **{name: ColouredNoise for name in _COLOURS},
    "reverb": Reverb,
    "scale": Scale,
    "lowpass": Lowpass,
    "noise": Noise,
    "rir": RirFiles,
    "clip": Clip,
    "quantize": Quantize,
    "gain": Gain,
}


# ---------------------------------------------------------------------------------------------------------------
# Pipeline
# ---------------------------------------------------------------------------------------------------------------


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

    def apply(self, degraded: np.ndarray, target: np.ndarray, rate: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
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


def _run_step(number: int, step: Step, degraded: np.ndarray, target: np.ndarray, rate: int,
              rng: np.random.Generator) -> Pair:
    try:
        return step.apply(degraded, target, rate, rng)
    except DegradationError as err:
        raise DegradationError(f"step {number} '{_step_name(step)}': {err}") from err


def _step_name(step: Step) -> str:
    return step.name if isinstance(step, ColouredNoise) else step.NAME


def _parse_step(number: int, text: str) -> Step:
    words = text.split()
    if not words:
        raise DegradationError(f"step {number} is empty (two commas in a row, or a trailing comma?)")
    name, args = words[0], words[1:]
    if name not in STEPS:
        raise DegradationError(f"step {number} '{name}': unknown step; known steps: {', '.join(STEPS)}")
    try:
        return STEPS[name].parse(args, name)
    except _Bad as err:
        raise DegradationError(
            f"step {number} '{name}': expected '{_syntax(name)}', got '{text.strip()}' ({err})"
        ) from None


def _syntax(name: str) -> str:
    cls = STEPS[name]
    return f"{name} VARIANCE VOLUME" if cls is ColouredNoise else cls.SYNTAX


def parse_pipeline(spec: str) -> Pipeline:
    """Parse and validate a whole ``--preprocessing`` string (see the module docstring for the syntax).

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
                    raise DegradationError(f"step {number} 'identity': a later step ('{_step_name(later)}') changes the sample rate")
