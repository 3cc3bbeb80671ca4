"""``rt-bench throughput``: file mode, times real time, per thread count and batch size.

The path is ``rt-enhance``'s own file mode (:func:`rt_enhance.realtime.offline.enhance_file`):
the file is read in blocks of ``offline.BLOCK_HOPS`` hops and the Streamer hands all their
windows to the model in one call. ``--batch B`` caps a model call at B hops (the processor's
``max_batch``), so ``--batch 1`` is the same work one hop per call, as the live path runs it.
A streaming (stateful) model takes every complete hop of a block in one call (about
``kinds.STATEFUL_BLOCK_SECONDS``, on a session bound to that shape): ``--batch`` does not apply
to it and its row gives the hops of that block.

Each row also says how much arithmetic that speed is: the model's multiply-adds per second of audio (its
``macs_per_second`` metadata) times the channels and the speed, against what onnxruntime reaches on a dense
768 x 768 matrix product on the same threads in the same run (:func:`matmul_peak`). A model can go no
faster in file mode than that peak allows, whatever the engine does.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from rt_enhance.benchmarks import records as rec
from rt_enhance.benchmarks.clips import write_clip
from rt_enhance.benchmarks.models import describe, model_path, resolve_geometry
from rt_enhance.benchmarks.table import Column, render
from rt_enhance.realtime import kinds, offline
from rt_enhance.realtime.audio_io import FileSink, FileSource
from rt_enhance.realtime.processor import OnnxProcessor, PassthroughProcessor, Processor, open_processor
from rt_enhance.realtime.streamer import Streamer

logger = logging.getLogger(__name__)

BLOCK_ALL = offline.BLOCK_HOPS  # hops per model call when the whole file-mode block goes in one call


@dataclass(frozen=True)
class ThroughputOptions:
    model: str
    threads: tuple[int, ...] = (1, 2)
    batches: tuple[int, ...] = (64, 1)
    seconds: float = 30.0
    input: str | None = None
    channels: int = 1
    preset: str | None = None
    hop: str | None = None
    lookahead: str | None = None
    crossfade: str | None = None


def _processor(model: str, threads: int, max_batch: int, rate: int) -> Processor:
    path = model_path(model)
    if path is None:
        return PassthroughProcessor.at_rate(rate)
    processor = open_processor(path, threads=threads)
    if isinstance(processor, OnnxProcessor):
        processor.max_batch = max_batch
    return processor


MATMUL_N = 768  # the dense product whose speed stands for the machine's peak


def matmul_peak(threads: int, n: int = MATMUL_N, repeat: int = 7) -> float:
    """GMAC/s of onnxruntime's fastest of ``repeat`` ``[n, n] x [n, n]`` float32 products on ``threads`` threads."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    shape = [n, n]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "peak",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, onnx.IR_VERSION, 9)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {name: rng.standard_normal(shape).astype(np.float32) for name in ("a", "b")}
    session.run(None, feed)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        session.run(None, feed)
        best = min(best, time.perf_counter() - start)
    return n**3 / best / 1e9


def one_run(opts: ThroughputOptions, processor: Processor, clip: str, out_dir: str, threads: int, batch: int) -> dict[str, Any]:
    """Enhance ``clip`` once through file mode with ``processor``; the record of that run."""
    source = FileSource(clip)
    g = resolve_geometry(processor, preset=opts.preset, hop=opts.hop, lookahead=opts.lookahead, crossfade=opts.crossfade)
    streamer = Streamer(processor, g, source.channels)
    sink = FileSink(os.path.join(out_dir, f"out-{threads}-{batch}.wav"), rate=source.rate, channels=source.channels, subtype="FLOAT")
    cpu0 = time.process_time()
    try:
        result = offline.enhance_file(source, [sink], streamer)
    finally:
        sink.close()
    cpu = time.process_time() - cpu0
    budget = g.ms(g.hop)
    per_hop = streamer.timer.per_hop_ms()
    r = {
        "section": "throughput",
        "model": describe(opts.model),
        "provider": "cpu",
        "threads": threads,
        "batch_hops": offline.block_hops(g, processor) if kinds.kind_of(g).streaming else batch,
        "window": g.window,
        "hop": g.hop,
        "lookahead": g.lookahead,
        "channels": source.channels,
        "audio_s": source.duration,
        "wall_s": result.seconds,
        "cpu_s": cpu,
        "cpu_per_wall": cpu / max(result.seconds, 1e-9),
        "x_realtime": source.duration / max(result.seconds, 1e-9),
        "budget_ms": budget,
    }
    r.update(rec.timing_stats(per_hop, budget))
    r["rtf"] = result.seconds / source.duration  # the whole run: wall per second of audio
    info = getattr(processor, "info", None)
    macs = int(info.extra.get("macs_per_second", 0)) if info is not None else 0
    if macs:  # the arithmetic this speed is; run() sets it beside the dense product's on the same threads
        r["gmac_per_s"] = macs * source.channels * source.duration / max(result.seconds, 1e-9) / 1e9
    r["status"] = "ok"
    return r


def run(opts: ThroughputOptions) -> list[dict[str, Any]]:
    """One record per (threads, batch): x real time, CPU use, per-hop times of the batches."""
    with tempfile.TemporaryDirectory(prefix="rt-bench-") as tmp:
        clip = opts.input or write_clip(os.path.join(tmp, "clip.wav"), opts.seconds, _model_rate(opts.model), opts.channels)
        source = FileSource(clip)
        warm = write_clip(os.path.join(tmp, "warm.wav"), 1.0, source.rate, source.channels)
        records = []
        # A streaming model takes every complete hop of a block in one step: batch does not apply.
        batches = (BLOCK_ALL,) if _model_kind(opts.model).streaming else opts.batches
        for threads in opts.threads:
            for batch in batches:
                processor = _processor(opts.model, threads, batch * source.channels, source.rate)
                one_run(opts, processor, warm, tmp, threads, batch)  # first-call costs out of the figure
                records.append(one_run(opts, processor, clip, tmp, threads, batch))
                if "gmac_per_s" in records[-1]:
                    record = records[-1]
                    record["peak_gmac_per_s"] = peak = matmul_peak(threads)
                    record["share_of_peak"] = record["gmac_per_s"] / peak
                    record["peak_x_realtime"] = record["x_realtime"] / record["share_of_peak"]
                logger.info("threads %d batch %d: %.1fx real time", threads, batch, records[-1]["x_realtime"])
    return records


def _model_rate(model: str) -> int:
    path = model_path(model)
    return 48000 if path is None else open_processor(path).info.sample_rate


def _model_kind(model: str) -> kinds.Kind:
    path = model_path(model)
    return kinds.KINDS["windowed"] if path is None else kinds.kind_of(open_processor(path).info)


# fmt: off
COLUMNS = (
    Column("model", "model"), Column("threads", "threads"), Column("batch_hops", "hops per call"),
    Column("window", "window"), Column("hop", "hop"), Column("channels", "ch"),
    Column("audio_s", "audio s", "{:.1f}"), Column("wall_s", "wall s", "{:.2f}"),
    Column("x_realtime", "x real time", "{:.1f}"), Column("cpu_per_wall", "CPU/wall", "{:.2f}"),
    Column("p50_ms", "per hop p50 ms", "{:.3f}"), Column("p99_ms", "per hop p99 ms", "{:.3f}"),
    Column("gmac_per_s", "model GMAC/s", "{:.2f}"), Column("peak_gmac_per_s", "dense MatMul GMAC/s", "{:.1f}"),
    Column("share_of_peak", "share of MatMul", "{:.0%}"), Column("peak_x_realtime", "x real time at MatMul speed", "{:.0f}"),
)
# fmt: on


def tables(records: list[dict[str, Any]]) -> str:
    return render(records, COLUMNS, "File mode throughput (rt-enhance's enhance_file)")
