"""The audio callback and the state it shares with the worker, by name.

:class:`SharedState` holds the two rings and the numba kernels' counter arrays. The kernels take
the raw arrays; everything else (worker, engine, CLI, simulator) reads and writes the counters
through its named properties, or takes a snapshot with :meth:`LiveEngine.status
<rt_enhance.realtime.live.LiveEngine.status>`. Each counter has one writer: the callback writes
``input_samples``, ``missed_samples`` and ``miss_events``; the worker writes ``watermark``,
``overrun_samples`` and ``end``; the first duplex or capture callback sets ``delay`` once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from rt_enhance.realtime import kernels

logger = logging.getLogger(__name__)

XRUN_FLAGS = ("input_overflow", "input_underflow", "output_overflow", "output_underflow")


class SharedState:
    """Input and output rings, float32 ``[channels, ring_size]``, and the callback's counters
    (device samples). ``delay`` is -1 until the first callback sets it."""

    def __init__(self, *, channels: int, output_channels: int, ring_size: int, limit_knee: float, declick_samples: int) -> None:
        self.in_ring = np.zeros((channels, ring_size), np.float32)
        self.out_ring = np.zeros((channels, ring_size), np.float32)
        self.st, self.fst = kernels.new_state(output_channels, delay=-1, limit_knee=limit_knee, declick_samples=declick_samples)

    @property
    def ring_size(self) -> int:
        return self.in_ring.shape[1]

    @property
    def input_samples(self) -> int:
        """Device input samples received so far (duplex/capture) or positions played (playback)."""
        return int(self.st[kernels.IN_COUNT])

    @property
    def delay(self) -> int:
        """D: output position = input position - D."""
        return int(self.st[kernels.DELAY])

    @delay.setter
    def delay(self, samples: int) -> None:
        self.st[kernels.DELAY] = samples

    @property
    def watermark(self) -> int:
        """The worker has written enhanced samples for aligned positions below this."""
        return int(self.st[kernels.WATERMARK])

    @watermark.setter
    def watermark(self, position: int) -> None:
        self.st[kernels.WATERMARK] = position

    @property
    def missed_samples(self) -> int:
        """Output samples the callback played dry because the worker was late."""
        return int(self.st[kernels.MISSED])

    @property
    def miss_events(self) -> int:
        """Times the callback switched from enhanced to dry."""
        return int(self.st[kernels.MISS_EVENTS])

    @property
    def overrun_samples(self) -> int:
        """Capture: samples dropped because the worker fell a whole ring behind."""
        return int(self.st[kernels.OVERRUN])

    def add_overrun(self, samples: int) -> None:
        self.st[kernels.OVERRUN] += samples

    def mark_end(self, position: int) -> None:
        """Playback: positions from ``position`` on are past the end of the file (silence, not misses)."""
        self.st[kernels.END] = position


class AudioCallbacks:
    """PortAudio's callbacks for a duplex, capture or playback stream over a :class:`SharedState`.

    They run on the audio thread and only copy between preallocated buffers (the device block and
    the rings, in the numba kernels) and count status flags: no allocation, no logging, no locks,
    no file I/O. Keep it that way. The one exception is the first block, whose size fixes the
    stream delay (``delay_for_block(frames)``, a little arithmetic, once).
    """

    def __init__(self, state: SharedState, delay_for_block: Callable[[int], int]) -> None:
        self.state = state
        self.xruns = {flag: 0 for flag in XRUN_FLAGS}
        self.block_seen = 0  # frames in the first callback's block; 0 until one arrived
        self._delay_for_block = delay_for_block
        self._in, self._out, self._st, self._fst = state.in_ring, state.out_ring, state.st, state.fst

    def first_block(self, frames: int) -> None:
        """Fix the stream delay for blocks of ``frames`` (the first callback does this itself)."""
        self.block_seen = frames
        self.state.delay = self._delay_for_block(frames)

    def duplex(self, indata, outdata, frames, time_info, status) -> None:
        """indata float32 ``[frames, channels]`` into the input ring; outdata from the output ring."""
        if status:
            self._count(status)
        if self.block_seen == 0:
            self.first_block(frames)
        kernels.duplex_callback_nb(indata, outdata, self._in, self._out, self._st, self._fst)

    def capture(self, indata, frames, time_info, status) -> None:
        """indata float32 ``[frames, channels]`` into the input ring."""
        if status:
            self._count(status)
        if self.block_seen == 0:
            self.first_block(frames)
        kernels.capture_callback_nb(indata, self._in, self._st)

    def playback(self, outdata, frames, time_info, status) -> None:
        """outdata float32 ``[frames, channels]`` from the output ring."""
        if status:
            self._count(status)
        self.block_seen = self.block_seen or frames
        kernels.playback_callback_nb(outdata, self._out, self._st, self._fst)

    def _count(self, status) -> None:
        for flag in XRUN_FLAGS:
            if getattr(status, flag):
                self.xruns[flag] += 1

    @property
    def xrun_count(self) -> int:
        return sum(self.xruns.values())
