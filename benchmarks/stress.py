"""``rt-bench stress``: the live path with every core loaded, and a stall in the middle.

As ``rt-bench loopback`` (rt-enhance on JACK as a subprocess, the model as its cost-equal probe),
plus ``--load`` busy-loop processes (default: one per core; each ends by itself after the run
and is killed afterwards anyway) and one stall of the whole rt-enhance process: SIGSTOP, then
SIGCONT ``--stall-ms`` later (the JACK server and the loopback keep running). The loopback
injects low-level noise with clicks, so every hop-long window of the recording can be placed:
enhanced (the probe's gain) or dry (the engine's deadline fallback), and at which delay.

The loopback client and a private JACK server run at nice -10 (when permitted; see
:mod:`priority`): they stand in for the sound card, which a loaded CPU does not slow down.
rt-enhance and the busy loops run at the default priority. If the JACK server drops rt-enhance
(its client timeout is 500 ms) the record says so (``exit_code`` 3, ``status``).

The figure of merit: how long after the stall the output is back at the reported delay (and
back to enhanced), in hops. Note that the ``D`` samples played right after a whole-process stall
are the last ``D`` samples captured before it, so "back at the delay" cannot come sooner than
about ``D`` minus the callback block.
"""

from __future__ import annotations

import logging
import os
import signal as signals
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from rt_enhance.benchmarks import analysis, priority
from rt_enhance.benchmarks.jackloop import JackLoopback
from rt_enhance.benchmarks.loopback import (
    CLICK,
    CLICK_EVERY,
    NOISE,
    PROBE_GAIN,
    LiveOptions,
    LiveRun,
    LiveRunError,
    base_record,
    hop_in_device_samples,
    run_live,
)
from rt_enhance.benchmarks.table import Column, render

logger = logging.getLogger(__name__)

AT_DELAY = (analysis.ENHANCED, analysis.DRY, analysis.PARTLY_DRY)
STEADY_WINDOWS = 20  # a recovery counts once this many windows in a row are at the delay
TIMELINE_BEFORE, TIMELINE_AFTER = 4, 12


@dataclass(frozen=True)
class StressOptions:
    live: LiveOptions
    load: int | None = None
    stall_ms: float = 500.0
    stall_at: float | None = None


def busy_processes(count: int, seconds: float) -> list[subprocess.Popen]:
    """``count`` Python busy loops that stop by themselves after ``seconds``."""
    code = f"import time\nend = time.monotonic() + {seconds:.1f}\nwhile time.monotonic() < end:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code], preexec_fn=priority.default_priority) for _ in range(count)]


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _measure(opts: StressOptions):
    seconds = opts.live.seconds
    stall_at = opts.stall_at if opts.stall_at is not None else seconds / 2

    def measure(loop: JackLoopback, proc: subprocess.Popen):
        load = busy_processes(opts.load if opts.load is not None else os.cpu_count() or 1, seconds + 15)
        box: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: box.update(result=loop.measure(seconds)), daemon=True)
        try:
            thread.start()
            deadline = time.monotonic() + stall_at + 10
            while loop.frame < stall_at * loop.rate and time.monotonic() < deadline:
                time.sleep(0.001)
            f0 = loop.frame
            if opts.stall_ms > 0:
                os.kill(proc.pid, signals.SIGSTOP)
                try:
                    time.sleep(opts.stall_ms / 1000)
                finally:
                    os.kill(proc.pid, signals.SIGCONT)
            f1 = loop.frame
            thread.join(seconds + 30)
        finally:
            _stop(load)
        if "result" not in box:
            raise LiveRunError("the loopback measurement did not finish (is the JACK server still running?)")
        return box["result"], {"stall_start_frame": f0, "stall_end_frame": f1, "load_processes": len(load)}

    return measure


def run(opts: StressOptions) -> list[dict[str, Any]]:
    """One record: misses, xruns, and the recovery after the stall, with a per-hop timeline."""
    signal = analysis.probe_signal(click_every=CLICK_EVERY, click=CLICK, noise=NOISE)
    loop_kwargs = {"amplitude": CLICK, "click_every": CLICK_EVERY, "signal": signal}
    live = run_live(opts.live, _measure(opts), gain=PROBE_GAIN, loop_kwargs=loop_kwargs)
    r = base_record("stress", opts.live, live)
    r.update(live.extra)
    r["stall_ms"] = opts.stall_ms
    r["stall_measured_ms"] = 1000.0 * (live.extra["stall_end_frame"] - live.extra["stall_start_frame"]) / live.stats["io_rate"]
    r.update(recovery(live, signal, opts.stall_ms))
    return [r]


def recovery(live: LiveRun, signal: np.ndarray, stall_ms: float) -> dict[str, Any]:
    """Window counts over the run, and how many hops after the stall the delay and enhancement return."""
    hop = hop_in_device_samples(live.stats)
    delay = live.reported_samples
    rate = live.stats["io_rate"]
    max_delay = delay + int(rate * (stall_ms / 1000 + 0.5))
    gain = PROBE_GAIN if live.probed else 1.0  # without the probe (passthrough, --raw) dry and enhanced look alike
    w = analysis.classify(live.result.recording, signal, delay=delay, window=hop, gain=gain, max_delay=max_delay)
    f0, f1 = live.extra["stall_start_frame"], live.extra["stall_end_frame"]
    after = np.flatnonzero(w.start >= f1)
    at_delay = np.isin(w.kind, AT_DELAY)
    back = _first_steady(after, at_delay)
    enhanced = next((int(i) for i in after if w.kind[i] == analysis.ENHANCED), None)
    delay_back = None if back is None else _exact_start(live, signal, int(w.start[back]), f1, (gain, 1.0)) - f1
    enhanced_back = None if enhanced is None else _exact_start(live, signal, int(w.start[enhanced]), f1, (gain,)) - f1
    out: dict[str, Any] = {
        "windows": int(w.start.size),
        "windows_enhanced": w.count(analysis.ENHANCED),
        "windows_dry": w.count(analysis.DRY) + w.count(analysis.PARTLY_DRY),
        "windows_off_delay": w.count(analysis.OFF_DELAY),
        "windows_other": w.count(analysis.OTHER) + w.count(analysis.SILENT),
        "delay_back_after_samples": delay_back,
        "enhanced_back_after_samples": enhanced_back,
    }
    out["delay_back_after_hops"] = None if delay_back is None else delay_back / hop
    out["enhanced_back_after_hops"] = None if enhanced_back is None else enhanced_back / hop
    if not live.probed:
        out["windows_dry"] = out["enhanced_back_after_samples"] = out["enhanced_back_after_hops"] = None
    out["delay_back_within_2_hops"] = delay_back is not None and delay_back <= 2 * hop
    # After a whole-process stall the first D output samples are the D captured before it: D is the floor.
    out["floor_hops"] = live.stats["latency_samples"] / hop
    out["delay_back_over_floor_samples"] = None if delay_back is None else delay_back - live.stats["latency_samples"]
    out["timeline"] = _timeline(w, f0, f1, hop)
    return out


def _exact_start(live: LiveRun, signal: np.ndarray, start: int, floor: int, gains: tuple[float, ...]) -> int:
    """Walk back from ``start`` while each sample is still ``g * sent(t - delay)`` for one of ``gains``:
    the first sample of the steady stretch, to the sample (not before ``floor``)."""
    rec, delay = live.result.recording, live.reported_samples
    t = start
    while t - 1 >= max(floor, delay):
        x = float(signal[(t - 1 - delay) % signal.shape[0]])
        if not any(abs(float(rec[t - 1]) - g * x) < 1e-4 for g in gains):
            break
        t -= 1
    return t


def _first_steady(after: np.ndarray, good: np.ndarray) -> int | None:
    """The first window index in ``after`` from which STEADY_WINDOWS windows in a row are good."""
    for k, i in enumerate(after):
        run = after[k : k + STEADY_WINDOWS]
        if run.size and np.all(good[run]):
            return int(i)
    return None


def _timeline(w: analysis.Windows, f0: int, f1: int, hop: int) -> list[dict[str, Any]]:
    """Windows just before the stall and just after it: hops from its start / end, class, delay found."""
    at_start = int(np.searchsorted(w.start, f0))
    before = range(max(at_start - TIMELINE_BEFORE, 0), at_start)
    first_after = max(int(np.searchsorted(w.start, f1)) - 1, 0)
    after = range(first_after, min(first_after + TIMELINE_AFTER, w.start.size))
    rows = []
    for i, (when, ref) in [(i, ("before stall start", f0)) for i in before] + [(i, ("after stall end", f1)) for i in after]:
        rows.append(
            {
                "when": when,
                "hops": round(float((w.start[i] - ref) / hop), 2),
                "kind": str(w.kind[i]),
                "delay": int(w.delay[i]) if w.delay[i] >= 0 else None,
                "gain": round(float(w.gain[i]), 3),
            }
        )
    return rows


# fmt: off
COLUMNS = (
    Column("model", "model"), Column("threads", "threads"), Column("hop", "hop"), Column("channels", "ch"),
    Column("load_processes", "busy procs"), Column("seconds", "seconds", "{:.1f}"),
    Column("stall_measured_ms", "stall ms", "{:.0f}"), Column("reported_samples", "reported delay"),
    Column("delay_back_after_hops", "delay back after (hops)", "{:.2f}"),
    Column("enhanced_back_after_hops", "enhanced back after (hops)", "{:.2f}"),
    Column("floor_hops", "floor (hops)", "{:.2f}"), Column("delay_back_within_2_hops", "within 2 hops"),
    Column("windows_dry", "hops dry"), Column("windows_off_delay", "hops off delay"),
    Column("deadline_misses", "deadline misses (engine)"), Column("jack_xruns", "JACK xruns"),
    Column("portaudio_xruns", "PortAudio xruns"),
)
TIMELINE_COLUMNS = (Column("when", "window starts"), Column("hops", "hops", "{:+.2f}"), Column("kind", "window"),
                    Column("delay", "delay (samples)"), Column("gain", "gain", "{:.3f}"))
# fmt: on


def tables(records: list[dict[str, Any]]) -> str:
    parts = [render(records, COLUMNS, "Stress: every core loaded, one stall of the rt-enhance process")]
    for r in records:
        parts.append(
            render(
                r["timeline"],
                TIMELINE_COLUMNS,
                f"Hop-long windows around the stall (reported delay {r['reported_samples']} samples; "
                f"probe gain {PROBE_GAIN} = enhanced, 1 = dry)",
            )
        )
    return "\n\n".join(parts)
