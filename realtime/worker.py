"""The live engine's worker thread: from the input ring (or a file) through the :class:`Chain`
to the output ring (and any file sinks).

With a device as input it polls the input ring, enhances what the callback stored and writes the
output ring. When it finds that the callback has already played past what it is about to produce,
it runs those hops dry (no model) and so catches up at once: stale windows are skipped and the
delay never grows. With a file as input it stays up to half a ring ahead of the playback callback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from rt_enhance.realtime import kernels
from rt_enhance.realtime.audio_io import AudioFileError, FileSink, FileSource
from rt_enhance.realtime.callback import SharedState
from rt_enhance.realtime.chain import Chain
from rt_enhance.realtime.streamer import Streamer

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.0005
PREBUFFER_SECONDS = 0.1  # file to device: enhanced audio ready before the stream starts


class Worker:
    """Enhances between ``state``'s rings at device ``rate``; :meth:`run` is the thread's body.

    ``plays``: an output device reads the output ring. ``stop(reason)`` ends the stream (a failed
    recording with nothing else to do, or the worker's own failure, kept in :attr:`error`);
    ``stopping`` is set when the stream is asked to stop.
    """

    def __init__(
        self,
        *,
        streamer: Streamer,
        state: SharedState,
        rate: int,
        plays: bool,
        source: FileSource | None,
        sinks: list[FileSink],
        stop: Callable[[str], None],
        stopping: threading.Event,
    ) -> None:
        self.streamer, self.state, self.rate, self.plays = streamer, state, rate, plays
        self.source, self.sinks = source, sinks
        self.failed_sinks: list[tuple[FileSink, str]] = []
        self.produced = 0  # device samples written to the output ring and the sinks
        self.done_producing = False  # file input: everything is written
        self.error: BaseException | None = None
        self._stop, self._stopping = stop, stopping
        self._input_closed = threading.Event()

    def run(self) -> None:
        """The thread's body: capture (device input) or playback (file input) until done."""
        try:
            if self.source is None:
                self._capture()
            else:
                self._playback()
        except BaseException as exc:  # reported by the main thread, which owns the user's exit
            self.error = exc
            self._stop("worker failed")

    def close_input(self) -> None:
        """No callback can add input now: the capture worker drains what is stored and ends."""
        self._input_closed.set()

    def _capture(self) -> None:
        """Device input: process everything the callback stores, in order, until stopped and drained."""
        chain = Chain(self.streamer, self.rate, self.rate)
        read = 0
        while True:
            stopping = self._input_closed.is_set()
            new = self.capture_step(chain, read)
            if new == read:
                if stopping:
                    break
                time.sleep(POLL_SECONDS)
            read = new
        self._emit(chain.finish())

    def capture_step(self, chain: Chain, read: int) -> int:
        """One pass of the worker: enhance what the callback stored after ``read``; return the new read."""
        channels = self.streamer.channels
        available = self.state.input_samples - read
        if available > self.state.ring_size:
            # The worker fell a whole ring behind and those samples are gone: keep the timeline
            # (silence in their place) so output positions never drift from input positions.
            lost = available - self.state.ring_size
            self.state.add_overrun(lost)
            self._emit(chain.feed(np.zeros((channels, lost), np.float32), dry=True))
            read, available = read + lost, available - lost
        if available > 0:
            chunk = np.empty((channels, available), np.float32)
            kernels.ring_read_nb(self.state.in_ring, read, chunk)
            stale = min(self._stale_input(read), available)
            if stale > 0:  # their output is already late: run them dry, enhance only the rest
                self._emit(chain.feed(chunk[:, :stale], dry=True))
            self._emit(chain.feed(chunk[:, stale:]))
            read += available
        return read

    def _stale_input(self, read: int) -> int:
        """How many input samples from ``read`` on produce only output the callback has played
        (or, with no output device, only output a ring behind): those windows are skipped."""
        g = self.streamer.geometry
        ratio = self.rate / g.sample_rate
        if self.plays:
            played = self.state.input_samples - self.state.delay
            return played + int((g.lookahead + g.hop) * ratio) - read if self.produced < played else 0
        backlog = self.state.input_samples - read
        return backlog - self.state.ring_size // 2 if backlog > self.state.ring_size // 2 else 0

    def _playback(self) -> None:
        """File input to a device: stay up to half a ring ahead of the callback, then drain."""
        assert self.source is not None
        chain = Chain(self.streamer, self.source.rate, self.rate)
        limit = self.state.ring_size // 2
        for block in self.source.blocks(max(256, self.streamer.geometry.hop)):
            while self.produced - self.state.input_samples > limit and not self._stopping.is_set():
                time.sleep(0.005)
            if self._stopping.is_set():
                break
            self._emit(chain.feed(block))
        self._emit(chain.finish())
        self.state.mark_end(self.produced)
        self.done_producing = True

    def prebuffer(self) -> None:
        """File to device: let the worker get PREBUFFER_SECONDS ahead before the first callback."""
        wanted = int(PREBUFFER_SECONDS * self.rate)
        while self.produced < wanted and not (self.done_producing or self._stopping.is_set()):
            time.sleep(POLL_SECONDS)

    def _emit(self, y: np.ndarray) -> None:
        """Write aligned device-rate output ``[channels, n]`` to the output ring and the sinks."""
        if y.shape[1] == 0:
            return
        if self.plays:
            kernels.ring_write_nb(self.state.out_ring, self.produced, y)
        self.produced += y.shape[1]
        self.state.watermark = self.produced
        for sink in list(self.sinks):
            try:
                sink.write(y)
            except AudioFileError as exc:
                self._sink_failed(sink, str(exc))

    def _sink_failed(self, sink: FileSink, message: str) -> None:
        """A recording cannot go on (disk full, size limit): keep what it has, keep playing."""
        logger.error("%s; the first %.1f s are kept in %s", message, sink.written / sink.rate, sink.path)
        self.sinks.remove(sink)
        self.failed_sinks.append((sink, message))
        try:
            sink.close()  # the header is rewritten for what was written; no new space is needed
        except Exception as exc:  # noqa: BLE001 - the partial file stays where it is, named in the log
            logger.error("%s: could not finalise (%s); the partial recording is %s", sink.path, exc, sink.tmp_path)
        if not self.plays and not self.sinks:
            self._stop("recording failed")
