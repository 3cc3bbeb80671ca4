"""The processing chain at the edge's rates: resample in, stream, resample out, exact length."""

from __future__ import annotations

import logging

import numpy as np

from rt_enhance.realtime.resample import StreamResampler
from rt_enhance.realtime.streamer import Streamer

logger = logging.getLogger(__name__)


class Chain:
    """``rate_in`` blocks -> model rate -> :class:`Streamer` -> ``rate_out`` blocks, time-aligned.

    The resamplers compensate their own delay, so the output stays aligned with the input; after
    :meth:`finish` exactly ``round(samples_in * rate_out / rate_in)`` samples have come out.
    """

    def __init__(self, streamer: Streamer, rate_in: int, rate_out: int) -> None:
        model_rate = streamer.geometry.sample_rate
        self.streamer = streamer
        self.rate_in, self.rate_out = rate_in, rate_out
        self.up = StreamResampler(rate_in, model_rate, streamer.channels)
        self.down = StreamResampler(model_rate, rate_out, streamer.channels)
        self.samples_in = 0
        self.samples_out = 0

    def feed(self, block: np.ndarray, *, dry: bool = False) -> np.ndarray:
        """float32 ``[channels, n]`` at rate_in -> the newly aligned output ``[channels, m]`` at rate_out."""
        self.samples_in += block.shape[1]
        y = self.down(self.streamer.feed(self.up(block), dry=dry))
        self.samples_out += y.shape[1]
        return y

    def finish(self) -> np.ndarray:
        """Everything still owed, then the chain is ready for a new stream."""
        y = np.concatenate([self.streamer.feed(self.up.flush()), self.streamer.flush()], axis=1)
        y = np.concatenate([self.down(y), self.down.flush()], axis=1)
        owed = round(self.samples_in * self.rate_out / self.rate_in) - self.samples_out
        if y.shape[1] < owed:
            y = np.pad(y, ((0, 0), (0, owed - y.shape[1])))
        y = y[:, : max(owed, 0)]
        self.samples_in = self.samples_out = 0
        return y
