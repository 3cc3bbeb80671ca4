"""Audio files for training and corpus building, without torch: headers, lazy mono reads at any rate, listing.

:mod:`rt_enhance.training.datasets` builds torch datasets on these; the degradation steps and ``rt-data``
use them directly, so neither imports torch (``rt-data --help`` answers at once).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from rt_enhance.realtime.errors import RtEnhanceError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".au", ".opus")


class DatasetError(RtEnhanceError, ValueError):
    """A dataset root, layout, split or argument is unusable; the message names it."""


# ---------------------------------------------------------------------------------------------------------------
# Audio files: headers and lazy reads
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioInfo:
    """Header of one audio file: ``frames`` per channel at its native ``rate``."""

    path: str
    frames: int
    rate: int
    channels: int

    def frames_at(self, rate: int) -> int:
        """Length of the file once resampled to ``rate``."""
        return self.frames if rate == self.rate else int(self.frames * rate // self.rate)


def audio_info(path: str | Path) -> AudioInfo:
    """Read one file's header (no samples). DatasetError names an unreadable file."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as err:
        raise DatasetError(f"cannot read audio header of {path}: {err}") from err
    return AudioInfo(str(path), int(info.frames), int(info.samplerate), int(info.channels))


def list_audio(folder: str | Path) -> list[Path]:
    """All audio files under ``folder`` (recursive, following symlinked folders, sorted, by extension; hidden
    files skipped)."""
    found = (
        Path(top) / name
        for top, _, names in os.walk(folder, followlinks=True)
        for name in names
        if Path(name).suffix.lower() in AUDIO_EXTENSIONS and not name.startswith(".")
    )
    return sorted(p for p in found if p.is_file())


def _read_raw(info: AudioInfo, start: int, frames: int) -> np.ndarray:
    """Native-rate mono samples ``[frames]`` float32 from ``start``; zeros outside the file."""
    out = np.zeros(frames, dtype=np.float32)
    lo, hi = max(start, 0), min(start + frames, info.frames)
    if hi > lo:
        data = sf.read(info.path, start=lo, stop=hi, dtype="float32", always_2d=True)[0]
        out[lo - start : lo - start + data.shape[0]] = data.mean(axis=1)
    return out


def read_segment(info: AudioInfo, start: int, frames: int, rate: int) -> np.ndarray:
    """Read ``frames`` mono samples at ``rate`` starting at ``start`` (both counted at ``rate``).

    Returns float32 ``[frames]``; zeros before the file start and after its end. Only the needed part of the
    file is read (plus a small margin for the resampling filter), then resampled with soxr.
    """
    if info.rate == rate:
        return _read_raw(info, start, frames)
    # Start the read on a sample that falls on the output grid (a multiple of info.rate / gcd), so the chunk
    # resamples onto exactly the samples a whole-file resampling would give.
    grid = info.rate // math.gcd(info.rate, rate)
    ratio = info.rate / rate
    first = (int(math.floor(start * ratio)) - int(math.ceil(256 * max(1.0, ratio)))) // grid * grid
    offset = start - first * rate // info.rate
    raw = _read_raw(info, first, int(math.ceil((offset + frames) * ratio)) + 256 * int(math.ceil(ratio)))
    resampled = soxr.resample(raw, info.rate, rate)
    out = np.zeros(frames, dtype=np.float32)
    part = resampled[offset : offset + frames]
    out[: part.shape[0]] = part
    return out


def load_audio(path: str | Path, rate: int) -> np.ndarray:
    """A whole file as mono float32 ``[samples]`` at ``rate`` (for evaluation on full files)."""
    info = audio_info(path)
    data = _read_raw(info, 0, info.frames)
    return data if info.rate == rate else soxr.resample(data, info.rate, rate).astype(np.float32)
