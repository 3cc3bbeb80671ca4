"""The `monitor` preset with a stateful model on a JACK server with a small period (128 frames)."""

import itertools
import json
import os
import subprocess

import pytest
from helpers import ON_CI, start_cli, write_stateful_delay_model

pytestmark = pytest.mark.jack
_SERVERS = itertools.count()


@pytest.fixture
def small_period_server(monkeypatch):
    """A private dummy JACK server at -p 128; clients find it through JACK_DEFAULT_SERVER."""
    name = f"rtmon{os.getpid()}x{next(_SERVERS)}"  # a new name each time: no state of a stopped one is met
    try:
        server = subprocess.Popen(
            ["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "128"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        if ON_CI:
            pytest.fail("jackd missing on CI")
        pytest.skip("jackd not installed")
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
    ready = subprocess.run(["jack_wait", "-s", name, "-w", "-t", "10"], capture_output=True)
    assert ready.returncode == 0, "private jackd did not start"
    yield name
    server.terminate()
    server.wait(timeout=10)


def run_monitor(model: str, tmp_path):
    """rt-enhance --latency monitor on the JACK server with ``model``; the loopback result and the stats record."""
    from rt_enhance.benchmarks.jackloop import JackLoopback

    stats = tmp_path / "stats.json"
    proc = start_cli(
        "--in", "JACK", "--out", "JACK", "--model", model, "--latency", "monitor", "--duration", "5", "--stats-json", str(stats), "-q"
    )
    loop = JackLoopback(click_every=4800)  # ~25 clicks: enough clean ones even when a busy machine xruns
    try:
        loop.wait_for_target(process=proc)
        result = loop.measure(2.5)
    finally:
        loop.client.close()  # never leave a client of a server that the fixture stops next
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return result, json.loads(stats.read_text())


def assert_round_trip_to_the_sample(result, record) -> None:
    device = round((record["device_latency_in_ms"] + record["device_latency_out_ms"]) * 48)
    assert len(result.clean_delays) >= 8, (result.delays, result.xrun_frames)
    assert set(result.clean_delays.tolist()) == {record["latency_samples"] + device}, (result.delays, record)


def test_monitor_preset_with_a_stateful_model_round_trip_to_the_sample(small_period_server, tmp_path):
    model = write_stateful_delay_model(str(tmp_path / "delay.onnx"), delay=48, stride=16, hop=240)
    result, record = run_monitor(model, tmp_path)
    assert record["hop"] == 128 and record["lookahead"] == 48  # the preset's 2.5 ms hop, in steps of 16
    assert 1000 * (record["hop"] + record["lookahead"]) / 48000 <= 5.0  # the preset's algorithmic latency
    assert record["blocksize"] == 128 and record["latency_samples"] == 48 + 128 + 128 - 128
    assert_round_trip_to_the_sample(result, record)


def test_the_shipped_monitor_model_round_trip_to_the_sample(small_period_server, tmp_path):
    """The bundled `speech-monitor` at `--latency monitor` on a 128-frame JACK period. The model runs
    as its probe (the same graph and cost, its output replaced by the input delayed by the model's
    lookahead) so that the clicks survive the denoiser and can be timed."""
    from rt_enhance.benchmarks.probe import write_probe
    from rt_enhance.realtime.processor import bundled_model_path

    probe = write_probe(bundled_model_path("speech-monitor"), str(tmp_path / "probe.onnx"))
    result, record = run_monitor(probe, tmp_path)
    assert record["hop"] == 120 and record["lookahead"] == 120
    assert 1000 * (record["hop"] + record["lookahead"]) / 48000 <= 5.0
    assert record["latency_samples"] == 120 + 120 + 128 - 8
    assert_round_trip_to_the_sample(result, record)
