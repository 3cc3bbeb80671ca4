"""The live engine: a PortAudio callback that only moves samples, and a worker that enhances them.

Threads and what they touch:

* the **audio callback** (PortAudio's thread, :class:`AudioCallbacks`) copies the device block
  into the input ring and plays the output ring ``D`` samples behind the input (:mod:`kernels`);
  when the worker has not written a position yet it plays the dry input at that position instead,
  with a declick, and counts a deadline miss. It never allocates, logs, locks or touches files.
* the **worker** (:class:`Worker`) polls the input ring, resamples to the model rate, runs the
  :class:`Streamer`, resamples back and writes the output ring (and any file sinks). When it finds
  that the callback has already played past what it is about to produce, it runs those hops dry
  (no model) and so catches up at once: stale windows are skipped and the delay never grows.
* the **main thread** (:class:`LiveEngine`) opens the stream, prints the status line from
  :meth:`LiveEngine.status` and waits for the stop.

The two threads share only a :class:`SharedState`: the rings and named counters, each with one writer.
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
from rt_enhance.realtime.audio_io import FileSink, FileSource
from rt_enhance.realtime.callback import AudioCallbacks, SharedState
from rt_enhance.realtime.devices import Device, DeviceError, sounddevice
from rt_enhance.realtime.geometry import Geometry, live_delay
from rt_enhance.realtime.resample import round_trip_lag
from rt_enhance.realtime.streamer import Streamer
from rt_enhance.realtime.worker import Worker

logger = logging.getLogger(__name__)

RING_SECONDS = 8.0
GIL_SWITCH_SECONDS = 0.0002
STALL_SECONDS = 2.0  # no audio callback for this long (or two blocks, if longer): the device or server is gone
SLOW_WARN_SHARE = 0.2  # warn (once) when more than this share of a second of audio played dry
STREAM_ENDED = "audio stream ended (device lost or server stopped)"
NEVER_STARTED = "no audio ever arrived: the device opened but never called back"


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
    device_latency_max: tuple[float, float]
    stop_reason: str
    written: dict[str, int] = field(default_factory=dict)
    failed_outputs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineStatus:
    """A snapshot of a running engine's counters, in device samples unless named otherwise.

    Taken from the main thread (or the simulator) while the callback runs: each field is read once,
    so two fields may come from successive callbacks.
    """

    input_samples: int  # received (duplex/capture) or played (playback) so far
    seconds: float  # input_samples in seconds
    delay: int  # D, the constant stream delay; -1 before the first callback
    watermark: int  # the worker has written output for positions below this
    missed_samples: int  # played dry because the worker was late
    miss_events: int  # switches from enhanced to dry in the callback
    dry_hops: int  # model hops the worker skipped to catch up
    overrun_samples: int  # capture: dropped because the worker fell a whole ring behind
    xruns: int  # PortAudio status flags counted, all kinds together

    @property
    def misses(self) -> int:
        """Times audio played without the model: callback misses and skipped hops."""
        return self.miss_events + self.dry_hops


def _dbfs(x: np.ndarray) -> float:
    """Peak level of ``x`` in dBFS, at least -120."""
    return 20 * math.log10(max(float(np.abs(x).max()), 1e-6))


def _ring_size(rate: int) -> int:
    return 1 << math.ceil(math.log2(rate * RING_SECONDS))


class LiveEngine:
    """Runs a :class:`Streamer` against devices and/or files in real time.

    Its parts are public for the simulator (:mod:`simulate`): :attr:`state` (what the callback and
    the worker share), :attr:`callbacks` (the audio thread) and :attr:`worker` (the worker thread).
    """

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
        self.source = source
        self.blocksize = blocksize
        self.output_channels = output_channels or self.channels
        self.state = SharedState(
            channels=self.channels,
            output_channels=self.output_channels,
            ring_size=_ring_size(device_rate),
            limit_knee=limit_knee if output_device is not None else 0.0,
            declick_samples=max(16, device_rate // 1000),
        )
        self.callbacks = AudioCallbacks(self.state, self.delay_for_block)
        self.stop_event = threading.Event()
        self.worker = Worker(
            streamer=streamer,
            state=self.state,
            rate=device_rate,
            plays=output_device is not None,
            source=source,
            sinks=list(sinks or []),
            stop=self.stop,
            stopping=self.stop_event,
        )
        self.stop_reason = "stopped"
        self.device_latency = (0.0, 0.0)  # (in, out) seconds: the devices' or the server's estimate
        self.device_latency_max = (0.0, 0.0)  # the largest estimate seen, where it moves (a sound server)
        self._resampled = device_rate != self.geometry.sample_rate
        g = self.geometry
        self._extra_lag = round_trip_lag(device_rate, g.sample_rate, g.hop) if self._resampled else 0
        self._miss_mark = (0, 0)  # (input samples, dry samples) at the last check of _watch_misses
        self._slow_warned = False
        kernels.warm_up()
        streamer.prepare(1)  # the worker's usual call: one hop

    # ------------------------------------------------------------------ delay and status

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
        return self.state.delay

    def status(self) -> EngineStatus:
        """A snapshot of the counters (for the status line, the simulator and the result)."""
        s = self.state
        done = s.input_samples
        return EngineStatus(
            input_samples=done,
            seconds=done / self.rate,
            delay=s.delay,
            watermark=s.watermark,
            missed_samples=s.missed_samples,
            miss_events=s.miss_events,
            dry_hops=self.streamer.dry_hops,
            overrun_samples=s.overrun_samples,
            xruns=self.callbacks.xrun_count,
        )

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
                callback=self.callbacks.duplex,
                **common,
            )
        if self.input_device is not None:
            return sd.InputStream(device=self.input_device.index, channels=self.channels, callback=self.callbacks.capture, **common)
        assert self.output_device is not None
        return sd.OutputStream(device=self.output_device.index, channels=self.output_channels, callback=self.callbacks.playback, **common)

    def _stream(self):
        sd = sounddevice()
        try:
            stream = self._open_stream(sd)
        except sd.PortAudioError as exc:
            devices = " / ".join(str(d) for d in (self.input_device, self.output_device) if d is not None)
            raise DeviceError(f"cannot open {devices} at {self.rate} Hz: {exc}") from None
        latency = stream.latency
        self.device_latency = (
            tuple(latency) if isinstance(latency, tuple) else ((latency, 0.0) if self.output_device is None else (0.0, latency))
        )
        self.device_latency_max = self.device_latency  # PortAudio's figure does not move
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
        worker = threading.Thread(target=self.worker.run, name="rt-enhance-worker", daemon=True)
        worker.start()
        start = time.monotonic()
        try:
            if self.source is not None:
                self.worker.prebuffer()
            stream.start()
            self._wait(stream, duration, on_tick)
        finally:
            self.stop_event.set()
            self._close(stream)
            self.worker.close_input()  # no callback can add input now: the worker drains and ends
            worker.join()
        if self.worker.error is not None:
            raise self.worker.error
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
        return max(STALL_SECONDS, 2.0 * max(self.blocksize, self.callbacks.block_seen) / self.rate)

    def _wait(self, stream, duration: float | None, on_tick) -> None:
        limit = None if duration is None else int(duration * self.rate)
        last_count, last_change = 0, time.monotonic()
        while not self.stop_event.wait(0.05):
            done = self.state.input_samples
            self._watch_misses(done)
            if done != last_count:
                last_count, last_change = done, time.monotonic()
            if limit is not None and done >= limit:
                self.stop_reason = "duration reached"
                break
            if self.worker.done_producing and done >= self.worker.produced:
                self.stop_reason = "end of input file"
                break
            quiet_since = max(last_change, getattr(stream, "rerouted_at", 0.0))  # a stream moved back by the server: from then
            if not stream.active or time.monotonic() - quiet_since > self._stall_seconds():
                # PortAudio does not always end the stream when a server dies: no callbacks for
                # that long means the device is gone (or, without a single one, never started).
                self.stop_reason = STREAM_ENDED if self.callbacks.block_seen else NEVER_STARTED
                break
            if on_tick is not None:
                on_tick(self)

    def dry_samples(self) -> int:
        """Device samples so far that played without the model: callback misses and skipped hops."""
        g = self.streamer.geometry
        hop = g.hop * self.rate / g.sample_rate
        return self.state.missed_samples + round(self.streamer.dry_hops * hop)

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
                "--model, or fewer busy programs",
                100 * min(share, 1.0),
                g.ms(g.hop),
            )

    def stop(self, reason: str = "stopped") -> None:
        """Ask the engine to stop (safe from a signal handler)."""
        self.stop_reason = reason
        self.stop_event.set()

    def levels_db(self) -> tuple[float, float]:
        """Recent input and output peak level in dBFS (for the status line)."""
        n = min(self.rate // 10, self.state.ring_size)
        pos = self.state.input_samples
        inp = np.empty((self.channels, n), np.float32)
        kernels.ring_read_nb(self.state.in_ring, max(pos - n, 0), inp)
        out = np.empty_like(inp)
        kernels.ring_read_nb(self.state.out_ring, max(self.worker.produced - n, 0), out)
        return _dbfs(inp), _dbfs(out)

    def _result(self, seconds: float) -> LiveResult:
        status = self.status()
        return LiveResult(
            device_rate=self.rate,
            channels=self.channels,
            delay_samples=max(status.delay, 0),
            blocksize=self.callbacks.block_seen,
            seconds=seconds,
            input_samples=status.input_samples,
            missed_samples=status.missed_samples,
            miss_events=status.miss_events,
            dry_hops=status.dry_hops,
            overrun_samples=status.overrun_samples,
            xruns=dict(self.callbacks.xruns),
            device_latency=self.device_latency,
            device_latency_max=self.device_latency_max,
            stop_reason=self.stop_reason,
            written={s.path: s.written for s in self.worker.sinks},
            failed_outputs={s.path: message for s, message in self.worker.failed_sinks},
        )
