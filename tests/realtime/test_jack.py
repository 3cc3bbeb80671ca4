"""Real device tests on a JACK server with the dummy driver (paced in real time, no sound card).

A second JACK client stands in for a loopback cable: it injects clicks into rt-enhance's inputs
and records its outputs in JACK frame time, so delays are measured to the sample.
"""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from helpers import start_cli

pytestmark = pytest.mark.jack


def finish(proc: subprocess.Popen, timeout: float = 30) -> str:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return err


@pytest.mark.parametrize(
    "flags",
    [
        ["--model", "passthrough"],
        ["--model", "passthrough", "--latency", "low"],
        ["--model", "passthrough", "--hop", "256", "--lookahead", "64", "--crossfade", "32"],
        ["--model", "ONNX", "--latency", "low"],
    ],
    ids=["default", "low", "hop-equals-period", "onnx-identity"],
)
def test_loopback_delay_equals_reported_latency(jack_server, tmp_path, onnx_model, flags):
    from rt_enhance.benchmarks.jackloop import JackLoopback

    flags = [onnx_model(window=2048) if f == "ONNX" else f for f in flags]
    stats = tmp_path / "stats.json"
    proc = start_cli("--in", "JACK", "--out", "JACK", "--duration", "5", "--stats-json", str(stats), "-q", *flags)
    loop = JackLoopback()
    loop.wait_for_target()
    result = loop.measure(2.5)
    finish(proc)
    record = json.loads(stats.read_text())
    device = round((record["device_latency_in_ms"] + record["device_latency_out_ms"]) * record["io_rate"] / 1000)
    expected = record["latency_samples"] + device
    # A cycle in which JACK reported an xrun (this machine is shared) may shift a click by a
    # period; every click that crossed no xrun arrives exactly at the reported latency.
    assert len(result.clean_delays) >= 8, (result.delays, result.xrun_frames)
    assert set(result.clean_delays.tolist()) == {expected}, (result.delays, result.xrun_frames, record)
    # Deadline misses are a speed figure (rt-bench), not asserted here: the dry fallback plays
    # at the same delay, which is what this test proves.


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_recording_survives_a_stop_signal_with_all_audio(jack_server, tmp_path, sig):
    from rt_enhance.benchmarks.jackloop import JackLoopback

    take, stats = tmp_path / "take.wav", tmp_path / "stats.json"
    proc = start_cli("--in", "JACK", "--out", str(take), "--model", "passthrough", "--stats-json", str(stats), "-q")
    loop = JackLoopback(click_every=4800)
    loop.wait_for_target()
    with loop.client:
        loop._wire()
        loop._running = True
        loop._rec = np.zeros(48000 * 10, np.float32)
        time.sleep(2.0)
        proc.send_signal(sig)
        finish(proc)
    record = json.loads(stats.read_text())
    data, rate = sf.read(str(take), dtype="float32", always_2d=True)
    assert rate == 48000 and data.shape[1] == 2
    assert record["stop_reason"] == f"signal {signal.Signals(sig).name}"
    assert data.shape[0] == round(record["duration_s"] * rate)  # every captured sample is in the file
    clicks = np.flatnonzero(np.abs(data[:, 0]) > 0.25)
    assert len(clicks) >= 10
    gaps = np.diff(clicks)
    # Nothing lost or repeated between the clicks, except a whole JACK period per reported xrun
    # (a cycle the server dropped on this shared machine is audio loss that is reported, not hidden).
    xruns = sum(record["xruns"].values()) + len(loop.xrun_frames)
    odd = gaps[gaps != 4800]
    assert len(odd) <= xruns and np.all((4800 - odd) % 256 == 0), (gaps, xruns)
    assert data.shape[0] - clicks[-1] <= 4800 + 256  # the audio runs up to the stop


def test_busy_cores_keep_the_delay_constant_and_the_output_continuous(jack_server, tmp_path, onnx_model):
    """Two processes load both cores for the whole run: misses may happen (counted), but every click
    still arrives exactly at the reported delay and none is lost or doubled."""
    from rt_enhance.benchmarks.jackloop import JackLoopback

    stats = tmp_path / "stats.json"
    busy = [
        subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 12\nwhile time.time() < end: pass"]) for _ in range(2)
    ]
    try:
        proc = start_cli(
            "--in",
            "JACK",
            "--out",
            "JACK",
            "--duration",
            "6",
            "--stats-json",
            str(stats),
            "-q",
            "--model",
            onnx_model(window=2048),
            "--latency",
            "low",
        )
        loop = JackLoopback(click_every=4800)
        loop.wait_for_target()
        result = loop.measure(3.0)
        finish(proc)
    finally:
        for p in busy:
            p.kill()
    record = json.loads(stats.read_text())
    expected = record["latency_samples"] + round(record["device_latency_out_ms"] * 48)
    assert len(result.clean_delays) >= 20
    assert set(result.clean_delays.tolist()) == {expected}
    # Every click arrives, but for one lost per cycle that JACK or PortAudio reported as an xrun.
    lost = len(result.sent) - np.sum(result.sent > result.frames - expected) - len(result.received)
    assert 0 <= lost <= len(result.xrun_frames) + sum(record["xruns"].values()), (lost, result.xrun_frames, record["xruns"])
    assert "deadline_misses" in record  # counted (may be zero on a fast machine)


def test_a_model_slower_than_its_budget_plays_dry_at_the_same_delay(jack_server, tmp_path):
    """A model that needs ~4x its hop budget per call: the engine does not stall or drift; the hops
    it cannot enhance in time play dry (counted), the user is told once, and every click still
    arrives exactly at the reported delay."""
    from helpers import write_slow_onnx_model

    from rt_enhance.benchmarks.jackloop import JackLoopback

    model = write_slow_onnx_model(str(tmp_path / "slow.onnx"), window=1024, repeats=200, hop=256)
    stats = tmp_path / "stats.json"
    proc = start_cli("--in", "JACK", "--out", "JACK", "--duration", "5", "--stats-json", str(stats), "-q", "--model", model)
    loop = JackLoopback(click_every=4800)
    loop.wait_for_target()
    result = loop.measure(2.5)
    err = finish(proc)
    record = json.loads(stats.read_text())
    expected = record["latency_samples"] + round(record["device_latency_out_ms"] * 48)
    assert len(result.clean_delays) >= 15
    assert set(result.clean_delays.tolist()) == {expected}
    lost = len(result.sent) - np.sum(result.sent > result.frames - expected) - len(result.received)
    assert 0 <= lost <= len(result.xrun_frames) + sum(record["xruns"].values())
    hops = record["duration_s"] * 48000 / 256
    assert record["dry_hops"] + record["missed_samples"] / 256 > 0.3 * hops, record  # most hops played dry
    assert err.count("cannot keep up") == 1, err
    assert record["stop_reason"] == "duration reached"
