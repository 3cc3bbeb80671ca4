"""rt-bench: every subcommand runs through ``main([...])`` with a few hops, prints a table and
writes JSON of the documented shape. Shape and keys only: speed is a figure, never asserted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rt_enhance.benchmarks.cli import main

REQUIRED = ("provider", "threads", "window", "hop", "budget_ms", "p50_ms", "p99_ms", "p999_ms", "max_ms", "rtf", "over_budget_pct")


def read(path) -> dict:
    doc = json.loads(path.read_text())
    assert doc["tool"] == "rt-bench" and doc["records"]
    assert {"cpu", "cores", "onnxruntime"} <= set(doc["machine"])
    return doc


def test_latency_sections_and_keys(tmp_path, onnx_model, capsys):
    model = onnx_model(window=2048, gain=0.5)
    out = tmp_path / "lat.json"
    rc = main(
        [
            "latency",
            "--model",
            model,
            "--provider",
            "cpu,cuda",
            "--threads",
            "1",
            "--hop",
            "240,480",
            "--lookahead",
            "240",
            "--crossfade",
            "120",
            "--hops",
            "6",
            "--warmup",
            "2",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| variant | provider |" in printed and "numba" in printed
    records = read(out)["records"]
    engine = [r for r in records if r["section"] == "engine" and r["provider"] == "cpu"]
    assert [r["hop"] for r in engine] == [240, 480]
    for r in engine:
        assert set(REQUIRED) <= set(r) and r["status"] == "ok"
        assert r["hops"] == 6 and r["budget_ms"] == pytest.approx(r["hop"] / 48.0)
        assert r["p50_ms"] <= r["p99_ms"] <= r["p999_ms"] <= r["max_ms"]
        assert r["model_p50_ms"] > 0 and {"overhead_p99_ms", "overhead_pct_budget"} <= set(r)
    cuda = [r for r in records if r["provider"] == "cuda"]
    assert cuda and all(r["status"] == "ok" or r["status"].startswith("skipped: ") for r in cuda)
    kernels = {(r["kernel"], r["impl"]) for r in records if r["section"] == "kernels"}
    assert kernels == {(k, i) for k in ("overlap_hops", "ring_write", "ring_read") for i in ("numba", "numpy")}
    torch_rows = [r for r in records if r["section"] == "torch"]
    assert torch_rows and all(set(REQUIRED) <= set(r) for r in torch_rows)  # a test model has no torch family: n/a


def test_latency_passthrough_window_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out, png = tmp_path / "lat.json", tmp_path / "lat.png"
    rc = main(
        [
            "latency",
            "--model",
            "passthrough",
            "--window",
            "1024,2048",
            "--sections",
            "engine",
            "--hops",
            "5",
            "--warmup",
            "1",
            "--json",
            str(out),
            "--plot",
            str(png),
        ]
    )
    assert rc == 0 and png.stat().st_size > 1000
    records = read(out)["records"]
    assert [r["window"] for r in records] == [1024, 2048]
    assert all(r["model_p50_ms"] == 0 for r in records)  # the identity runs no model: all overhead


def test_throughput_keys(tmp_path, onnx_model, capsys):
    out = tmp_path / "thr.json"
    rc = main(["throughput", "--model", onnx_model(window=2048), "--seconds", "1", "--threads", "1", "--batch", "8,1", "--json", str(out)])
    assert rc == 0 and "x real time" in capsys.readouterr().out
    records = read(out)["records"]
    assert [r["batch_hops"] for r in records] == [8, 1]
    for r in records:
        assert set(REQUIRED) <= set(r) and r["x_realtime"] > 0 and r["audio_s"] == pytest.approx(1.0)


def test_throughput_of_a_bundled_model_weighs_its_arithmetic_against_a_dense_product(tmp_path):
    out = tmp_path / "thr.json"
    assert main(["throughput", "--model", "speech", "--seconds", "1", "--threads", "1", "--json", str(out)]) == 0
    (r,) = read(out)["records"]
    from rt_enhance.benchmarks.models import model_path
    from rt_enhance.realtime.processor import open_processor

    macs = int(open_processor(str(model_path("speech"))).info.extra["macs_per_second"])
    assert r["gmac_per_s"] == pytest.approx(macs * r["audio_s"] / r["wall_s"] / 1e9, rel=1e-6)
    assert r["peak_gmac_per_s"] > 1 and r["share_of_peak"] == pytest.approx(r["gmac_per_s"] / r["peak_gmac_per_s"])
    assert r["peak_x_realtime"] == pytest.approx(r["x_realtime"] / r["share_of_peak"])


def test_peers_rows_run_or_say_why(tmp_path, onnx_model):
    out = tmp_path / "peers.json"
    assert main(["peers", "--model", onnx_model(window=2048), "--seconds", "1", "--repeat", "2", "--json", str(out)]) == 0
    records = read(out)["records"]
    assert [r["tool"] for r in records] == ["ours", "floor", "rnnoise", "deepfilternet3", "gtcrn", "dtln"]
    ours, floor = records[:2]
    assert ours["status"] == "ok" and ours["latency_ms"] == pytest.approx(1000 * (256 + 128) / 48000)
    assert floor["status"] == "ok" and "empty graph" in floor["name"] and floor["repeat"] == 2
    for r in records:
        assert r["status"] == "ok" or r["status"].startswith("skipped: ")
        if r["status"] == "ok":
            assert r["rtf"] > 0 and r["latency_ms"] is not None


def test_usage_errors_are_one_line(tmp_path, capsys):
    assert main(["latency", "--model", str(tmp_path / "missing.onnx"), "--hops", "2"]) == 2
    assert main(["latency", "--model", "passthrough", "--provider", "gpu"]) == 2
    assert main(["throughput", "--model", "passthrough", "--threads", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("rt-bench: error: ") for line in err)


def test_probe_costs_the_model_but_passes_the_input(tmp_path, onnx_model):
    from rt_enhance.benchmarks.probe import write_probe
    from rt_enhance.realtime.processor import OnnxProcessor

    probe = write_probe(onnx_model(window=1024, gain=3.0), str(tmp_path / "probe.onnx"), gain=0.75)
    p = OnnxProcessor(probe)
    x = np.random.default_rng(0).standard_normal((2, 1024)).astype(np.float32)
    np.testing.assert_array_equal(p.run(x), np.float32(0.75) * x)
    assert p.info.window == 1024  # the metadata travels with it


def test_window_classification_finds_delay_and_dry_hops():
    from rt_enhance.benchmarks import analysis

    sig = analysis.probe_signal(click_every=1000, click=0.8, noise=0.05, periods=20)
    delay, hop = 300, 100
    rec = np.zeros(12000, np.float32)
    rec[delay:] = 0.75 * analysis.sent(sig, 0, rec.size - delay)
    rec[3000:3200] /= 0.75  # two hops played dry at the same delay
    rec[6000:6100] = analysis.sent(sig, 6000 - 5000, 100)  # one hop of stale audio, 5000 late
    w = analysis.classify(rec, sig, delay=delay, window=hop, gain=0.75, max_delay=6000)
    kinds = dict(zip(w.start.tolist(), w.kind.tolist()))
    assert kinds[3000] == kinds[3100] == analysis.DRY
    assert kinds[6000] == analysis.OFF_DELAY and w.delay[w.start == 6000][0] == 5000
    assert w.count(analysis.ENHANCED) == w.start.size - 3


def test_timing_stats_and_table():
    from rt_enhance.benchmarks.records import timing_stats
    from rt_enhance.benchmarks.table import Column, render

    s = timing_stats(np.array([1.0, 2.0, 3.0, 10.0]), budget_ms=5.0)
    assert s["max_ms"] == 10.0 and s["over_budget_pct"] == 25.0 and s["rtf"] == pytest.approx(4.0 / 5.0)
    assert s["headroom_ms"] == pytest.approx(5.0 - s["p99_ms"])
    text = render([{"a": 1.23456, "status": "ok"}, {"a": None, "status": "skipped: x"}], [Column("a", "A", "{:.2f}")])
    assert text.splitlines()[2] == "| 1.23 | ok         |" and "skipped: x" in text


def write_stateful_model(path: str, *, lookahead: int = 48, gain: float = 2.0) -> str:
    """A streaming ONNX model as the engine expects one: ``gain`` x the input ``lookahead`` samples late,
    the delay line carried in one state tensor."""
    import onnx
    from onnx import TensorProto, helper

    from rt_enhance.realtime.metadata import ModelInfo, to_props

    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    inputs = [
        helper.make_tensor_value_info("audio", f, ["batch", 1, "n"]),
        helper.make_tensor_value_info("state_delay", f, ["batch", 1, lookahead]),
    ]
    outputs = [
        helper.make_tensor_value_info("enhanced", f, ["batch", 1, "n"]),
        helper.make_tensor_value_info("next_state_delay", f, ["batch", 1, lookahead]),
    ]
    inits = [helper.make_tensor(n, i64, [1], [v]) for n, v in (("zero", 0), ("cut", -lookahead), ("end", 2**62), ("axis", 2))]
    inits.append(helper.make_tensor("gain", f, [], [gain]))
    nodes = [
        helper.make_node("Concat", ["state_delay", "audio"], ["cat"], axis=2),
        helper.make_node("Slice", ["cat", "zero", "cut", "axis"], ["late"]),
        helper.make_node("Mul", ["late", "gain"], ["enhanced"]),
        helper.make_node("Slice", ["cat", "cut", "end", "axis"], ["next_state_delay"]),
    ]
    model = helper.make_model(helper.make_graph(nodes, "stateful", inputs, outputs, inits), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    extra = {
        "name": "delay",
        "total_stride": "16",
        "state_inputs": '["state_delay"]',
        "state_outputs": '["next_state_delay"]',
        "state_shapes": f"[[-1, 1, {lookahead}]]",
    }
    for key, value in to_props(ModelInfo(48000, 96, 96, lookahead, 0, kind="stateful", extra=extra)).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_latency_and_probe_of_a_streaming_model(tmp_path):
    from rt_enhance.benchmarks.models import resolve_geometry
    from rt_enhance.benchmarks.probe import write_probe
    from rt_enhance.realtime.processor import open_processor
    from rt_enhance.realtime.streamer import Streamer

    stream_model = write_stateful_model(str(tmp_path / "stream.onnx"))
    out = tmp_path / "lat.json"
    assert (
        main(
            [
                "latency",
                "--model",
                stream_model,
                "--latency",
                "low",
                "--hops",
                "5",
                "--warmup",
                "2",
                "--sections",
                "engine",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    (r,) = read(out)["records"]
    assert r["status"] == "ok" and set(REQUIRED) <= set(r) and r["model_p50_ms"] > 0 and r["hop"] == 240
    # The probe of a streaming model delays its input by the model's lookahead, so the engine's
    # aligned output is the input scaled, to the sample.
    probe = open_processor(write_probe(stream_model, str(tmp_path / "probe.onnx"), gain=0.75))
    streamer = Streamer(probe, resolve_geometry(probe, preset="low"), 1)
    x = np.random.default_rng(0).standard_normal((1, 4000)).astype(np.float32)
    y = np.concatenate([streamer.feed(x[:, i : i + 300]) for i in range(0, 4000, 300)] + [streamer.flush()], axis=1)
    np.testing.assert_allclose(y, 0.75 * x, atol=1e-6)


def test_an_inner_run_that_failed_fails_the_benchmark(capsys):
    """A stress or loopback record whose rt-enhance exited non-zero (3: the JACK server dropped
    it during the stall) makes rt-bench exit 1 with a line; a clean record exits 0."""
    from rt_enhance.benchmarks.cli import _inner_failures

    ok = {"section": "stress", "exit_code": 0, "stop_reason": "duration reached"}
    dropped = {"section": "stress", "exit_code": 3, "stop_reason": "audio stream ended (device lost or server stopped)"}
    assert _inner_failures("stress", [ok]) == 0 and capsys.readouterr().err == ""
    assert _inner_failures("stress", [ok, dropped]) == 1
    err = capsys.readouterr().err
    assert "stress failed: rt-enhance exited 3 (audio stream ended" in err and len(err.strip().splitlines()) == 1
    assert _inner_failures("latency", [{"section": "latency"}]) == 0  # records without an inner run
