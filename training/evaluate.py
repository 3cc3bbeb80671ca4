"""Evaluation on the test split: what the degraded input, an upsampling baseline and the model score.

Systems (rows of the table), each scored against the clean file with SNR, SI-SDR, LSD (2048-sample
frames), wideband PESQ and STOI (:func:`rt_enhance.training.metrics.evaluate`):

- ``degraded``: the model's input;
- ``spline`` / ``sinc``: cubic-spline and band-limited upsampling of the degraded signal from its
  band limit (only when the pipeline limits the band: ``sample`` or ``lowpass`` steps);
- ``model (offline)``: the generator on the whole file at once (exact chunking), the best it can do;
- ``model (engine)``: the model exported to ONNX and run by the real-time engine's ``Streamer`` in file
  mode (windows, hop, lookahead and crossfade of its metadata): what a listener gets live;
- ``model + collab (offline)``: collaborative sampling (:mod:`rt_enhance.training.collab`) through the
  same windowing, never exported.

Writes ``eval/<file>.<system>.wav``, ``metrics.md``, ``metrics.json`` and ``spectrogram.png`` (degraded /
enhanced / clean of the first file; skipped with a logged note without matplotlib).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from rt_enhance.export import EngineDefaults, ExportError, export_model
from rt_enhance.model import AudioModel
from rt_enhance.model.base import StreamingModel
from rt_enhance.realtime import geometry as geo
from rt_enhance.realtime import kinds
from rt_enhance.realtime.fileio import atomic_write_text
from rt_enhance.realtime.metadata import ModelInfo
from rt_enhance.realtime.processor import open_onnx
from rt_enhance.realtime.streamer import Streamer
from rt_enhance.training.audiofiles import load_audio
from rt_enhance.training.baselines import sinc_upsample, spline_upsample
from rt_enhance.training.degrade import Lowpass, Pipeline, Sample, fit_length, resample
from rt_enhance.training.metrics import evaluate as score_signal
from rt_enhance.training.models import lookahead_of
from rt_enhance.training.plots import save_spectrograms

logger = logging.getLogger(__name__)

BLOCK_HOPS = 64  # hops fed to the streamer per call, as file mode does
METRICS = (
    ("snr", "SNR (dB)", "{:.2f}"),
    ("si_sdr", "SI-SDR (dB)", "{:.2f}"),
    ("lsd", "LSD", "{:.3f}"),
    ("pesq", "PESQ", "{:.2f}"),
    ("stoi", "STOI", "{:.3f}"),
)
SLUGS = {
    "degraded": "degraded",
    "spline": "spline",
    "sinc": "sinc",
    "model (offline)": "enhanced",
    "model (engine)": "engine",
    "model + collab (offline)": "collab",
    "clean": "clean",
}


@dataclass(frozen=True)
class TestItem:
    """One test file: ``degraded`` and ``clean`` mono float32 ``[samples]`` at the model rate."""

    name: str
    degraded: np.ndarray
    clean: np.ndarray


@dataclass
class EvalResult:
    """Mean metrics per system, per-file metrics, and notes on anything skipped."""

    systems: dict[str, dict[str, float]]
    files: dict[str, dict[str, dict[str, float]]]
    seconds: float
    rate: int
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """JSON with ``null`` for metrics that could not be computed (NaN)."""
        return json.dumps(_finite(self.__dict__), indent=2, sort_keys=True) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------------


def make_items(
    sources: list[tuple[str, str, str | None]], pipeline: Pipeline, *, rate: int, seed: int, max_samples: int | None
) -> list[TestItem]:
    """Degrade each test file ``(name, clean path, degraded partner or None)`` with the pipeline (seeded by
    file), cropped to ``max_samples``."""
    items = []
    for index, (name, clean_path, degraded_path) in enumerate(sources):
        clean = load_audio(clean_path, rate)[:max_samples]
        degraded = clean.copy() if degraded_path is None else fit_length(load_audio(degraded_path, rate), len(clean))
        rng = np.random.default_rng([seed, 7, index])
        degraded, clean = pipeline.apply(degraded, clean, rate, rng)
        items.append(TestItem(name, degraded.astype(np.float32), clean.astype(np.float32)))
    return items


def band_limit(pipeline: Pipeline, rate: int) -> int | None:
    """The lowest rate the pipeline band-limits to (``sample LOW``; ``lowpass HZ`` -> 2 HZ), if below ``rate``."""
    lows = [s.low for s in pipeline.steps if isinstance(s, Sample)]
    lows += [int(round(2 * s.hz)) for s in pipeline.steps if isinstance(s, Lowpass)]
    low = min(lows, default=None)
    return low if low is not None and low < rate else None


def baselines(degraded: np.ndarray, rate: int, low_rate: int) -> dict[str, np.ndarray]:
    """Spline and sinc upsampling of ``degraded`` ``[n]`` from ``low_rate`` back to ``rate``."""
    low = resample(degraded.astype(np.float64), rate, low_rate)
    n = len(degraded)
    return {"spline": fit_length(spline_upsample(low, low_rate, rate), n), "sinc": fit_length(sinc_upsample(low, low_rate, rate), n)}


# ---------------------------------------------------------------------------------------------------------------
# The model, offline and through the engine
# ---------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def enhance_offline(model: AudioModel, x: np.ndarray, *, device: torch.device | str = "cpu", chunk: int = 1 << 16) -> np.ndarray:
    """The model on a whole signal ``[n]`` -> ``[n]`` float32, aligned with the input.

    Windowed models: chunks with a margin of one receptive field on each side (multiples of the total
    stride), so the result equals one pass over the whole zero-padded signal without its memory.
    Streaming models (``step`` with state): chunk after chunk, state carried, which equals their
    ``forward`` over the whole signal; their lookahead ``L`` is undone (``L`` extra zeros, output
    shifted back by ``L``).
    """
    model.eval()
    if isinstance(model, StreamingModel):
        return _enhance_streaming(model, x, device=device, chunk=chunk)
    lag = lookahead_of(model)
    margin = model.valid_length(model.receptive_field)
    chunk = model.valid_length(chunk)
    n = len(x) + lag
    total = -(-n // chunk) * chunk
    padded = np.zeros(margin + total + margin, np.float32)
    padded[margin : margin + len(x)] = x
    out = np.empty(total, np.float32)
    for start in range(0, total, chunk):
        segment = torch.from_numpy(padded[start : start + chunk + 2 * margin]).to(device)[None, None]
        out[start : start + chunk] = model(segment)[0, 0, margin : margin + chunk].float().cpu().numpy()
    return out[lag : lag + len(x)]


def _enhance_streaming(model: StreamingModel, x: np.ndarray, *, device: torch.device | str, chunk: int) -> np.ndarray:
    lag, chunk = lookahead_of(model), model.valid_length(chunk)
    n = model.valid_length(len(x) + lag)
    padded = torch.zeros(1, 1, n, device=device)
    padded[0, 0, : len(x)] = torch.from_numpy(np.asarray(x, np.float32)).to(device)
    states, parts = model.initial_state(1, device=device), []
    for start in range(0, n, chunk):
        y, states = model.step(padded[..., start : start + chunk], states)
        parts.append(y)
    return torch.cat(parts, dim=-1)[0, 0, lag : lag + len(x)].float().cpu().numpy()


def engine_geometry(info: ModelInfo) -> geo.Geometry:
    """The geometry rt-enhance derives from a model's metadata (no preset, no flags)."""
    return kinds.resolve_geometry(info)


def stream_file(processor: Any, geometry: geo.Geometry, x: np.ndarray) -> np.ndarray:
    """File mode: feed ``x`` ``[n]`` in blocks of 64 hops, then flush; the aligned output ``[n]``."""
    streamer = Streamer(processor, geometry, 1)
    block = BLOCK_HOPS * geometry.hop
    parts = [streamer.feed(x[None, i : i + block]) for i in range(0, len(x), block)]
    parts.append(streamer.flush())
    y = np.concatenate(parts, axis=1)[0]
    if len(y) != len(x):
        raise RuntimeError(f"the streamer returned {len(y)} samples for {len(x)}")
    return y


def export_for_engine(model: AudioModel, meta: dict[str, Any], folder: Path) -> Any:
    """Export ``model`` with ``meta``'s geometry to ``folder/model.onnx`` and open it as the engine would."""
    geometry = EngineDefaults(
        sample_rate=meta["sample_rate"], window=meta["window"], hop=meta["hop"], lookahead=meta["lookahead"], crossfade=meta["crossfade"]
    )
    path, task = folder / "model.onnx", meta.get("task", "denoise")
    if isinstance(model, StreamingModel):  # one stateful ONNX step, as rt-export writes it
        from rt_enhance.export.streaming import export_streaming

        export_streaming(model.cpu().eval(), path, hop=meta["hop"], task=task, meta=meta)
    else:
        export_model(model.cpu().eval(), path, geometry, task=task, meta=meta)
    return open_onnx(str(path))


# ---------------------------------------------------------------------------------------------------------------
# The evaluation
# ---------------------------------------------------------------------------------------------------------------

Refiner = Callable[[ModelInfo], Any]  # info -> a processor (run(windows [n, W]) -> [n, W])


def evaluate_model(
    model: AudioModel,
    items: list[TestItem],
    meta: dict[str, Any],
    out_dir: Path,
    *,
    pipeline: Pipeline,
    speech: bool = True,
    engine: bool = True,
    refiner: Refiner | None = None,
    device: torch.device | str = "cpu",
) -> EvalResult:
    """Score every system on every item of ``model`` (its checkpoint ``meta``), write the enhanced files and reports
    into ``out_dir``."""
    rate = meta["sample_rate"]
    result = EvalResult({}, {}, sum(len(i.clean) for i in items) / rate, rate)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rt-train-eval-") as tmp:
        runners = _runners(model, meta, Path(tmp), engine, refiner, device, result.notes)
        low_rate = band_limit(pipeline, rate)
        for index, item in enumerate(items):
            signals = _signals(item, runners, rate, low_rate)
            result.files[item.name] = {name: score_signal(item.clean, sig, rate, speech=speech) for name, sig in signals.items()}
            _write_wavs(out_dir, item, signals, rate)
            if index == 0:
                _spectrogram(out_dir, item, signals, rate, result.notes)
    result.systems = _means(result.files)
    write_reports(result, out_dir)
    return result


def _runners(
    model: AudioModel, meta: dict[str, Any], tmp: Path, engine: bool, refiner: Refiner | None, device: torch.device | str, notes: list[str]
) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    runners: dict[str, Callable[[np.ndarray], np.ndarray]] = {"model (offline)": lambda x: enhance_offline(model, x, device=device)}
    info = None
    if engine:
        try:
            processor = export_for_engine(model, meta, tmp)
            info = processor.info
            runners["model (engine)"] = lambda x: stream_file(processor, engine_geometry(processor.info), x)
        except ExportError as exc:
            notes.append(f"model (engine) skipped: {exc}")
            logger.warning("engine evaluation skipped: %s", exc)
        finally:
            model.to(device)
    if refiner is not None:
        info = info or _windowed_info(meta)
        collab = refiner(info)
        runners["model + collab (offline)"] = lambda x: stream_file(collab, engine_geometry(info), x)
    return runners


def _windowed_info(meta: dict[str, Any]) -> ModelInfo:
    return ModelInfo(
        sample_rate=meta["sample_rate"], window=meta["window"], hop=meta["hop"], lookahead=meta["lookahead"], crossfade=meta["crossfade"]
    )


def _signals(item: TestItem, runners: dict[str, Callable], rate: int, low_rate: int | None) -> dict[str, np.ndarray]:
    signals = {"degraded": item.degraded}
    if low_rate is not None:
        signals.update(baselines(item.degraded, rate, low_rate))
    for name, run in runners.items():
        signals[name] = run(item.degraded)
    return signals


def _means(files: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    systems: dict[str, dict[str, list[float]]] = {}
    for per_system in files.values():
        for system, metrics in per_system.items():
            for key, value in metrics.items():
                systems.setdefault(system, {}).setdefault(key, []).append(value)
    return {s: {k: _nanmean(v) for k, v in m.items()} for s, m in systems.items()}


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def _write_wavs(out_dir: Path, item: TestItem, signals: dict[str, np.ndarray], rate: int) -> None:
    stem = Path(item.name).with_suffix("").as_posix().replace("/", "_")
    for name, signal in {**signals, "clean": item.clean}.items():
        sf.write(out_dir / f"{stem}.{SLUGS[name]}.wav", np.asarray(signal, np.float32), rate, subtype="FLOAT")


def _spectrogram(out_dir: Path, item: TestItem, signals: dict[str, np.ndarray], rate: int, notes: list[str]) -> None:
    enhanced = "model (engine)" if "model (engine)" in signals else "model (offline)"
    shown = {"degraded": item.degraded, f"enhanced, {enhanced}": signals[enhanced], "clean": item.clean}
    if not save_spectrograms(shown, rate, out_dir / "spectrogram.png"):
        notes.append("spectrogram.png skipped: matplotlib is not installed")


# ---------------------------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------------------------


def markdown_table(result: EvalResult) -> str:
    """The mean metrics per system as a Markdown table (``-`` for a metric not computed)."""
    header = "| system | " + " | ".join(h for _, h, _ in METRICS) + " |"
    lines = [header, "|" + "---|" * (len(METRICS) + 1)]
    for system, metrics in result.systems.items():
        cells = [_cell(metrics.get(key), fmt) for key, _, fmt in METRICS]
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def write_reports(result: EvalResult, out_dir: Path) -> None:
    """``metrics.md`` (the table, test length, notes) and ``metrics.json`` (everything)."""
    text = [f"Test split: {len(result.files)} file(s), {result.seconds:.1f} s at {result.rate} Hz", "", markdown_table(result), ""]
    text += [f"- {note}" for note in result.notes]
    atomic_write_text(out_dir / "metrics.md", "\n".join(text).rstrip() + "\n")
    atomic_write_text(out_dir / "metrics.json", result.to_json())
