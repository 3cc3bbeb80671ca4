"""A software loopback cable on a JACK server, to measure a live client's round trip to the sample.

:class:`JackLoopback` is a second JACK client (PyPI ``JACK-Client``) that takes the place of the
sound card: it disconnects the client under test from ``system:*``, feeds the client's inputs
with a click train and records the client's outputs, both in JACK frame time, as
``jack_iodelay`` does with a physical cable. With the dummy driver
(``jackd -d dummy -r 48000 -p 256``) JACK paces the cycles in real time with no hardware.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass

import numpy as np

from rt_enhance.realtime.errors import RtEnhanceError

logger = logging.getLogger(__name__)


class JackUnavailable(RtEnhanceError, RuntimeError):
    """No JACK server could be reached or started."""


def jack_running() -> bool:
    """True if a JACK server answers."""
    if shutil.which("jack_wait") is None:
        return False
    done = subprocess.run(["jack_wait", "-c"], capture_output=True, text=True)
    return done.returncode == 0 and done.stdout.strip() == "running"


def stop_server(proc: subprocess.Popen, name: str | None = None) -> None:
    """Stop a server started by :func:`start_dummy_server` and remove the semaphores its clients
    left in /dev/shm (``jack_sem.UID_SERVER_CLIENT``: a client that died or left without closing
    never unlinks its own). A default server's are removed only if no other one took its place."""
    proc.terminate()
    proc.wait(timeout=10)
    if name is None and jack_running():
        return
    for path in glob.glob(f"/dev/shm/jack_sem.*_{name or 'default'}_*"):
        with contextlib.suppress(OSError):
            os.unlink(path)


def start_dummy_server(
    rate: int = 48000, period: int = 256, timeout: float = 10.0, *, name: str | None = None, client_timeout_ms: int | None = None
) -> subprocess.Popen:
    """Start ``jackd -d dummy``; the caller terminates the returned process.

    ``name`` starts a private server beside the default one (``jackd -n NAME``); its clients
    find it through the ``JACK_DEFAULT_SERVER`` environment variable. ``client_timeout_ms``
    (``jackd -t``, 500 ms by default) is how long a stalled client may keep the server waiting
    before it is dropped.
    """
    if shutil.which("jackd") is None:
        raise JackUnavailable("jackd is not installed; on Debian: apt-get install --no-install-recommends jackd2")
    proc = subprocess.Popen(
        [
            "jackd",
            *(["-n", name] if name else []),
            *(["-t", str(client_timeout_ms)] if client_timeout_ms else []),
            "--no-realtime",
            "-d",
            "dummy",
            "-r",
            str(rate),
            "-p",
            str(period),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = ["-s", name] if name else []
    done = subprocess.run(["jack_wait", *server, "-w", "-t", str(int(timeout))], capture_output=True, text=True)
    if done.returncode != 0 or proc.poll() is not None:
        proc.terminate()
        raise JackUnavailable(f"jackd did not start: {done.stdout.strip()} {done.stderr.strip()}")
    return proc


@dataclass
class LoopbackResult:
    sent: np.ndarray  # frame indices of the clicks sent
    received: np.ndarray  # frame indices of the clicks found in the recording
    delays: np.ndarray  # received - sent, one per click matched
    recording: np.ndarray  # float32 [frames] what the client under test played
    frames: int
    repeated_blocks: int  # identical non-silent consecutive periods (the dummy driver's stale buffers)
    xrun_frames: np.ndarray  # frames near which JACK reported an xrun
    clean: np.ndarray  # bool per delay: no xrun between that click's sending and its arrival

    @property
    def clean_delays(self) -> np.ndarray:
        return self.delays[self.clean]


class JackLoopback:
    """Feed a click train into ``target``'s inputs and record its first output, in JACK frame time."""

    def __init__(
        self,
        target: str = "PortAudio",
        *,
        name: str = "rt-loopback",
        click_every: int = 9600,
        amplitude: float = 0.5,
        signal: np.ndarray | None = None,
    ) -> None:
        """``signal`` (float32 ``[n]``, optional) is injected instead of the click train, looped:
        frame ``f`` sends ``signal[f % n]``; the click analysis of :meth:`measure` then finds the
        signal's own peaks, so read :attr:`LoopbackResult.recording` instead."""
        import jack

        self.jack = jack
        self.target = self._wanted = target
        self.client = jack.Client(name, no_start_server=True)
        self.out = self.client.outports.register("click")
        self.inp = self.client.inports.register("capture")
        self.click_every = click_every
        self.amplitude = amplitude
        self.rate = self.client.samplerate
        self.period = self.client.blocksize
        self._rec = np.zeros(0, np.float32)
        self._frame = 0
        self._running = False
        self._signal = None if signal is None else np.ascontiguousarray(signal, np.float32)
        self.xrun_frames: list[int] = []
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._xrun)

    def _xrun(self, delayed_usecs: float) -> None:
        """JACK reports a late cycle: the graph's timing broke near this frame (an xrun)."""
        self.xrun_frames.append(self._frame)

    def _process(self, frames: int) -> None:
        out = self.out.get_array()
        out.fill(0.0)
        start = self._frame
        if self._running and start + frames <= self._rec.shape[0]:
            if self._signal is None:
                first = -start % self.click_every
                out[first :: self.click_every] = self.amplitude
            else:
                self._send_signal(out, self._signal, start, frames)
            self._rec[start : start + frames] = self.inp.get_array()
            self._frame = start + frames

    @staticmethod
    def _send_signal(out: np.ndarray, sig: np.ndarray, start: int, frames: int) -> None:
        """Frames ``start .. start+frames`` of the looped ``sig`` (float32 ``[n]``) into ``out`` (``[frames]``)."""
        i = start % sig.shape[0]
        first = min(frames, sig.shape[0] - i)
        out[:first] = sig[i : i + first]
        if first < frames:  # wrap around (a signal at least one period long wraps at most once)
            out[first:] = sig[: frames - first]

    @property
    def frame(self) -> int:
        """Frames recorded so far in the current measurement (read from any thread)."""
        return self._frame

    def wait_for_target(self, timeout: float = 60.0, process=None) -> None:
        """Block until the client under test has registered its ports (its start-up, imports and numba
        included, can take tens of seconds on a loaded 2-core machine). ``process`` (a ``Popen``), if
        given, is the client: its early exit ends the wait at once, with what it printed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                out, err = process.communicate()
                raise RuntimeError(
                    f"the client under test exited ({process.returncode}) before it joined JACK: {(err or out or '').strip()[-500:]}"
                )
            found = self._newest_client()
            if found:
                self.target = found
                time.sleep(0.2)  # a duplex client registers its ports one after another
                return
            time.sleep(0.05)
        raise TimeoutError(f"no JACK client named {self.target!r} appeared within {timeout:.0f} s")

    def _newest_client(self) -> str | None:
        """The client under test: ``target``, or the newest ``target-NN`` with ports (JACK renames a
        client whose name a zombie of a killed process still holds; zombies have no ports)."""
        names = {p.name.split(":", 1)[0] for p in self.client.get_ports(f"^{re.escape(self._wanted)}(-[0-9]+)?:(in|out)")}
        return max(names, key=lambda n: (len(n), n), default=None)

    def _wire(self) -> None:
        ins = self.client.get_ports(f"{self.target}:in", is_input=True)
        outs = self.client.get_ports(f"{self.target}:out", is_output=True)
        for port in ins + outs:
            for other in self.client.get_all_connections(port):
                if not other.name.startswith(self.client.name + ":"):
                    self.client.disconnect(other, port) if port in ins else self.client.disconnect(port, other)
        for port in ins:
            self.client.connect(self.out, port)
        if outs:
            self.client.connect(outs[0], self.inp)

    def measure(self, seconds: float, *, settle: float = 0.5) -> LoopbackResult:
        """Wire up, wait ``settle`` seconds, then inject and record for ``seconds``."""
        with self.client:
            self._wire()
            time.sleep(settle)
            self._rec = np.zeros(int(seconds * self.rate), np.float32)
            self._frame = 0
            self._running = True
            time.sleep(seconds + 4 * self.period / self.rate)
            self._running = False
        return self._analyse(self._rec[: self._frame])

    def _analyse(self, rec: np.ndarray) -> LoopbackResult:
        sent = np.arange(0, rec.shape[0], self.click_every)
        peaks = np.flatnonzero(np.abs(rec) > self.amplitude / 2)
        # keep the first sample of each click (a click may spread over a few samples when enhanced)
        received = peaks[np.concatenate([[True], np.diff(peaks) > self.click_every // 2])] if peaks.size else peaks
        pairs = [(sent[sent <= r].max(), r) for r in received if (sent <= r).any()]
        delays = np.array([r - s for s, r in pairs], dtype=np.int64)
        xruns = np.asarray(self.xrun_frames, np.int64)
        margin = 2 * self.period
        clean = np.array([not np.any((xruns >= s - margin) & (xruns <= r + margin)) for s, r in pairs], dtype=bool)
        blocks = rec[: rec.shape[0] // self.period * self.period].reshape(-1, self.period)
        loud = np.abs(blocks).max(axis=1) > 1e-4
        repeated = int(np.sum(loud[1:] & loud[:-1] & np.all(blocks[1:] == blocks[:-1], axis=1)))
        return LoopbackResult(sent, received, delays, rec, rec.shape[0], repeated, xruns, clean)
