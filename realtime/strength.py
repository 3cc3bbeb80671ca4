"""How much of the model's change to keep: a dry/wet mix on the aligned stream, at no added latency.

The :class:`~rt_enhance.realtime.streamer.Streamer` emits *aligned* output (output sample ``m`` is
the enhanced input sample ``m``), so the dry signal for each emitted sample is simply the input
sample at the same position. :class:`DryWetMix` keeps the few input samples the model still holds
(at most the engine's latency) and returns ``dry + s * (wet - dry)``:

* ``s = 1`` returns the model's output untouched (bit for bit: today's behaviour),
* ``s = 0`` returns the input exactly,
* in between, a model that removes a component entirely leaves ``1 - s`` of it: the removal is
  capped at ``-20 log10(1 - s)`` dB. That is what DeepFilterNet's ``--atten-lim`` does too, so a
  strength can also be given as that cap (``12dB`` means ``s = 1 - 10^(-12/20) = 0.749``).

A mix works for every model the engine runs (gain-per-bin denoisers, waveform models, bandwidth
extension), where a gain floor would only fit models that output a gain. A change of strength
while streaming is ramped linearly over the next emitted block, so it does not click.
"""

from __future__ import annotations

import logging
import math
import re
from collections import deque

import numpy as np

logger = logging.getLogger(__name__)

_DB = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*db\s*$", re.IGNORECASE)


def parse_strength(text: str) -> float:
    """``"0.8"`` -> 0.8; ``"12dB"`` (the most the model may remove) -> ``1 - 10^(-12/20)``.

    Raises ValueError with a one-line reason for anything else.
    """
    match = _DB.match(text)
    if match:
        return 1.0 - 10.0 ** (-float(match.group(1)) / 20.0)
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"'{text}' is neither a number from 0 to 1 nor an attenuation cap like 12dB") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{text} is outside 0..1 (0 = the input unchanged, 1 = the model's full effect)")
    return value


def cap_db(strength: float) -> float:
    """The most a model can remove at this strength, in dB (inf at 1)."""
    return math.inf if strength >= 1.0 else -20.0 * math.log10(1.0 - strength)


class DryWetMix:
    """Aligned dry/wet mix of a ``[channels, samples]`` float32 stream (see the module docstring)."""

    def __init__(self, channels: int, strength: float = 1.0) -> None:
        self.channels = channels
        self.strength = strength  # the target; read by the streaming thread, set by any thread
        self._applied = strength  # what the last emitted sample used
        self.reset()

    def reset(self) -> None:
        """Forget the pending input (a new stream starts); the strength stays."""
        self._pending: deque[np.ndarray] = deque()  # input blocks not yet mixed, oldest first (copies)
        self._used = 0  # samples of the oldest block already mixed

    def push(self, block: np.ndarray) -> None:
        """Remember input ``[channels, n]`` until the output at its positions is mixed."""
        if block.shape[1]:
            self._pending.append(np.array(block, np.float32))  # a copy: the caller may reuse its array

    def _take(self, n: int, keep: bool = True) -> np.ndarray:
        """The next ``n`` pending input samples ``[channels, n]``, consumed (an empty array unless ``keep``)."""
        parts = []
        while n and self._pending:
            first = self._pending[0]
            use = min(first.shape[1] - self._used, n)
            if keep:
                parts.append(first[:, self._used : self._used + use])
            self._used += use
            n -= use
            if self._used == first.shape[1]:
                self._pending.popleft()
                self._used = 0
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts, axis=1) if parts else np.zeros((self.channels, 0), np.float32)

    def __call__(self, wet: np.ndarray) -> np.ndarray:
        """Aligned model output ``[channels, n]`` -> mixed output ``[channels, n]`` (float32)."""
        n = wet.shape[1]
        target, start = float(self.strength), self._applied
        if n == 0:
            return wet
        self._applied = target
        if start == target == 1.0:  # the model's output untouched: the dry samples are only dropped
            self._take(n, keep=False)
            return wet
        dry = self._take(n)
        if start == target == 0.0:
            return dry.copy()
        s = np.float32(target) if start == target else np.linspace(start, target, n + 1, dtype=np.float32)[1:]
        return (dry + s * (wet - dry)).astype(np.float32, copy=False)


KEY_STEP = 0.1
KEYS_HELP = "keys + -"


def apply_keys(strength: float, keys: str) -> float:
    """The strength after the keys pressed on the live status line: ``+`` (or ``=``) and ``-`` step
    by 0.1 within 0..1; other keys are ignored."""
    for key in keys:
        if key in "+=":
            strength = min(1.0, round(strength + KEY_STEP, 6))
        elif key in "-_":
            strength = max(0.0, round(strength - KEY_STEP, 6))
    return strength
