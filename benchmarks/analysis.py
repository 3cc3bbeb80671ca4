"""Reading a loopback recording hop by hop: at which delay, enhanced or dry.

The injected signal is low-level noise with clicks on the click grid (frames that are multiples
of ``click_every``), looped. The model runs as its probe (output = ``gain`` x input), and the
engine's dry fallback plays the input itself, so each stretch of the recording is
``g x signal(t - d)`` with ``g`` telling enhanced (``gain``) from dry (1) and ``d`` the delay.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

ENHANCED, DRY, PARTLY_DRY, OFF_DELAY, OTHER, SILENT = "enhanced", "dry", "partly dry", "off delay", "other", "silent"
TOLERANCE = 0.05  # relative residual and gain error accepted as "this gain at this delay"


def probe_signal(*, click_every: int, click: float, noise: float, periods: int = 50, seed: int = 0) -> np.ndarray:
    """float32 ``[click_every * periods]``: uniform noise of +-``noise`` with a ``click`` at each grid frame."""
    rng = np.random.default_rng(seed)
    sig = rng.uniform(-noise, noise, click_every * periods).astype(np.float32)
    sig[::click_every] = click
    return sig


@dataclass
class Windows:
    """One entry per window of the recording: start frame, class, gain fitted at the expected delay, delay."""

    start: np.ndarray  # int64 [n] first recording frame of each window
    kind: np.ndarray  # str [n] ENHANCED / DRY / OTHER / SILENT
    gain: np.ndarray  # float [n]
    delay: np.ndarray  # int64 [n] delay found (-1: none)

    def count(self, kind: str) -> int:
        return int(np.sum(self.kind == kind))


def sent(signal: np.ndarray, first: int, n: int) -> np.ndarray:
    """What the loopback sent at frames ``first .. first + n - 1`` (the signal loops)."""
    return signal[(first + np.arange(n)) % signal.shape[0]]


def classify(
    recording: np.ndarray, signal: np.ndarray, *, delay: int, window: int, gain: float, skip: int = 0, max_delay: int | None = None
) -> Windows:
    """Fit ``recording[a : a + window] ~ g * sent(a - delay)`` for consecutive windows after ``skip``.

    A window that fits at ``delay`` with ``g`` = ``gain`` is ENHANCED, with ``g`` = 1 DRY. One that
    fits no single gain is looked up by :func:`find_delay` (up to ``max_delay``, default 4 x delay):
    at ``delay`` with a gain in between it is PARTLY_DRY (a miss began or ended inside it), at
    another delay OFF_DELAY (stale or repeated audio), else OTHER.
    """
    max_delay = max_delay or 4 * delay
    starts = np.arange(max(delay, skip), recording.shape[0] - window + 1, window, dtype=np.int64)
    kinds = np.empty(starts.size, dtype=object)
    gains = np.zeros(starts.size)
    delays = np.full(starts.size, -1, np.int64)
    for i, a in enumerate(starts):
        seg = recording[a : a + window].astype(np.float64)
        ref = sent(signal, int(a - delay), window).astype(np.float64)
        g = float(seg @ ref) / max(float(ref @ ref), 1e-12)
        residual = float(np.linalg.norm(seg - g * ref)) / max(float(np.linalg.norm(ref)), 1e-12)
        gains[i] = g
        if np.max(np.abs(seg)) < 1e-6:
            kinds[i] = SILENT
        elif residual <= TOLERANCE and abs(g - gain) < TOLERANCE:
            kinds[i], delays[i] = ENHANCED, delay
        elif residual <= TOLERANCE and abs(g - 1.0) < TOLERANCE:
            kinds[i], delays[i] = DRY, delay
        else:
            found = find_delay(recording, signal, int(a), window, max_delay)
            delays[i] = -1 if found is None else found
            if found == delay and min(gain, 1.0) - TOLERANCE <= g <= max(gain, 1.0) + TOLERANCE:
                kinds[i] = PARTLY_DRY
            else:
                kinds[i] = OTHER if found is None or found == delay else OFF_DELAY
    return Windows(starts, kinds.astype(str), gains, delays)


def find_delay(recording: np.ndarray, signal: np.ndarray, start: int, window: int, max_delay: int) -> int | None:
    """The delay ``d <= max_delay`` at which ``recording[start:start+window]`` best matches the signal
    (normalised cross-correlation above 0.9), or None (silence, a transition, stale audio)."""
    seg = recording[start : start + window].astype(np.float64)
    if np.max(np.abs(seg)) < 1e-6:
        return None
    lo = max(start - max_delay, 0)
    region = sent(signal, lo, start + window - lo).astype(np.float64)
    n = region.shape[0] + window
    corr = np.fft.irfft(np.fft.rfft(region, n) * np.conj(np.fft.rfft(seg, n)), n)[: region.shape[0] - window + 1]
    energy = np.convolve(region**2, np.ones(window), "valid")
    score = corr / np.sqrt(np.maximum(energy * (seg @ seg), 1e-12))
    best = int(np.argmax(score))
    return int(start - (lo + best)) if score[best] > 0.9 else None
