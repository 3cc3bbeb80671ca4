"""Streaming resampling between the device (or file) rate and the model rate, for :class:`Chain`."""

from __future__ import annotations

import logging

import numpy as np
import soxr

logger = logging.getLogger(__name__)


class StreamResampler:
    """soxr's streaming resampler on ``[channels, n]`` blocks; the identity when rates match.

    soxr compensates its own filter delay: the output is time-aligned with the input, released in
    bursts once enough input has arrived. ``flush`` returns what is still held back.
    """

    def __init__(self, rate_in: int, rate_out: int, channels: int, quality: str = "HQ") -> None:
        self.rate_in, self.rate_out, self.channels = rate_in, rate_out, channels
        self._stream = None if rate_in == rate_out else soxr.ResampleStream(rate_in, rate_out, channels, dtype="float32", quality=quality)

    @property
    def identity(self) -> bool:
        return self._stream is None

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return block
        out = self._stream.resample_chunk(np.ascontiguousarray(block.T), last=last)
        return np.ascontiguousarray(out.T)

    def flush(self) -> np.ndarray:
        return self(np.zeros((self.channels, 0), np.float32), last=True)


def round_trip_lag(rate: int, model_rate: int, hop: int) -> int:
    """How far two streaming resamplers, ``rate`` -> ``model_rate`` -> ``rate``, fed one model
    ``hop`` at a time, hold output back, in samples at ``rate`` (measured, not derived)."""
    up = StreamResampler(rate, model_rate, 1)
    down = StreamResampler(model_rate, rate, 1)
    chunk = max(1, round(hop * rate / model_rate))
    fed = produced = lag = 0
    for _ in range(200):
        fed += chunk
        produced += down(up(np.zeros((1, chunk), np.float32))).shape[1]
        lag = max(lag, fed - produced)
    return lag
