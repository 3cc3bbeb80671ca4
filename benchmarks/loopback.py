"""``rt-bench loopback``: the live path on a JACK server, measured through a software cable.

``rt-enhance --in JACK --out JACK`` runs as a user runs it (a subprocess, ``--stats-json``);
:class:`JackLoopback` takes the sound card's place, injects clicks and records, in JACK frame
time, as ``jack_iodelay`` does with a cable. The measured round trip is compared with what the
engine reports (``latency_samples`` + PortAudio's device latency), click by click.

By default the model runs as its cost-equal probe (:mod:`probe`): every hop pays the full
model, but the output is the input, so the clicks survive to the sample. ``--raw`` runs the
model itself (an untrained model's output hides the clicks; misses and xruns still count).

Without a running JACK server (or with ``--own-server``) a private dummy one (``jackd -n
rt-bench-PID -d dummy -r 48000 -p 256``) is started and stopped afterwards. The loopback
client (and a private server) run at a raised priority where permitted (:mod:`priority`).
rt-enhance is stopped with SIGINT, as Ctrl-C, once the measurement is done.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rt_enhance.benchmarks import analysis, priority
from rt_enhance.benchmarks.jackloop import (
    JackLoopback,
    JackUnavailable,
    LoopbackResult,
    jack_running,
    start_dummy_server,
    stop_server,
)
from rt_enhance.benchmarks.models import describe, model_path
from rt_enhance.benchmarks.probe import write_probe
from rt_enhance.benchmarks.table import Column, render
from rt_enhance.realtime.errors import RtEnhanceError

logger = logging.getLogger(__name__)

TARGET = "PortAudio"  # the JACK client name PortAudio gives every stream
EXIT_GRACE_S = 30.0
CLIENT_TIMEOUT_MS: int | None = None  # jackd's default (500 ms): a longer stall can get the client dropped
CLICK = 0.8  # click height sent
CLICK_EVERY = 9600  # frames between clicks (200 ms at 48 kHz); between them low noise (NOISE)
NOISE = 0.05
PROBE_GAIN = 0.75  # the probe's output gain: an enhanced click arrives at 0.6, a dry (missed) one at 0.8


class LiveRunError(RtEnhanceError, RuntimeError):
    """rt-enhance did not run (it exited before streaming, or wrote no report); one line."""


@dataclass(frozen=True)
class LiveOptions:
    model: str
    threads: int = 1
    seconds: float = 60.0
    channels: int = 1
    preset: str | None = "low"
    hop: str | None = None
    lookahead: str | None = None
    crossfade: str | None = None
    probe: bool = True
    own_server: bool = False
    period: int = 256  # frames per cycle of the private server (--own-server)


@dataclass
class LiveRun:
    """What one live run gave: the engine's own report and the loopback's recording."""

    stats: dict[str, Any]
    result: LoopbackResult
    model_file: str
    probed: bool
    extra: dict[str, Any]

    @property
    def reported_samples(self) -> int:
        """Engine delay + PortAudio's device latency (in + out), in samples."""
        s = self.stats
        device = round((s["device_latency_in_ms"] + s["device_latency_out_ms"]) * s["io_rate"] / 1000)
        return int(s["latency_samples"]) + device


@contextlib.contextmanager
def jack_server(own: bool = False, period: int = 256):
    """A JACK server for the run: the running default one, else (or with ``own``) a private dummy one.

    A private server (``jackd -n rt-bench-PID -d dummy -r 48000 -p PERIOD``) keeps other clients on
    a shared machine (another test's PortAudio stream) away from the measurement; this process
    and rt-enhance find it through ``JACK_DEFAULT_SERVER``.
    """
    if not own and jack_running():
        yield None
        return
    name = f"rt-bench-{os.getpid()}"
    proc = start_dummy_server(period=period, name=name, client_timeout_ms=CLIENT_TIMEOUT_MS)
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    try:
        yield proc
    finally:
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous
        stop_server(proc, name)


def live_command(opts: LiveOptions, model_file: str, stats: str, duration: float) -> list[str]:
    """The rt-enhance command line of the run, exactly as a user types it (plus -q and the stats file)."""
    cmd = [
        sys.executable,
        "-m",
        "rt_enhance.realtime.cli",
        "--in",
        "JACK",
        "--out",
        "JACK",
        "--model",
        model_file,
        "--channels",
        str(opts.channels),
        "--threads",
        str(opts.threads),
        "--duration",
        f"{duration:g}",
        "--stats-json",
        stats,
        "-q",
    ]
    for flag, value in (("--latency", opts.preset), ("--hop", opts.hop), ("--lookahead", opts.lookahead), ("--crossfade", opts.crossfade)):
        if value is not None:
            cmd += [flag, str(value)]
    return cmd


def _model_file(opts: LiveOptions, folder: str, gain: float) -> tuple[str, bool]:
    path = model_path(opts.model)
    if path is None or not opts.probe:
        return opts.model, False
    return write_probe(path, os.path.join(folder, "probe.onnx"), gain=gain), True


def _wait_for_free_target(timeout: float = 20.0) -> None:
    """Refuse to measure someone else's stream: no other PortAudio client may be on the server."""
    try:
        import jack
    except ImportError:
        raise JackUnavailable("the loopback needs JACK-Client: pip install JACK-Client (the dev extra)") from None
    with contextlib.closing(jack.Client("rt-bench-check", no_start_server=True)) as client:
        deadline = time.monotonic() + timeout
        while client.get_ports(f"^{TARGET}:"):
            if time.monotonic() > deadline:
                raise JackUnavailable(f"another '{TARGET}' client is on the JACK server; stop it and run again")
            time.sleep(0.2)


def _wait_for_stream(loop: JackLoopback, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Wait for rt-enhance's JACK ports; if it exits first, its own error message says why."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            loop.wait_for_target(timeout=1.0)
            return
        except TimeoutError:
            if proc.poll() is not None:
                said = proc.stderr.read().strip()[-400:] if proc.stderr else ""
                raise LiveRunError(f"rt-enhance exited {proc.returncode}: {said}") from None
            if time.monotonic() > deadline:
                raise


def run_live(
    opts: LiveOptions,
    measure: Callable[[JackLoopback, subprocess.Popen], tuple[LoopbackResult, dict]],
    *,
    gain: float = 1.0,
    loop_kwargs: dict | None = None,
    margin: float = 30.0,
) -> LiveRun:
    """Start rt-enhance on JACK, let ``measure`` drive the loopback, then stop it (SIGINT, as Ctrl-C)
    and collect its report. ``--duration`` (seconds + ``margin``) only bounds a run that hangs."""
    with jack_server(opts.own_server, opts.period) as server, tempfile.TemporaryDirectory(prefix="rt-bench-") as tmp:
        model_file, probed = _model_file(opts, tmp, gain)
        stats_path = os.path.join(tmp, "stats.json")
        _wait_for_free_target()
        cmd = live_command(opts, model_file, stats_path, opts.seconds + margin)
        logger.info("running %s", " ".join(cmd))
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=priority.default_priority)
        try:
            loop = JackLoopback(TARGET, **(loop_kwargs or {}))
            boosted = priority.set_nice(os.getpid(), priority.INSTRUMENT_NICE)
            if server is not None:
                boosted = priority.set_nice(server.pid, priority.INSTRUMENT_NICE) and boosted
            _wait_for_stream(loop, proc)
            result, extra = measure(loop, proc)
            extra = {**extra, "instrument_nice": priority.INSTRUMENT_NICE if boosted else 0}
            proc.send_signal(signal.SIGINT)  # rt-enhance stops cleanly and writes its report
            _, err = proc.communicate(timeout=EXIT_GRACE_S)
        finally:
            priority.set_nice(os.getpid(), 0)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if not os.path.exists(stats_path):
            raise LiveRunError(f"rt-enhance exited {proc.returncode} without a report: {err.strip()[-400:]}")
        with open(stats_path) as f:
            stats = json.load(f)
    extra["exit_code"] = proc.returncode  # 3: the stream ended under it (e.g. the server dropped the client)
    return LiveRun(stats, result, model_file if not probed else f"probe of {model_path(opts.model)}", probed, extra)


def base_record(section: str, opts: LiveOptions, live: LiveRun) -> dict[str, Any]:
    """Configuration and the engine's own report, common to loopback and stress records."""
    s = live.stats
    budget = 1000.0 * s["hop"] / s["model_rate"]
    xruns = s.get("xruns", {})
    return {
        "section": section,
        "model": describe(opts.model),
        "probe": live.probed,
        "provider": "cpu",
        "threads": opts.threads,
        "window": s["window"],
        "hop": s["hop"],
        "lookahead": s["lookahead"],
        "channels": s["channels"],
        "blocksize": s.get("blocksize"),
        "seconds": live.result.frames / s["io_rate"],
        "budget_ms": budget,
        "latency_samples": s["latency_samples"],
        "reported_samples": live.reported_samples,
        "reported_ms": 1000.0 * live.reported_samples / s["io_rate"],
        "p50_ms": s.get("p50_ms"),
        "p90_ms": None,
        "p99_ms": s.get("p99_ms"),
        "p999_ms": None,
        "max_ms": s.get("max_ms"),
        "rtf": s.get("rtf"),
        "over_budget_pct": None,
        "jack_xruns": int(len(live.result.xrun_frames)),
        "portaudio_xruns": int(sum(xruns.values())),
        "xruns_by_flag": xruns,
        "deadline_misses": int(s.get("deadline_misses", 0)),
        "miss_events": int(s.get("miss_events", 0)),
        "dry_hops": int(s.get("dry_hops", 0)),
        "missed_samples": int(s.get("missed_samples", 0)),
        "repeated_blocks": int(live.result.repeated_blocks),
        "instrument_nice": live.extra.get("instrument_nice"),
        "exit_code": live.extra.get("exit_code"),
        "stop_reason": s.get("stop_reason"),
        "status": "ok" if live.extra.get("exit_code") == 0 else f"rt-enhance exit {live.extra.get('exit_code')}: {s.get('stop_reason')}",
    }


def _measure_clicks(seconds: float):
    def measure(loop: JackLoopback, proc: subprocess.Popen) -> tuple[LoopbackResult, dict]:
        return loop.measure(seconds), {}

    return measure


def run(opts: LiveOptions) -> list[dict[str, Any]]:
    """One record: measured round trip vs reported, click by click, with misses and xruns."""
    probe = analysis.probe_signal(click_every=CLICK_EVERY, click=CLICK, noise=NOISE)
    loop_kwargs = {"amplitude": CLICK, "click_every": CLICK_EVERY, "signal": probe}
    live = run_live(opts, _measure_clicks(opts.seconds), gain=PROBE_GAIN, loop_kwargs=loop_kwargs)
    r = base_record("loopback", opts, live)
    res, expected = live.result, live.reported_samples
    heights = np.abs(res.recording[res.received]) if res.received.size else np.zeros(0)
    r.update(_window_counts(live, probe))
    clean = res.clean_delays
    values, counts = np.unique(clean, return_counts=True) if clean.size else (np.zeros(0), np.zeros(0))
    measured = int(values[np.argmax(counts)]) if values.size else None
    arrived_by = res.frames - expected - loop_period(live)  # clicks sent later cannot have arrived
    r.update(
        {
            "clicks_sent": int(np.sum(res.sent < arrived_by)),
            "clicks_received": int(res.delays.size),
            "clicks_clean": int(clean.size),
            "clicks_at_reported": int(np.sum(clean == expected)),
            "distinct_delays": sorted({int(d) for d in res.delays}),
            "measured_samples": measured,
            "measured_ms": None if measured is None else 1000.0 * measured / live.stats["io_rate"],
            "equal_to_sample": bool(clean.size > 0 and np.all(clean == expected)),
            "clicks_dry": int(np.sum(heights > CLICK * (1 + PROBE_GAIN) / 2)) if live.probed else None,
        }
    )
    if not live.probed and model_path(opts.model) is not None:
        r["status"] = "ok (raw model: clicks may not survive it)"
    return [r]


def hop_in_device_samples(stats: dict) -> int:
    return max(1, round(stats["hop"] * stats["io_rate"] / stats["model_rate"]))


def _window_counts(live: LiveRun, signal: np.ndarray) -> dict[str, Any]:
    """Hop-long windows of the recording: enhanced, or (partly) dry = a deadline miss, or off the delay."""
    keys = ("windows", "windows_enhanced", "windows_dry", "windows_off_delay", "windows_other")
    if not live.probed:
        return dict.fromkeys(keys)
    w = analysis.classify(
        live.result.recording, signal, delay=live.reported_samples, window=hop_in_device_samples(live.stats), gain=PROBE_GAIN
    )
    return dict(
        zip(
            keys,
            (
                int(w.start.size),
                w.count(analysis.ENHANCED),
                w.count(analysis.DRY) + w.count(analysis.PARTLY_DRY),
                w.count(analysis.OFF_DELAY),
                w.count(analysis.OTHER) + w.count(analysis.SILENT),
            ),
        )
    )


def loop_period(live: LiveRun) -> int:
    return int(live.stats.get("blocksize") or 256)


# fmt: off
COLUMNS = (
    Column("model", "model"), Column("probe", "probe"), Column("threads", "threads"), Column("hop", "hop"),
    Column("lookahead", "lookahead"), Column("channels", "ch"), Column("seconds", "seconds", "{:.1f}"),
    Column("reported_samples", "reported (samples)"), Column("measured_samples", "measured (samples)"),
    Column("clicks_at_reported", "clicks at reported"), Column("clicks_clean", "clean clicks"),
    Column("equal_to_sample", "equal to the sample"), Column("jack_xruns", "JACK xruns"),
    Column("portaudio_xruns", "PortAudio xruns"), Column("deadline_misses", "deadline misses (whole run)"),
    Column("windows_dry", "hops played dry (measured)"), Column("windows_off_delay", "hops off delay"),
    Column("p50_ms", "compute p50 ms", "{:.3f}"), Column("p99_ms", "compute p99 ms", "{:.3f}"),
    Column("budget_ms", "budget ms", "{:.2f}"),
)
# fmt: on


def tables(records: list[dict[str, Any]]) -> str:
    return render(records, COLUMNS, "Live loopback on JACK: measured round trip vs reported latency")
