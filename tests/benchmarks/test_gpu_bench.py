"""The GPU benchmark's CPU path: torch twins of the shipped model against onnxruntime, and scripts/gpu-bench.sh
writing rt-bench JSON and markdown with the CUDA rows recorded as not available (CI has no GPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rt_enhance.benchmarks.torch_twin import TwinProcessor, TwinUnavailable, open_twin
from rt_enhance.realtime.processor import bundled_model_path, open_onnx

ROOT = Path(__file__).resolve().parents[2]


def test_the_twin_of_the_shipped_speech_model_is_its_trained_network():
    path = bundled_model_path("speech")
    twin = open_twin(path, "torch-cpu")
    assert twin.weights == "trained (speech-erb.pt)"
    assert twin.max_abs_diff < 1e-5
    reference = open_onnx(path)
    x = (0.1 * np.random.default_rng(3).standard_normal((2, 4 * 240))).astype(np.float32)
    reference.reset(2)
    assert np.allclose(twin.step(x), reference.step(x), atol=1e-5)
    assert len(twin.compute_ns) == 1 and twin.labels()["cuda_graph"] is False


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answer on a machine without CUDA")
def test_without_cuda_the_cuda_twin_says_why():
    with pytest.raises(TwinUnavailable, match="torch-cuda provider not available: no CUDA device"):
        TwinProcessor(bundled_model_path("speech"), "torch-cuda")


def test_gpu_bench_script_writes_json_and_markdown(tmp_path):
    out = tmp_path / "bench"
    done = subprocess.run(
        [
            "bash",
            str(ROOT / "scripts" / "gpu-bench.sh"),
            str(out),
            "--models",
            "speech-monitor",
            "--providers",
            "torch-cuda,cpu,torch-cpu",
            "--latency",
            "monitor,low",
            "--channels",
            "1,2",
            "--seconds-per-config",
            "0.05",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads((out / "gpu-bench.json").read_text())
    assert doc["tool"] == "rt-bench" and doc["subcommand"] == "gpu"
    rows = doc["records"]
    measured = [r for r in rows if r["status"] == "ok"]
    assert {(r["provider"], r["channels"], r["hop"]) for r in measured} == {
        (p, c, h) for p in ("cpu", "torch-cpu") for c in (1, 2) for h in (120, 240)
    }  # low (5 ms) is 2 steps
    assert all(0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"] and r["hops"] >= 10 for r in measured)
    assert all(r["weights"] == "trained (speech-monitor-erb.pt)" for r in measured if r["provider"] == "torch-cpu")
    if not torch.cuda.is_available():
        cuda = [r for r in rows if r["provider"] == "torch-cuda"]
        assert len(cuda) == 2 and all("no CUDA device" in r["status"] for r in cuda)
    markdown = (out / "gpu-bench.md").read_text()
    assert "| speech-monitor | cpu" in markdown and "p99 % budget" in markdown


def test_gpu_bench_stops_starting_configurations_when_its_budget_is_spent(tmp_path):
    from rt_enhance.benchmarks import gpu_suite

    opts = gpu_suite.SuiteOptions(
        out=str(tmp_path),
        models=("speech-monitor",),
        providers=("cpu",),
        presets=("monitor",),
        channels=(1, 2),
        seconds_per_config=0.05,
        budget=1e-9,
    )
    rows = gpu_suite.run(opts)
    assert [r["status"] for r in rows] == ["skipped: the run's --budget of 1e-09 s was spent"] * 2


def test_gpu_bench_mistakes_are_one_line(capsys):
    from rt_enhance.benchmarks.cli import main

    assert main(["gpu", "--out", "x", "--providers", "cpu,warp"]) == 2
    assert capsys.readouterr().err.strip() == (
        "rt-bench: error: --providers: unknown warp; choose from cpu, cuda, "
        "tensorrt, torch-cuda, torch-cuda-eager, torch-cuda-unbound, torch-cpu"
    )
