"""``rt-bench latency``: per-hop time of the whole engine step against the hop budget.

Sections (``--sections``):

* ``engine``: every configuration (provider x threads x geometry x window x export variant):
  the live worker's step (ring read + Streamer + ring write) per hop after warm-up, its model
  part (``processor.run`` on the same windows, the same calls) and the rest, the engine's
  overhead. GPU providers add host-device copy and compute times.
* ``kernels``: numba vs numpy for each sample-moving kernel, per hop.
* ``torch``: torch eager vs onnxruntime for the same network (model-only time per hop), when
  torch and the model's family are available.

fp16 / int8 exports next to the model (``MODEL.fp16.onnx``, ``MODEL.int8.onnx``) are engine
configurations of their own (the ``variant`` column).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np

from rt_enhance.benchmarks import records as rec
from rt_enhance.benchmarks.engine_step import StepTimes, time_kernels, time_steps
from rt_enhance.benchmarks.models import Skip, TimedProcessor, describe, open_model, resolve_geometry, variants
from rt_enhance.benchmarks.table import TIMING_COLUMNS, Column, render
from rt_enhance.realtime import geometry as geo
from rt_enhance.realtime.metadata import ModelError
from rt_enhance.realtime.processor import Processor, WindowedProcessor

logger = logging.getLogger(__name__)

SECTIONS = ("engine", "kernels", "torch")


@runtime_checkable
class DeviceTimed(Protocol):
    """A processor that times its own host-device copies and compute per call, in ns (the GPU one, the torch twin)."""

    copy_ns: list[int]
    compute_ns: list[int]
    cuda_graph: bool


@dataclass(frozen=True)
class GeometrySpec:
    """A preset and/or explicit hop / lookahead / crossfade (strings as rt-enhance takes them)."""

    preset: str | None = None
    hop: str | None = None
    lookahead: str | None = None
    crossfade: str | None = None

    def resolve(self, processor: Processor) -> geo.Geometry:
        return resolve_geometry(processor, preset=self.preset, hop=self.hop, lookahead=self.lookahead, crossfade=self.crossfade)

    @property
    def label(self) -> str:
        parts = [self.preset or "model"] + [f"{k} {v}" for k, v in (("hop", self.hop), ("la", self.lookahead)) if v]
        return ", ".join(parts)


@dataclass(frozen=True)
class LatencyOptions:
    model: str
    providers: tuple[str, ...] = ("cpu",)
    threads: tuple[int, ...] = (1,)
    geometries: tuple[GeometrySpec, ...] = (GeometrySpec("low"),)
    windows: tuple[int | None, ...] = (None,)
    channels: int = 1
    hops: int = 2000
    warmup: int = 200
    sections: tuple[str, ...] = SECTIONS


@dataclass
class LatencyRun:
    records: list[dict[str, Any]]
    series: list[tuple[str, np.ndarray, float]]  # (label, step ms [hops], budget ms) for --plot


def run(opts: LatencyOptions, progress=None) -> LatencyRun:
    """Every requested section; one record per configuration."""
    out = LatencyRun([], [])
    first_geometry = None
    if "engine" in opts.sections:
        for record, times in _engine_configs(opts, progress):
            out.records.append(record)
            if times is not None:
                out.series.append((_label(record), times.step_ms, record["budget_ms"]))
                first_geometry = first_geometry or record["_geometry"]
    if "kernels" in opts.sections:
        g = first_geometry or opts.geometries[0].resolve(open_model(opts.model, threads=1, window=opts.windows[0]))
        out.records += kernel_records(g, channels=opts.channels, calls=opts.hops)
    if "torch" in opts.sections:
        out.records += torch_records(opts)
    for r in out.records:
        r.pop("_geometry", None)
    return out


def _label(r: dict[str, Any]) -> str:
    return f"{r['variant']} {r['provider']} {r['threads']}t hop {r['hop']} win {r['window']}"


def _engine_configs(opts: LatencyOptions, progress):
    for provider in opts.providers:
        for record, times in _provider_configs(opts, provider, progress):
            yield record, times
            if "provider not available" in record.get("status", ""):
                break  # one row says it; the other configurations of this provider would repeat it


def _provider_configs(opts: LatencyOptions, provider: str, progress):
    for tag, path in variants(opts.model).items():
        for threads in opts.threads:
            for spec in opts.geometries:
                for window in opts.windows:
                    config = dict(
                        model=describe(opts.model), variant=tag, provider=provider, threads=threads, geometry=spec.label, window=window
                    )
                    if progress:
                        progress(config)
                    yield _engine_config(path, spec, opts, config)


def _engine_config(path: str, spec: GeometrySpec, opts: LatencyOptions, config: dict) -> tuple[dict, StepTimes | None]:
    try:
        processor = open_model(path, threads=config["threads"], provider=config["provider"], window=config["window"])
        g = spec.resolve(processor)
    except (Skip, ModelError, geo.GeometryError) as exc:
        return rec.skipped("engine", str(exc), **config), None
    timed = TimedProcessor(processor)
    times = time_steps(timed, g, channels=opts.channels, hops=opts.hops, warmup=opts.warmup)
    return engine_record(config, g, times, processor, opts.channels), times


def engine_record(config: dict, g: geo.Geometry, times: StepTimes, processor: Processor, channels: int) -> dict[str, Any]:
    """The engine section's record: step, model-only and overhead figures for one configuration."""
    budget = g.ms(g.hop)
    overhead = times.overhead_ms
    r: dict[str, Any] = {
        "section": "engine",
        **config,
        "window": g.window,
        "hop": g.hop,
        "lookahead": g.lookahead,
        "crossfade": g.crossfade,
        "channels": channels,
        "hops": int(times.step_ns.size),
        "budget_ms": budget,
        "latency_ms": g.ms(g.latency),
    }
    r.update(rec.timing_stats(times.step_ms, budget))
    model = rec.timing_stats(times.model_ms, budget)
    r.update(
        {
            "model_p50_ms": model["p50_ms"],
            "model_p99_ms": model["p99_ms"],
            "model_mean_ms": model["mean_ms"],
            "overhead_p50_ms": float(np.percentile(overhead, 50)),
            "overhead_p99_ms": float(np.percentile(overhead, 99)),
            "overhead_mean_ms": float(overhead.mean()),
            "overhead_pct_budget": float(100.0 * overhead.mean() / budget),
            "overhead_p99_pct_budget": float(100.0 * np.percentile(overhead, 99) / budget),
        }
    )
    if isinstance(processor, DeviceTimed):
        n = times.step_ns.size
        r["copy_p50_ms"] = float(np.percentile(np.asarray(processor.copy_ns[-n:]) / 1e6, 50))
        r["compute_p50_ms"] = float(np.percentile(np.asarray(processor.compute_ns[-n:]) / 1e6, 50))
        r["cuda_graph"] = bool(processor.cuda_graph)
    if hasattr(processor, "labels"):  # a torch twin: say so in every record
        r.update(processor.labels())
    r["_geometry"] = g
    r["status"] = "ok"
    return r


def kernel_records(g: geo.Geometry, *, channels: int, calls: int) -> list[dict[str, Any]]:
    """numba vs numpy per kernel call at one hop; ``speedup`` is numpy p50 / numba p50."""
    times = time_kernels(g, channels=channels, calls=calls)
    budget = g.ms(g.hop)
    out: list[dict[str, Any]] = []
    for (kernel, impl), ms in times.items():
        r: dict[str, Any] = {
            "section": "kernels",
            "kernel": kernel,
            "impl": impl,
            "provider": "cpu",
            "threads": 1,
            "window": g.window,
            "hop": g.hop,
            "channels": channels,
            "budget_ms": budget,
            **rec.timing_stats(ms, budget),
            "status": "ok",
        }
        r["p50_us"], r["p99_us"] = 1000 * r["p50_ms"], 1000 * r["p99_ms"]
        out.append(r)
    p50 = {(r["kernel"], r["impl"]): r["p50_ms"] for r in out}
    for r in out:
        numba = r["impl"] == "numba"
        r["speedup_vs_numpy"] = p50[(r["kernel"], "numpy")] / max(r["p50_ms"], 1e-9) if numba else None
    return out


# ----------------------------------------------------------------------------- torch eager vs onnxruntime


def torch_records(opts: LatencyOptions) -> list[dict[str, Any]]:
    """Model-only time per hop, the same network in torch eager and in onnxruntime, per thread count."""
    out = []
    for threads in opts.threads:
        base = {"model": describe(opts.model), "provider": "cpu", "threads": threads}
        try:
            processor = open_model(opts.model, threads=threads)
            g = opts.geometries[0].resolve(processor)
            net = _torch_network(processor)
        except (Skip, ModelError, geo.GeometryError) as exc:
            out.append(rec.skipped("torch", str(exc), runtime="torch-eager", **base))
            continue
        if processor.info.kind != "windowed":
            out.append(
                rec.skipped("torch", "n/a: streaming models are compared through their engine step only", runtime="torch-eager", **base)
            )
            continue
        windows = np.random.default_rng(0).standard_normal((opts.channels, g.window)).astype(np.float32) * 0.1
        windowed = cast(WindowedProcessor, processor)  # checked: the kind is windowed
        ort_ms = _time_calls(functools.partial(windowed.run, windows), opts.hops, opts.warmup)
        torch_ms = _time_torch(net, windows, threads, opts.hops, opts.warmup)
        for runtime, ms in (("onnxruntime", ort_ms), ("torch-eager", torch_ms)):
            out.append(
                {
                    "section": "torch",
                    "runtime": runtime,
                    **base,
                    "window": g.window,
                    "hop": g.hop,
                    "channels": opts.channels,
                    "budget_ms": g.ms(g.hop),
                    **rec.timing_stats(ms, g.ms(g.hop)),
                    "status": "ok",
                }
            )
    return out


def _torch_network(processor: Processor):
    """The torch module the ONNX file was exported from (architecture from its metadata; timing only)."""
    extra = processor.info.extra
    if "family" not in extra or "model_args" not in extra:
        raise Skip("n/a: the model's metadata names no family/model_args to rebuild it in torch")
    try:
        import torch  # noqa: F401

        from rt_enhance.model.registry import build_model
    except ImportError as exc:
        raise Skip(f"n/a: torch or rt_enhance.model not installed ({exc.name})") from None
    try:
        return build_model(extra["family"], json.loads(extra["model_args"])).eval()
    except Exception as exc:  # an unknown family or arguments from another version
        raise Skip(f"n/a: cannot rebuild {extra['family']} in torch ({str(exc)[:120]})") from None


def _time_calls(fn, calls: int, warmup: int) -> np.ndarray:
    ms = np.zeros(calls)
    for i in range(warmup + calls):
        t0 = time.perf_counter_ns()
        fn()
        if i >= warmup:
            ms[i - warmup] = (time.perf_counter_ns() - t0) / 1e6
    return ms


def _time_torch(net, windows: np.ndarray, threads: int, calls: int, warmup: int) -> np.ndarray:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    x = torch.from_numpy(windows[:, None, :])
    try:
        with torch.inference_mode():
            return _time_calls(lambda: net(x).numpy(), calls, warmup)
    finally:
        torch.set_num_threads(previous)


# ----------------------------------------------------------------------------- tables


# fmt: off
ENGINE_COLUMNS = (
    Column("variant", "variant"), Column("provider", "provider"), Column("threads", "threads"),
    Column("window", "window"), Column("hop", "hop"), Column("lookahead", "lookahead"), Column("channels", "ch"),
    *TIMING_COLUMNS,
    Column("model_p50_ms", "model p50", "{:.3f}"), Column("model_p99_ms", "model p99", "{:.3f}"),
    Column("overhead_p50_ms", "overhead p50", "{:.3f}"), Column("overhead_p99_ms", "overhead p99", "{:.3f}"),
    Column("overhead_pct_budget", "overhead % budget", "{:.2f}"),
)
GPU_COLUMNS = (Column("provider", "provider"), Column("variant", "variant"), Column("copy_p50_ms", "copy p50 ms", "{:.3f}"),
               Column("compute_p50_ms", "compute p50 ms", "{:.3f}"), Column("cuda_graph", "CUDA graph"))
KERNEL_COLUMNS = (
    Column("kernel", "kernel"), Column("impl", "impl"), Column("channels", "ch"), Column("hop", "hop"),
    Column("p50_us", "p50 us", "{:.2f}"), Column("p99_us", "p99 us", "{:.2f}"),
    Column("speedup_vs_numpy", "numba speedup (p50)", "{:.1f}x"),
)
TORCH_COLUMNS = (
    Column("runtime", "runtime"), Column("threads", "threads"), Column("window", "window"), Column("channels", "ch"),
    Column("budget_ms", "budget ms", "{:.2f}"), Column("p50_ms", "p50", "{:.3f}"), Column("p99_ms", "p99", "{:.3f}"),
    Column("max_ms", "max", "{:.3f}"), Column("rtf", "RTF", "{:.3f}"),
)
# fmt: on


def tables(records: list[dict[str, Any]]) -> str:
    """The printed report: one Markdown table per section present."""
    parts = []
    engine = [r for r in records if r["section"] == "engine"]
    if engine:
        parts.append(render(engine, ENGINE_COLUMNS, "Engine step per hop (ms): ring read + Streamer.feed + ring write"))
        gpu = [r for r in engine if r["provider"] in ("cuda", "tensorrt") or str(r["provider"]).startswith("torch-")]
        if gpu:
            parts.append(render(gpu, GPU_COLUMNS, "GPU: host-device copies vs compute per hop"))
    kernels = [r for r in records if r["section"] == "kernels"]
    if kernels:
        parts.append(render(kernels, KERNEL_COLUMNS, "Kernels per hop: numba vs numpy"))
    torch_rows = [r for r in records if r["section"] == "torch"]
    if torch_rows:
        parts.append(render(torch_rows, TORCH_COLUMNS, "Model only per hop (ms): torch eager vs onnxruntime"))
    return "\n\n".join(parts)
