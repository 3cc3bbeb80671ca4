"""``rt-bench gpu``: every shipped model and an untrained ``base`` through the GPU path and the CPU, in one run.

For each model, each channel count (``--channels``, default 1, 2, 8: the engine batches channels into
one call) and each provider, the ``rt-bench latency`` engine step (ring read, Streamer, model, ring
write) at the ``monitor``, ``low`` and ``balanced`` presets (2, 5, 10 ms hops; a streaming model's
hop is rounded to its step, as rt-enhance does): p50/p99/max per hop against the hop budget.

Providers, default all: ``cpu`` (onnxruntime, one thread: what rt-enhance runs), and the torch twin
(benchmarks/torch_twin.py; a stand-in for onnxruntime's CUDA provider, which cannot travel to the
lent GPU) as ``torch-cuda`` (I/O binding + CUDA graphs), ``torch-cuda-eager`` (I/O binding, no
graph), ``torch-cuda-unbound`` (neither). Without CUDA those rows say so and the CPU rows stand; with
onnxruntime-gpu installed, add ``cuda`` to ``--providers`` for the real execution provider.

Each configuration runs for about ``--seconds-per-config`` (its hop count from a short probe, at
least 10 hops), and the whole run stops starting new configurations after ``--budget`` seconds
(the rest are recorded as skipped), so it fits the time a lent GPU gives. ``init:SIZE`` models are
exported untrained into a temporary folder first (``rt-export --init SIZE``).

Writes ``OUT/gpu-bench.json`` (rt-bench JSON: one record per configuration) and ``OUT/gpu-bench.md``.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rt_enhance.benchmarks import latency
from rt_enhance.benchmarks import records as rec
from rt_enhance.benchmarks.table import Column, render
from rt_enhance.realtime.errors import RtEnhanceError

logger = logging.getLogger(__name__)

MODELS = ("speech", "speech-monitor", "music", "init:base")
PROVIDERS = ("torch-cuda", "torch-cuda-eager", "torch-cuda-unbound", "cpu")
PRESETS = ("monitor", "low", "balanced")
CHANNELS = (1, 2, 8)
MIN_HOPS = 10


class SuiteError(RtEnhanceError, ValueError):
    """A model that cannot be prepared; one line for the user."""


@dataclass(frozen=True)
class SuiteOptions:
    out: str
    models: tuple[str, ...] = MODELS
    providers: tuple[str, ...] = PROVIDERS
    presets: tuple[str, ...] = PRESETS
    channels: tuple[int, ...] = CHANNELS
    seconds_per_config: float = 1.0
    max_hops: int = 2000
    budget: float = 150.0


def prepare(model: str, folder: str) -> str:
    """``init:SIZE`` -> an untrained export of SIZE in ``folder``; anything else as rt-bench takes it."""
    if not model.startswith("init:"):
        return model
    from rt_enhance.export.cli import main as export

    size = model.split(":", 1)[1]
    path = os.path.join(folder, f"{size}.onnx")
    if export(["--init", size, "--out", path]) != 0:
        raise SuiteError(f"rt-export --init {size} failed; see its message above")
    return path


def hops_for(opts: SuiteOptions, model: str, provider: str, channels: int) -> tuple[int, dict | None]:
    """Hops that take about ``seconds_per_config`` (from a probe of 5 hops), or the probe's skipped record."""
    probe = latency.LatencyOptions(
        model=model,
        providers=(provider,),
        geometries=(latency.GeometrySpec(opts.presets[0]),),
        channels=channels,
        hops=5,
        warmup=2,
        sections=("engine",),
    )
    first = latency.run(probe).records[0]
    if first["status"] != "ok":
        return 0, first
    wanted = int(opts.seconds_per_config * 1000.0 / max(first["mean_ms"], 1e-3))
    return int(np.clip(wanted, MIN_HOPS, opts.max_hops)), None


def measure(opts: SuiteOptions, model: str, provider: str, channels: int) -> list[dict[str, Any]]:
    """Every preset of one (model, provider, channels): records as ``rt-bench latency`` writes them."""
    hops, skipped = hops_for(opts, model, provider, channels)
    if skipped is not None:
        return [skipped]
    specs = tuple(latency.GeometrySpec(p) for p in opts.presets)
    run = latency.LatencyOptions(
        model=model, providers=(provider,), geometries=specs, channels=channels, hops=hops, warmup=max(2, hops // 10), sections=("engine",)
    )
    return latency.run(run).records


def run(opts: SuiteOptions, progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """All configurations within the budget; each record names its model (``model_spec``)."""
    deadline = time.perf_counter() + opts.budget
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rt-bench-gpu-") as folder:
        for spec in opts.models:
            path = prepare(spec, folder) if time.perf_counter() < deadline else spec
            for channels in opts.channels:
                for provider in opts.providers:
                    config = dict(model_spec=spec, provider=provider, channels=channels)
                    if time.perf_counter() >= deadline:
                        records.append(rec.skipped("engine", f"the run's --budget of {opts.budget:g} s was spent", **config))
                        continue
                    if progress:
                        progress(f"{spec}, {provider}, {channels} channel(s)")
                    records += [{**r, **config} for r in measure(opts, path, provider, channels)]
    return records


# ----------------------------------------------------------------------------- tables


# fmt: off
SUMMARY_COLUMNS = (
    Column("model_spec", "model"), Column("provider", "provider"), Column("channels", "ch"),
    Column("geometry", "preset"), Column("hop", "hop"), Column("budget_ms", "budget ms", "{:.2f}"), Column("p50_ms", "p50", "{:.3f}"),
    Column("p99_ms", "p99", "{:.3f}"), Column("max_ms", "max", "{:.3f}"), Column("p99_pct", "p99 % budget", "{:.1f}"),
    Column("copy_p50_ms", "copy p50", "{:.3f}"), Column("compute_p50_ms", "compute p50", "{:.3f}"),
    Column("hops", "hops"),
)
# fmt: on


def tables(records: list[dict[str, Any]]) -> str:
    """The summary table (every configuration) and how to read it."""
    for r in records:
        r["p99_pct"] = None if r.get("p99_ms") is None else 100.0 * r["p99_ms"] / r["budget_ms"]
    weights = sorted({f"{r['model_spec']}: {r['weights']}" for r in records if r.get("weights")})
    notes = [
        "`cpu` is onnxruntime on one thread. `torch-*` rows are the torch twin of the same network (a stand-in "
        "for onnxruntime's CUDA provider): `torch-cuda` with I/O binding and CUDA graphs, `-eager` without "
        "graphs, `-unbound` with neither. Times are the whole engine step per hop; copy and compute are the "
        "twin's host-device copies and its model call.",
        "Twin weights: " + ("; ".join(weights) or "none ran"),
    ]
    return render(records, SUMMARY_COLUMNS, "Per-hop engine step against the hop budget (ms)") + "\n\n" + "\n".join(notes)


def machine_extra() -> dict[str, Any]:
    """The GPU and torch build the twins ran on."""
    try:
        import torch
    except ImportError:
        return {"gpu": None}
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"gpu": gpu, "cuda": torch.version.cuda, "torch": torch.__version__}
