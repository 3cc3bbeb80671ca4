"""The live engine: a PortAudio callback that only moves samples, and a worker that enhances them.

Threads and what they touch:

* the **audio callback** (PortAudio's thread) copies the device block into the input ring and
  plays the output ring ``D`` samples behind the input (:mod:`kernels`); when the worker has not
  written a position yet it plays the dry input at that position instead, with a declick, and
  counts a deadline miss. It never allocates, logs, locks or touches files.
* the **worker** polls the input ring, resamples to the model rate, runs the :class:`Streamer`,
  resamples back and writes the output ring (and any file sinks). When it finds that the callback
  has already played past what it is about to produce, it runs those hops dry (no model) and
  so catches up at once: stale windows are skipped and the delay never grows.
* the **main thread** opens the stream, prints the status line and waits for the stop.

The two threads share only the rings and an int64 counter array; each counter has one writer.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from rt_enhance.realtime import kernels
from rt_enhance.realtime.audio_io import AudioFileError, FileSink, FileSource
from rt_enhance.realtime.chain import Chain
from rt_enhance.realtime.devices import Device, DeviceError, sounddevice
from rt_enhance.realtime.geometry import Geometry, live_delay
from rt_enhance.realtime.resample import round_trip_lag
from rt_enhance.realtime.streamer import Streamer

logger = logging.getLogger(__name__)

RING_SECONDS = 8.0
POLL_SECONDS = 0.0005
GIL_SWITCH_SECONDS = 0.0002
STALL_SECONDS = 2.0  # no audio callback for this long (or two blocks, if longer): the device or server is gone
PREBUFFER_SECONDS = 0.1  # file to device: enhanced audio ready before the stream starts
SLOW_WARN_SHARE = 0.2  # warn (once) when more than this share of a second of audio played dry
STREAM_ENDED = "audio stream ended (device lost or server stopped)"
NEVER_STARTED = "no audio ever arrived: the device opened but never called back"
XRUN_FLAGS = ("input_overflow", "input_underflow", "output_overflow", "output_underflow")


@dataclass
class LiveResult:
    """What a live run did, for the report."""

    device_rate: int
    channels: int
    delay_samples: int
    blocksize: int
    seconds: float
    input_samples: int
    missed_samples: int
    miss_events: int
    dry_hops: int
    overrun_samples: int
    xruns: dict[str, int]
    device_latency: tuple[float, float]
    stop_reason: str
    written: dict[str, int] = field(default_factory=dict)
    failed_outputs: dict[str, str] = field(default_factory=dict)


def _ring_size(rate: int) -> int:
    return 1 << math.ceil(math.log2(rate * RING_SECONDS))


class LiveEngine:
    """Runs a :class:`Streamer` against devices and/or files in real time."""

    def __init__(
        self,
        *,
        streamer: Streamer,
        device_rate: int,
        input_device: Device | None,
        output_device: Device | None,
        source: FileSource | None = None,
        sinks: list[FileSink] | None = None,
        blocksize: int = 0,
        limit_knee: float = 0.9,
        output_channels: int | None = None,
    ) -> None:
        if input_device is None and source is None:
            raise ValueError("live engine needs an input device or a file source")
        self.streamer = streamer
        self.geometry: Geometry = streamer.geometry
        self.channels = streamer.channels
        self.rate = device_rate
        self.input_device, self.output_device = input_device, output_device
        self.source, self.sinks = source, list(sinks or [])
        self.failed_sinks: list[tuple[FileSink, str]] = []
        self.blocksize = blocksize
        self.output_channels = output_channels or self.channels
        size = _ring_size(device_rate)
        self.in_ring = np.zeros((self.channels, size), np.float32)
        self.out_ring = np.zeros((self.channels, size), np.float32)
        knee = limit_knee if output_device is not None else 0.0
        self.st, self.fst = kernels.new_state(self.output_channels, delay=-1, limit_knee=knee, declick_samples=max(16, device_rate // 1000))
        self.xruns = {flag: 0 for flag in XRUN_FLAGS}
        self.stop_event = threading.Event()
        self._input_closed = threading.Event()
        self.stop_reason = "stopped"
        self.device_latency = (0.0, 0.0)
        self._resampled = device_rate != self.geometry.sample_rate
        g = self.geometry
        self._extra_lag = round_trip_lag(device_rate, g.sample_rate, g.hop) if self._resampled else 0
        self._block_seen = 0
        self._worker_error: BaseException | None = None
        self._done_producing = False
        self._produced = 0
        self._miss_mark = (0, 0)  # (input samples, dry samples) at the last check of _watch_misses
        self._slow_warned = False
        kernels.warm_up()
        streamer.prepare(1)  # the worker's usual call: one hop

    # ------------------------------------------------------------------ delay

    def delay_for_block(self, block: int) -> int:
        """The constant stream delay D in device samples for callback blocks of ``block`` samples."""
        g = self.geometry
        if not self._resampled:
            return live_delay(g.hop, g.lookahead, block)
        ratio = self.rate / g.sample_rate
        hop = math.ceil(g.hop * ratio)
        return math.ceil((g.hop + g.lookahead) * ratio) + self._extra_lag + math.ceil(hop / block) * block

    @property
    def delay(self) -> int:
        return int(self.st[kernels.DELAY])

    # ------------------------------------------------------------------ callbacks

    def _count(self, status) -> None:
        for flag in XRUN_FLAGS:
            if getattr(status, flag):
                self.xruns[flag] += 1

    def _first_block(self, frames: int) -> None:
        self._block_seen = frames
        self.st[kernels.DELAY] = self.delay_for_block(frames)

    def _duplex_callback(self, indata, outdata, frames, time_info, status) -> None:
        if status:
            self._count(status)
        if self._block_seen == 0:
            self._first_block(frames)
        kernels.duplex_callback_nb(indata, outdata, self.in_ring, self.out_ring, self.st, self.fst)

    def _capture_callback(self, indata, frames, time_info, status) -> None:
        if status:
            self._count(status)
        if self._block_seen == 0:
            self._first_block(frames)
        kernels.capture_callback_nb(indata, self.in_ring, self.st)

    def _playback_callback(self, outdata, frames, time_info, status) -> None:
        if status:
            self._count(status)
        self._block_seen = self._block_seen or frames
        kernels.playback_callback_nb(outdata, self.out_ring, self.st, self.fst)

    # ------------------------------------------------------------------ worker

    def _emit(self, y: np.ndarray) -> None:
        """Write aligned device-rate output ``[channels, n]`` to the output ring and the sinks."""
        if y.shape[1] == 0:
            return
        if self.output_device is not None:
            kernels.ring_write_nb(self.out_ring, self._produced, y)
        self._produced += y.shape[1]
        self.st[kernels.WATERMARK] = self._produced
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
        if self.output_device is None and not self.sinks:
            self.stop("recording failed")

    def _capture_worker(self) -> None:
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
        available = int(self.st[kernels.IN_COUNT]) - read
        if available > self.in_ring.shape[1]:
            # The worker fell a whole ring behind and those samples are gone: keep the timeline
            # (silence in their place) so output positions never drift from input positions.
            lost = available - self.in_ring.shape[1]
            self.st[kernels.OVERRUN] += lost
            self._emit(chain.feed(np.zeros((self.channels, lost), np.float32), dry=True))
            read, available = read + lost, available - lost
        if available > 0:
            chunk = np.empty((self.channels, available), np.float32)
            kernels.ring_read_nb(self.in_ring, read, chunk)
            stale = min(self._stale_input(read), available)
            if stale > 0:  # their output is already late: run them dry, enhance only the rest
                self._emit(chain.feed(chunk[:, :stale], dry=True))
            self._emit(chain.feed(chunk[:, stale:]))
            read += available
        return read

    def _stale_input(self, read: int) -> int:
        """How many input samples from ``read`` on produce only output the callback has played
        (or, with no output device, only output a ring behind): those windows are skipped."""
        g = self.geometry
        ratio = self.rate / g.sample_rate
        if self.output_device is not None:
            played = int(self.st[kernels.IN_COUNT] - self.st[kernels.DELAY])
            return played + int((g.lookahead + g.hop) * ratio) - read if self._produced < played else 0
        backlog = int(self.st[kernels.IN_COUNT]) - read
        return backlog - self.in_ring.shape[1] // 2 if backlog > self.in_ring.shape[1] // 2 else 0

    def _playback_worker(self) -> None:
        """File input to a device: stay up to half a ring ahead of the callback, then drain."""
        chain = Chain(self.streamer, self.source.rate, self.rate)
        limit = self.out_ring.shape[1] // 2
        for block in self.source.blocks(max(256, self.geometry.hop)):
            while self._produced - self.st[kernels.IN_COUNT] > limit and not self.stop_event.is_set():
                time.sleep(0.005)
            if self.stop_event.is_set():
                break
            self._emit(chain.feed(block))
        self._emit(chain.finish())
        self.st[kernels.END] = self._produced
        self._done_producing = True

    def _prebuffer(self) -> None:
        """File to device: let the worker get PREBUFFER_SECONDS ahead before the first callback."""
        wanted = int(PREBUFFER_SECONDS * self.rate)
        while self._produced < wanted and not (self._done_producing or self.stop_event.is_set()):
            time.sleep(POLL_SECONDS)

    def _run_worker(self, target) -> None:
        try:
            target()
        except BaseException as exc:  # reported by the main thread, which owns the user's exit
            self._worker_error = exc
            self.stop_reason = "worker failed"
            self.stop_event.set()

    # ------------------------------------------------------------------ stream

    def _open_stream(self, sd):
        common = dict(samplerate=self.rate, blocksize=self.blocksize, dtype="float32", latency="low")
        if self.input_device is not None and self.output_device is not None:
            if self.input_device.hostapi != self.output_device.hostapi:
                raise DeviceError(
                    f"input {self.input_device} and output {self.output_device} are on different host APIs; "
                    "pick both from one (see --list-devices)"
                )
            return sd.Stream(
                device=(self.input_device.index, self.output_device.index),
                channels=(self.channels, self.output_channels),
                callback=self._duplex_callback,
                **common,
            )
        if self.input_device is not None:
            return sd.InputStream(device=self.input_device.index, channels=self.channels, callback=self._capture_callback, **common)
        return sd.OutputStream(device=self.output_device.index, channels=self.output_channels, callback=self._playback_callback, **common)

    def _stream(self):
        sd = sounddevice()
        try:
            stream = self._open_stream(sd)
        except sd.PortAudioError as exc:
            devices = " / ".join(str(d) for d in (self.input_device, self.output_device) if d is not None)
            raise DeviceError(f"cannot open {devices} at {self.rate} Hz: {exc}") from None
        latency = stream.latency
        self.device_latency = tuple(latency) if isinstance(latency, tuple) else (
            (latency, 0.0) if self.output_device is None else (0.0, latency)
        )
        return stream

    def run(self, *, duration: float | None = None, on_tick=None) -> LiveResult:
        """Stream until ``duration`` seconds, :meth:`stop`, the file source ends, or a failure."""
        # The audio callback needs the GIL; with Python's default 5 ms switch interval a busy
        # worker could hold it for a whole JACK period. Hand it over every 0.2 ms instead.
        previous_interval = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        try:
            return self._run(duration, on_tick)
        finally:
            sys.setswitchinterval(previous_interval)

    def _run(self, duration: float | None, on_tick) -> LiveResult:
        stream = self._stream()
        worker = threading.Thread(
            target=self._run_worker,
            args=(self._capture_worker if self.source is None else self._playback_worker,),
            name="rt-enhance-worker",
            daemon=True,
        )
        worker.start()
        start = time.monotonic()
        try:
            if self.source is not None:
                self._prebuffer()
            stream.start()
            self._wait(stream, duration, on_tick)
        finally:
            self.stop_event.set()
            self._close(stream)
            self._input_closed.set()  # no callback can add input now: the worker drains and ends
            worker.join()
        if self._worker_error is not None:
            raise self._worker_error
        return self._result(time.monotonic() - start)

    @property
    def device_lost(self) -> bool:
        return self.stop_reason.startswith((STREAM_ENDED, NEVER_STARTED))

    def _close(self, stream) -> None:
        """Stop the stream. PortAudio can block forever closing a stream whose server died, so
        then it is left to a daemon thread for a second and abandoned (the process exits soon)."""
        if not self.device_lost:
            stream.close()
            return
        closer = threading.Thread(target=stream.abort, name="rt-enhance-abandon", daemon=True)
        closer.start()
        closer.join(1.0)

    def _stall_seconds(self) -> float:
        """How long without a callback means the device is gone: STALL_SECONDS, or two blocks."""
        return max(STALL_SECONDS, 2.0 * max(self.blocksize, self._block_seen) / self.rate)

    def _wait(self, stream, duration: float | None, on_tick) -> None:
        limit = None if duration is None else int(duration * self.rate)
        last_count, last_change = 0, time.monotonic()
        while not self.stop_event.wait(0.05):
            done = int(self.st[kernels.IN_COUNT])
            self._watch_misses(done)
            if done != last_count:
                last_count, last_change = done, time.monotonic()
            if limit is not None and done >= limit:
                self.stop_reason = "duration reached"
                break
            if self._done_producing and done >= self._produced:
                self.stop_reason = "end of input file"
                break
            if not stream.active or time.monotonic() - last_change > self._stall_seconds():
                # PortAudio does not always end the stream when a server dies: no callbacks for
                # that long means the device is gone (or, without a single one, never started).
                self.stop_reason = STREAM_ENDED if self._block_seen else NEVER_STARTED
                break
            if on_tick is not None:
                on_tick(self)

    def dry_samples(self) -> int:
        """Device samples so far that played without the model: callback misses and skipped hops."""
        g = self.streamer.geometry
        hop = g.hop * self.rate / g.sample_rate
        return int(self.st[kernels.MISSED]) + round(self.streamer.dry_hops * hop)

    def _watch_misses(self, done: int) -> None:
        """Once per second of audio: if more than SLOW_WARN_SHARE of it played dry, say so (once).
        A model slower than its hop budget keeps the delay and plays dry; the user should know why."""
        if self._slow_warned or done - self._miss_mark[0] < self.rate:
            return
        dry = self.dry_samples()
        share = (dry - self._miss_mark[1]) / (done - self._miss_mark[0])
        self._miss_mark = (done, dry)
        if share > SLOW_WARN_SHARE:
            self._slow_warned = True
            g = self.streamer.geometry
            logger.warning(
                "the model cannot keep up: %.0f%% of the last second played dry (hop budget %.2f ms); "
                "those hops are passed through unprocessed: try a larger --latency preset, a smaller "
                "--model, or fewer busy programs", 100 * min(share, 1.0), g.ms(g.hop))

    def stop(self, reason: str = "stopped") -> None:
        """Ask the engine to stop (safe from a signal handler)."""
        self.stop_reason = reason
        self.stop_event.set()

    def levels_db(self) -> tuple[float, float]:
        """Recent input and output peak level in dBFS (for the status line)."""
        n = min(self.rate // 10, self.in_ring.shape[1])
        pos = int(self.st[kernels.IN_COUNT])
        inp = np.empty((self.channels, n), np.float32)
        kernels.ring_read_nb(self.in_ring, max(pos - n, 0), inp)
        out = np.empty_like(inp)
        kernels.ring_read_nb(self.out_ring, max(self._produced - n, 0), out)
        return tuple(20 * math.log10(max(float(np.abs(a).max()), 1e-6)) for a in (inp, out))

    def _result(self, seconds: float) -> LiveResult:
        st = self.st
        return LiveResult(
            device_rate=self.rate,
            channels=self.channels,
            delay_samples=max(int(st[kernels.DELAY]), 0),
            blocksize=self._block_seen,
            seconds=seconds,
            input_samples=int(st[kernels.IN_COUNT]),
            missed_samples=int(st[kernels.MISSED]),
            miss_events=int(st[kernels.MISS_EVENTS]),
            dry_hops=self.streamer.dry_hops,
            overrun_samples=int(st[kernels.OVERRUN]),
            xruns=dict(self.xruns),
            device_latency=self.device_latency,
            stop_reason=self.stop_reason,
            written={s.path: s.written for s in self.sinks},
            failed_outputs={s.path: message for s, message in self.failed_sinks},
        )
