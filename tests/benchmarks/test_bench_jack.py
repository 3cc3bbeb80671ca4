"""rt-bench loopback and stress on a JACK server (dummy driver): shape and keys of a short run."""

from __future__ import annotations

import json

import pytest

from rt_enhance.benchmarks.cli import main

pytestmark = pytest.mark.jack


def test_loopback_record(jack_server, tmp_path, onnx_model, capsys):
    out = tmp_path / "loop.json"
    rc = main(["loopback", "--model", onnx_model(window=2048, gain=2.0), "--seconds", "2", "--json", str(out)])
    assert rc == 0 and "equal to the sample" in capsys.readouterr().out
    (r,) = json.loads(out.read_text())["records"]
    assert r["section"] == "loopback" and r["probe"] is True
    for key in (
        "reported_samples",
        "measured_samples",
        "clicks_received",
        "equal_to_sample",
        "jack_xruns",
        "portaudio_xruns",
        "deadline_misses",
        "windows_dry",
        "budget_ms",
        "p50_ms",
        "p99_ms",
        "p999_ms",
    ):
        assert key in r
    assert r["clicks_received"] >= 5  # the probe lets clicks through a model that scales them
    assert r["reported_samples"] == r["latency_samples"] + 256  # JACK -p 256: one period of device latency


def test_stress_record(jack_server, tmp_path, onnx_model, capsys):
    out = tmp_path / "stress.json"
    rc = main(["stress", "--model", onnx_model(window=2048), "--seconds", "3", "--load", "1", "--stall-ms", "200", "--json", str(out)])
    assert rc == 0 and "Hop-long windows around the stall" in capsys.readouterr().out
    (r,) = json.loads(out.read_text())["records"]
    assert r["load_processes"] == 1 and r["stall_end_frame"] > r["stall_start_frame"]
    for key in (
        "delay_back_after_samples",
        "delay_back_after_hops",
        "enhanced_back_after_hops",
        "delay_back_within_2_hops",
        "deadline_misses",
        "jack_xruns",
        "portaudio_xruns",
        "timeline",
    ):
        assert key in r
    assert r["timeline"] and {"when", "hops", "kind", "delay"} <= set(r["timeline"][0])
