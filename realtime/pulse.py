"""Talking to a PulseAudio-protocol server (plain PulseAudio, or PipeWire through pipewire-pulse).

``pactl`` for control; libpulse-simple (``libpulse0``, through ctypes) for audio:
:class:`PulseStream` is one record or playback stream, :class:`PulseDuplex` gives the live engine
what it needs of a sounddevice stream, and :class:`SourcePin` keeps the microphone stream where it
was opened. Errors are :class:`ServerError`, one line for the user.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import re
import subprocess
import threading
import time
from collections import deque

import numpy as np

from rt_enhance.realtime.errors import RtEnhanceError

logger = logging.getLogger(__name__)

PACTL_TIMEOUT = 10.0


class ServerError(RtEnhanceError):
    """No server, missing tools, a name clash: one line for the user."""


def pactl(*args: str) -> str:
    """Run ``pactl``; its absence or a server that does not answer is a ServerError."""
    try:
        done = subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=PACTL_TIMEOUT)
    except FileNotFoundError:
        raise ServerError(
            "the virtual microphone needs pactl: apt-get install pulseaudio-utils (with PipeWire also pipewire-pulse)"
        ) from None
    except subprocess.TimeoutExpired:
        raise ServerError(f"the audio server did not answer 'pactl {' '.join(args)}' within {PACTL_TIMEOUT:g} s") from None
    if done.returncode != 0:
        text = (done.stderr.strip() or done.stdout.strip()).splitlines()
        reason = text[-1] if text else f"exit code {done.returncode}"
        if "onnection" in reason:  # "Connection refused", "Connection failure"
            raise ServerError(
                f"no PulseAudio or PipeWire server is running ({reason}); start one "
                "(systemctl --user start pipewire pipewire-pulse wireplumber, or pulseaudio --start)"
            )
        raise ServerError(f"pactl {args[0]} failed: {reason}")
    return done.stdout


def names(kind: str) -> set[str]:
    return {line.split("\t")[1] for line in pactl("list", "short", kind).splitlines() if "\t" in line}


class _SampleSpec(ctypes.Structure):
    _fields_ = [("format", ctypes.c_int), ("rate", ctypes.c_uint32), ("channels", ctypes.c_uint8)]


class _BufferAttr(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint32) for name in ("maxlength", "tlength", "prebuf", "minreq", "fragsize")]


PLAY_BLOCKS = 4  # playback buffer target; it starts with the first block
PA_SAMPLE_FLOAT32LE = 5
PA_STREAM_PLAYBACK, PA_STREAM_RECORD = 1, 2
NO_VALUE = 0xFFFFFFFF


def _libs():
    try:
        simple = ctypes.CDLL(ctypes.util.find_library("pulse-simple") or "libpulse-simple.so.0")
        pulse = ctypes.CDLL(ctypes.util.find_library("pulse") or "libpulse.so.0")
    except OSError:
        raise ServerError("the virtual microphone needs libpulse-simple: apt-get install libpulse0") from None
    simple.pa_simple_new.restype = ctypes.c_void_p
    simple.pa_simple_new.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.POINTER(_SampleSpec),
        ctypes.c_void_p,
        ctypes.POINTER(_BufferAttr),
        ctypes.POINTER(ctypes.c_int),
    ]
    for fn in (simple.pa_simple_read, simple.pa_simple_write):
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int)]
    simple.pa_simple_get_latency.restype = ctypes.c_uint64
    simple.pa_simple_get_latency.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    simple.pa_simple_free.argtypes = [ctypes.c_void_p]
    simple.pa_simple_flush.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    pulse.pa_strerror.restype = ctypes.c_char_p
    return simple, pulse


class PulseStream:
    """One libpulse-simple stream of float32 frames ``[frames, channels]``."""

    def __init__(self, direction: int, device: str | None, name: str, *, rate: int, channels: int, block: int) -> None:
        self._simple, self._pulse = _libs()
        spec = _SampleSpec(PA_SAMPLE_FLOAT32LE, rate, channels)
        nbytes = block * channels * 4
        attr = _BufferAttr(NO_VALUE, PLAY_BLOCKS * nbytes, nbytes, nbytes, nbytes)
        err = ctypes.c_int(0)
        self._s = self._simple.pa_simple_new(
            None,
            b"rt-enhance",
            direction,
            device.encode() if device else None,
            name.encode(),
            ctypes.byref(spec),
            None,
            ctypes.byref(attr),
            ctypes.byref(err),
        )
        if not self._s:
            what = f"the source {device or '(default)'}" if direction == PA_STREAM_RECORD else device
            raise ServerError(f"cannot open {what}: {self._strerror(err.value)}")

    def _strerror(self, code: int) -> str:
        return self._pulse.pa_strerror(code).decode(errors="replace")

    def _check(self, rc: int, err: ctypes.c_int, what: str) -> None:
        if rc < 0:
            raise ServerError(f"audio server {what} failed: {self._strerror(err.value)}")

    def read_into(self, buf: np.ndarray) -> None:
        err = ctypes.c_int(0)
        self._check(self._simple.pa_simple_read(self._s, buf.ctypes.data, buf.nbytes, ctypes.byref(err)), err, "read")

    def write(self, buf: np.ndarray) -> None:
        err = ctypes.c_int(0)
        self._check(self._simple.pa_simple_write(self._s, buf.ctypes.data, buf.nbytes, ctypes.byref(err)), err, "write")

    def flush(self) -> None:
        """Drop what the server holds for this stream (a record backlog from before the loop ran)."""
        err = ctypes.c_int(0)
        self._check(self._simple.pa_simple_flush(self._s, ctypes.byref(err)), err, "flush")

    def latency(self) -> float:
        """The server's latency estimate for this stream, in seconds."""
        err = ctypes.c_int(0)
        return self._simple.pa_simple_get_latency(self._s, ctypes.byref(err)) / 1e6

    def close(self) -> None:
        if self._s:
            self._simple.pa_simple_free(self._s)
            self._s = None


class SourcePin:
    """Keeps this process's microphone stream on the source it was opened on.

    A server moves a stream that was opened on the default source when the default changes, and
    users do make the virtual microphone their default: the engine would then record its own
    output. :meth:`check` (once a second, from a thread) moves the stream back with ``pactl``.
    """

    PERIOD = 1.0

    def __init__(self, source: str) -> None:
        self.source = source
        self.moves = 0
        self.moved_at = 0.0  # time.monotonic() of the last move back

    def check(self) -> None:
        rows = [line.split("\t") for line in pactl("list", "short", "sources").splitlines() if "\t" in line]
        indexes = {row[1]: row[0] for row in rows}
        wanted = indexes.get(self.source)
        for block in pactl("list", "source-outputs").split("Source Output #")[1:]:
            if f'application.process.id = "{os.getpid()}"' not in block or 'media.name = "microphone"' not in block:
                continue
            now = re.search(r"^\s*Source: (\d+)", block, re.M)
            if wanted is not None and now and now.group(1) != wanted:
                if self.moves == 0:
                    logger.warning(
                        "the server moved rt-enhance's microphone input (the default source changed); moving it back to %s", self.source
                    )
                self.moves += 1
                pactl("move-source-output", block.split("\n", 1)[0].strip(), self.source)
                self.moved_at = time.monotonic()

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.PERIOD):
            try:
                self.check()
            except ServerError as exc:  # the server went away: the stream's own thread reports it
                logger.debug("source pin: %s", exc)
                return


class PulseDuplex:
    """What the live engine needs of a sounddevice stream, on libpulse-simple.

    A thread reads one block from the microphone (or, with no microphone, waits for room in the
    playback buffer), calls the engine's callback with it exactly as PortAudio would, and writes
    the block it returns into the virtual mic's sink.
    """

    def __init__(self, *, source: str | None, sink: str, rate: int, channels: int, block: int, callback, duplex: bool) -> None:
        self.block, self.channels, self.callback, self.duplex, self.source = block, channels, callback, duplex, source
        self._rec = (
            PulseStream(PA_STREAM_RECORD, source or None, "microphone", rate=rate, channels=channels, block=block) if duplex else None
        )
        try:
            self._play = PulseStream(PA_STREAM_PLAYBACK, sink, "enhanced", rate=rate, channels=channels, block=block)
        except ServerError:
            self.close()
            raise
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rt-enhance-pulse", daemon=True)
        self.error: BaseException | None = None
        self._samples: deque[tuple[float, float]] = deque(maxlen=1000)  # the last ~50 s of estimates
        self._pin: SourcePin | None = None

    def _measure(self) -> None:
        self._samples.append((self._rec.latency() if self._rec else 0.0, self._play.latency()))

    @property
    def latency(self) -> tuple[float, float]:
        """(record, playback) latency in seconds: the median of the server's estimates while streaming."""
        if not self._samples:
            return (0.0, 0.0)
        a = 1e3 * np.array(self._samples)
        logger.debug(
            "server latency estimates ms, p10/p50/p90: record %s, playback %s",
            np.percentile(a[:, 0], [10, 50, 90]).round(1),
            np.percentile(a[:, 1], [10, 50, 90]).round(1),
        )
        rec, play = np.median(a, axis=0) / 1e3
        return (float(rec), float(play))

    @property
    def latency_max(self) -> tuple[float, float]:
        """(record, playback): the largest of the server's estimates while streaming, in seconds. The
        estimates move with the server's buffering, and under load the delay a listener hears can sit
        above their median for a while."""
        if not self._samples:
            return (0.0, 0.0)
        rec, play = np.max(np.array(self._samples), axis=0)
        return (float(rec), float(play))

    @property
    def active(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    @property
    def rerouted_at(self) -> float:
        """``time.monotonic()`` when the microphone stream was last moved back to its source (0: never).
        The engine's stall watchdog counts from then: a stream the server had moved onto rt-enhance's own
        output read nothing while it was there, and needs a moment to run again."""
        return self._pin.moved_at if self._pin is not None else 0.0

    def start(self) -> None:
        self._thread.start()
        if self.duplex and self.source:
            self._pin = SourcePin(self.source)
            threading.Thread(target=self._pin.run, args=(self._stop,), name="rt-enhance-pin", daemon=True).start()

    def _loop(self) -> None:
        indata = np.zeros((self.block, self.channels), np.float32)
        outdata = np.zeros((self.block, self.channels), np.float32)
        blocks = 0
        try:
            if self._rec is not None:
                self._rec.flush()  # what the microphone captured while the engine started would stay as delay
            while not self._stop.is_set():
                blocks += 1
                if blocks > 20 and blocks % 10 == 0:  # once settled, every tenth block
                    self._measure()
                if self._rec is not None:  # duplex
                    self._rec.read_into(indata)
                    self.callback(indata, outdata, self.block, None, None)
                else:
                    self.callback(outdata, self.block, None, None)
                self._play.write(outdata)
        except ServerError as exc:  # the server went away: the engine sees an inactive stream
            self.error = exc
            logger.error("%s", exc)

    def close(self) -> None:
        """Stop the thread, then close both streams: the physical microphone is released."""
        if hasattr(self, "_stop"):
            self._stop.set()
            if self._thread.is_alive():
                self._thread.join(2.0)
        for stream in (self._rec, getattr(self, "_play", None)):
            if stream is not None:
                stream.close()

    abort = close
