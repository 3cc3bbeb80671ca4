"""Microphone colouration: a gentle random EQ built from RBJ-cookbook biquads (scipy).

Colouration is a *degradation*, not part of the clean target: the corpus (``training/corpus/``) stores clean
voices uncoloured, and the pipeline's ``miceq`` step (:class:`~.band.MicColour`) applies :func:`random_mic_eq` to
the degraded side only, so a model learns to undo a cheap microphone's tilt and resonances rather than to imitate
them.

One draw (:func:`draw_mic_eq`) is a cascade of up to six second-order sections:

- a low cut (2nd-order high-pass, 30-150 Hz), half the time (small capsules, proximity filters);
- a low shelf at 80-300 Hz, -6..+4 dB (proximity effect or thin capsules);
- one to three peaking filters at 250 Hz-8 kHz, -5..+5 dB, Q 0.7-2.5 (capsule and housing resonances);
- a high shelf at 3-12 kHz, -9..+4 dB (cheap capsules roll off more often than they sparkle).

Every frequency stays below 0.45 * rate, so the EQ is valid at 8 kHz as well as at 48 kHz.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Biquad:
    """One EQ section: ``kind`` in {highpass, lowshelf, peak, highshelf}, centre/corner ``hz``, ``gain_db``, ``q``."""

    kind: str
    hz: float
    gain_db: float
    q: float

    def sos(self, rate: int) -> np.ndarray:
        """The section as one scipy SOS row ``[6]`` (b0, b1, b2, 1, a1, a2) at ``rate``."""
        b, a = _rbj(self.kind, self.hz, self.gain_db, self.q, rate)
        return np.concatenate([b / a[0], a / a[0]])


def _rbj(kind: str, hz: float, gain_db: float, q: float, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Robert Bristow-Johnson's Audio-EQ-Cookbook coefficients ``(b [3], a [3])``."""
    if kind not in ("highpass", "peak", "lowshelf", "highshelf"):
        raise ValueError(f"unknown biquad kind {kind!r}")
    w0 = 2 * math.pi * hz / rate
    cos_w, alpha = math.cos(w0), math.sin(w0) / (2 * q)
    amp = 10 ** (gain_db / 40)
    if kind == "highpass":
        return (np.array([(1 + cos_w) / 2, -(1 + cos_w), (1 + cos_w) / 2]), np.array([1 + alpha, -2 * cos_w, 1 - alpha]))
    if kind == "peak":
        return (np.array([1 + alpha * amp, -2 * cos_w, 1 - alpha * amp]), np.array([1 + alpha / amp, -2 * cos_w, 1 - alpha / amp]))
    sign = 1 if kind == "lowshelf" else -1
    root = 2 * math.sqrt(amp) * alpha
    b = amp * np.array(
        [
            (amp + 1) - sign * (amp - 1) * cos_w + root,
            sign * 2 * ((amp - 1) - sign * (amp + 1) * cos_w),
            (amp + 1) - sign * (amp - 1) * cos_w - root,
        ]
    )
    a = np.array(
        [
            (amp + 1) + sign * (amp - 1) * cos_w + root,
            -sign * 2 * ((amp - 1) + sign * (amp + 1) * cos_w),
            (amp + 1) + sign * (amp - 1) * cos_w - root,
        ]
    )
    return b, a


@dataclass(frozen=True)
class MicEq:
    """A drawn microphone EQ: its sections, in order."""

    sections: tuple[Biquad, ...]

    def sos(self, rate: int) -> np.ndarray:
        """All sections as scipy SOS ``[k, 6]`` (k >= 1; an identity section when empty)."""
        if not self.sections:
            return np.array([[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]])
        return np.stack([s.sos(rate) for s in self.sections])

    def apply(self, x: np.ndarray, rate: int) -> np.ndarray:
        """``x`` ``[n]`` (or ``[..., n]``) through the EQ, float64, same shape."""
        return signal.sosfilt(self.sos(rate), np.asarray(x, dtype=np.float64), axis=-1)

    def response_db(self, freqs: np.ndarray, rate: int) -> np.ndarray:
        """Magnitude response in dB at ``freqs`` ``[k]`` Hz."""
        _, h = signal.sosfreqz(self.sos(rate), worN=np.asarray(freqs, dtype=np.float64), fs=rate)
        return 20 * np.log10(np.maximum(np.abs(h), 1e-12))


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def draw_mic_eq(rate: int, rng: np.random.Generator) -> MicEq:
    """A random gentle microphone EQ valid at ``rate`` (see the module docstring for the ranges)."""
    top = 0.45 * rate
    sections = []
    if rng.random() < 0.5:
        sections.append(Biquad("highpass", _log_uniform(rng, 30, 150), 0.0, 0.707))
    sections.append(Biquad("lowshelf", _log_uniform(rng, 80, 300), float(rng.uniform(-6, 4)), 0.707))
    for _ in range(int(rng.integers(1, 4))):
        hz = min(_log_uniform(rng, 250, 8000), 0.8 * top)
        sections.append(Biquad("peak", hz, float(rng.uniform(-5, 5)), float(rng.uniform(0.7, 2.5))))
    shelf = min(_log_uniform(rng, 3000, 12000), 0.8 * top)
    sections.append(Biquad("highshelf", shelf, float(rng.uniform(-9, 4)), 0.707))
    return MicEq(tuple(sections))


def random_mic_eq(x: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """``x`` ``[n]`` through a freshly drawn microphone EQ (:func:`draw_mic_eq`); float64 ``[n]``.

    For the degradation side only: the clean target stays uncoloured.
    """
    return draw_mic_eq(rate, rng).apply(x, rate)
