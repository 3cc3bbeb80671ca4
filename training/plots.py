"""Spectrogram images (matplotlib, optional): the evaluation PNG and TensorBoard's image tab.

matplotlib is used through its object API (``Figure`` + the Agg canvas), so no global backend is
ever switched. Without matplotlib the functions return ``None`` / ``False`` and log why once.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

_warned = False


def _note_missing() -> None:
    global _warned
    if not _warned:
        logger.warning("matplotlib is not installed: spectrogram images skipped (pip install matplotlib)")
        _warned = True


def log_spectrogram(x: np.ndarray, frame: int = 1024) -> np.ndarray:
    """Power in dB ``[frame // 2 + 1, frames]`` of mono ``x`` ``[samples]`` (Hann, hop frame/4)."""
    x = np.asarray(x, dtype=np.float64)
    frame = min(frame, 1 << (max(len(x), 16).bit_length() - 1))
    padded = np.pad(x, (frame // 2, frame // 2))
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame)[:: frame // 4]
    spec = np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1)) ** 2
    return 10 * np.log10(spec.T + 1e-10)


def spectrogram_figure(signals: dict[str, np.ndarray], rate: int):
    """A matplotlib Figure with one spectrogram per signal (rows, shared colour scale), or None."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        _note_missing()
        return None
    specs = {name: log_spectrogram(x) for name, x in signals.items()}
    top = max(float(s.max()) for s in specs.values())
    fig = Figure(figsize=(10, 2.4 * len(specs)), layout="constrained")
    axes = fig.subplots(len(specs), 1, squeeze=False)[:, 0]
    for ax, (name, spec) in zip(axes, specs.items()):
        seconds = len(signals[name]) / rate
        image = ax.imshow(
            spec, origin="lower", aspect="auto", vmin=top - 90, vmax=top, cmap="magma", extent=(0.0, seconds, 0.0, rate / 2000.0)
        )
        ax.set_title(name)
        ax.set_ylabel("kHz")
    axes[-1].set_xlabel("seconds")
    fig.colorbar(image, ax=list(axes), label="dB")
    return fig


def save_spectrograms(signals: dict[str, np.ndarray], rate: int, path: Path) -> bool:
    """Write the spectrogram figure of ``signals`` to ``path`` (PNG); False when matplotlib is missing."""
    fig = spectrogram_figure(signals, rate)
    if fig is None:
        return False
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig).print_png(str(path))
    return True
