"""onnxruntime against torch: the float32 export must match to ``1e-4`` relative error.

Relative error is the largest absolute difference divided by the reference's peak, per test
input. Inputs are seeded: white noise, and "real-looking" audio (a harmonic voice-like tone with
a syllable envelope over pink noise, and a click train), with batches > 1 to prove the dynamic
batch axis.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from rt_enhance.export.errors import ExportError
from rt_enhance.export.to_onnx import INPUT_NAME
from rt_enhance.model.base import AudioModel
from rt_enhance.realtime.errors import first_line

logger = logging.getLogger(__name__)

FP32_TOLERANCE = 1e-4
ORT_ERRORS = (ort_state.Fail, ort_state.NotImplemented, ort_state.InvalidGraph, ort_state.InvalidArgument, ort_state.RuntimeException)


@dataclass(frozen=True)
class ErrorFigure:
    """Difference of one ONNX variant from the torch reference on one test input."""

    input: str
    max_abs: float
    relative: float


def parity_inputs(window: int, sample_rate: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Named float32 batches ``[batch, 1, window]`` to compare torch and onnxruntime on."""
    rng = np.random.default_rng(seed)
    t = np.arange(window) / sample_rate
    return {
        "white noise x3": (0.3 * rng.standard_normal((3, 1, window))).astype(np.float32),
        "voice + pink noise x2": np.stack([_voice(t, rng) + _pink(window, rng, 0.05) for _ in range(2)])[:, None],
        "clicks": _clicks(window, rng)[None, None],
    }


def _voice(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A voice-like tone: 8 harmonics of a gliding 110-220 Hz fundamental, 4 Hz syllable envelope."""
    f0 = rng.uniform(110, 220) * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f0) * (t[1] - t[0] if len(t) > 1 else 0.0)
    tone = sum(np.sin(k * phase) / k for k in range(1, 9))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t + rng.uniform(0, np.pi))
    return (0.3 * tone * envelope).astype(np.float32)


def _pink(n: int, rng: np.random.Generator, level: float) -> np.ndarray:
    """Pink (1/f) noise of RMS ``level``."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum, n)
    return (level * noise / (noise.std() + 1e-12)).astype(np.float32)


def _clicks(n: int, rng: np.random.Generator) -> np.ndarray:
    x = np.zeros(n, np.float32)
    x[rng.integers(0, n, size=max(1, n // 256))] = rng.choice([-0.9, 0.9], size=max(1, n // 256))
    return x


def torch_reference(model: AudioModel, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's eval-mode outputs ``[batch, 1, window]`` for each named input."""
    model.eval()
    with torch.no_grad():
        return {name: model(torch.from_numpy(x)).numpy() for name, x in inputs.items()}


def ort_outputs(path: str, inputs: dict[str, np.ndarray], threads: int = 1) -> dict[str, np.ndarray]:
    """onnxruntime (CPU) outputs of the model file at ``path`` for each named input."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return {name: session.run(None, {INPUT_NAME: x})[0] for name, x in inputs.items()}
    except ORT_ERRORS as exc:
        raise ExportError(f"onnxruntime cannot run {path}: {first_line(exc)}") from None


def compare(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> list[ErrorFigure]:
    """Max abs and relative (to the reference peak) error per input; shapes must match."""
    figures = []
    for name, ref in reference.items():
        out = outputs[name].astype(np.float64)
        if out.shape != ref.shape:
            raise ExportError(f"onnxruntime output for '{name}' has shape {out.shape}, torch {ref.shape}")
        max_abs = float(np.max(np.abs(out - ref)))
        figures.append(ErrorFigure(name, max_abs, max_abs / max(float(np.max(np.abs(ref))), 1e-12)))
    return figures


def check_fp32(figures: list[ErrorFigure], tolerance: float = FP32_TOLERANCE) -> None:
    """Raise :class:`ExportError` if any float32 figure is worse than ``tolerance`` relative error."""
    for figure in figures:
        if not np.isfinite(figure.relative) or figure.relative > tolerance:
            raise ExportError(
                f"float32 parity failed on '{figure.input}': relative error {figure.relative:.2e} "
                f"(max abs {figure.max_abs:.2e}) exceeds {tolerance:.0e}; the export does not match torch"
            )
