"""Before/after pictures: the input's and the output's spectrograms, one above the other.

Both panels share one colour scale (dBFS, the top 90 dB of the louder file) and the same axes, so
what the model removed shows as the difference. Files are read frame by frame, never whole, so an
hour-long recording costs no more memory than a short one. matplotlib is optional
(``pip install "rt-enhance[plot]"``); the engine never needs it.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import soundfile as sf

from rt_enhance.realtime.errors import RtEnhanceError

logger = logging.getLogger(__name__)

N_FFT = 1024
MAX_FRAMES = 4000  # columns of the picture; longer files take frames further apart
RANGE_DB = 90.0


class PictureError(RtEnhanceError):
    """The picture cannot be made; the message is one line for the user."""


def check_available() -> None:
    """Raise PictureError naming the extra to install when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PictureError('--spectrogram needs matplotlib: pip install "rt-enhance[plot]" (or pip install matplotlib)') from None


def spectrogram_db(
    path: str, n_fft: int = N_FFT, max_frames: int = MAX_FRAMES, seconds: float | None = None
) -> tuple[np.ndarray, float, int]:
    """Power spectrogram of a file's channel mean (its first ``seconds`` if given):
    (``[n_fft // 2 + 1, frames]`` dBFS float32, seconds shown, rate).

    A full-scale sine reads about 0 dBFS. Frames are ``n_fft`` long, Hann-windowed, and spaced
    ``max(n_fft // 4, samples // max_frames)`` apart.
    """
    window = np.hanning(n_fft).astype(np.float32)
    scale = 2.0 / window.sum()
    with sf.SoundFile(path) as f:
        frames = f.frames if seconds is None else min(f.frames, round(seconds * f.samplerate))
        hop = max(n_fft // 4, frames // max_frames)
        starts = range(0, max(frames - n_fft, 0) + 1, hop)
        columns = np.empty((n_fft // 2 + 1, len(starts)), np.float32)
        for i, start in enumerate(starts):
            f.seek(start)
            x = f.read(n_fft, dtype="float32", always_2d=True, fill_value=0.0).mean(axis=1)
            columns[:, i] = np.abs(np.fft.rfft(x * window)) * scale
        shown, rate = frames / f.samplerate, f.samplerate
    return 20.0 * np.log10(np.maximum(columns, 1e-10)), shown, rate


def write_before_after(png: str, before: str, after: str, *, title: str = "", before_seconds: float | None = None) -> None:
    """Write ``png``: ``before``'s spectrogram (its first ``before_seconds`` if given, as the
    enhanced part) above ``after``'s, one colour scale, labelled axes."""
    check_available()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("before", before, *spectrogram_db(before, seconds=before_seconds)), ("after", after, *spectrogram_db(after))]
    top = max(float(p[2].max()) for p in panels)
    fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True, sharey=True, constrained_layout=True)
    for ax, (label, path, db, seconds, rate) in zip(axes, panels):
        image = ax.imshow(
            db,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=top - RANGE_DB,
            vmax=top,
            extent=(0.0, seconds, 0.0, rate / 2000.0),
            interpolation="nearest",
        )
        ax.set_title(f"{label}: {os.path.basename(path)}", fontsize=9, loc="left")
        ax.set_ylabel("frequency (kHz)")
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(image, ax=axes, label="level (dBFS)")
    if title:
        fig.suptitle(title)
    try:
        fig.savefig(png, dpi=100)
    except OSError as exc:
        raise PictureError(f"cannot write the picture {png}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    logger.info("wrote %s", png)
