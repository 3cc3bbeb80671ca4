"""TensorBoard logging of a run (losses, metrics, audio examples, spectrogram images).

:func:`open_log` returns a :class:`TrainLog` writing to ``RUNS/NAME/tb`` when the ``tensorboard``
package is installed and logging is wanted, else a :class:`NullLog` that does nothing (the reason
is logged once). Only the main process logs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from rt_enhance.training.plots import spectrogram_figure

logger = logging.getLogger(__name__)


class NullLog:
    """Accepts every call and writes nothing."""

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        pass

    def audio(self, tag: str, signals: dict[str, np.ndarray], rate: int, step: int) -> None:
        pass

    def close(self) -> None:
        pass


class TrainLog(NullLog):
    """A TensorBoard ``SummaryWriter`` behind the three calls training makes."""

    def __init__(self, folder: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder))

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def audio(self, tag: str, signals: dict[str, np.ndarray], rate: int, step: int) -> None:
        """One example: each signal ``[samples]`` as audio, and their spectrograms as one image."""
        for name, x in signals.items():
            clipped = np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0)
            self.writer.add_audio(f"{tag}/{name}", clipped[None, :], step, sample_rate=rate)
        fig = spectrogram_figure(signals, rate)
        if fig is not None:
            self.writer.add_figure(f"{tag}/spectrograms", fig, step, close=False)

    def close(self) -> None:
        self.writer.close()


def open_log(folder: Path, *, enabled: bool) -> NullLog:
    """A TensorBoard log in ``folder``, or a :class:`NullLog` when disabled or tensorboard is missing."""
    if not enabled:
        return NullLog()
    try:
        return TrainLog(folder)
    except ImportError:
        logger.warning("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
        return NullLog()
