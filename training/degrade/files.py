"""Audio files under a folder (noise recordings or room responses), as the ``noise DIR`` and ``rir DIR`` steps
read them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rt_enhance.training.audiofiles import AudioInfo, audio_info, list_audio, read_segment
from rt_enhance.training.degrade.base import ParamError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioFolder:
    """Audio files (noise or impulse responses) under a folder, listed at parse time; headers read on first use."""

    folder: str
    paths: tuple[str, ...]
    _infos: dict[str, AudioInfo] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def scan(cls, folder: str) -> AudioFolder:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise ParamError(f"folder {folder!r} does not exist")
        files = tuple(str(p) for p in list_audio(path))
        if not files:
            raise ParamError(f"folder {folder!r} holds no audio files")
        return cls(folder, files)

    def info(self, index: int) -> AudioInfo:
        path = self.paths[index]
        if path not in self._infos:
            self._infos[path] = audio_info(path)
        return self._infos[path]

    def segment(self, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
        """A random file's random ``n``-sample stretch at ``rate``; a shorter file is looped from a random point."""
        info = self.info(int(rng.integers(len(self.paths))))
        frames = info.frames_at(rate)
        if frames >= n:
            return read_segment(info, int(rng.integers(frames - n + 1)), n, rate).astype(np.float64)
        whole = read_segment(info, 0, max(frames, 1), rate).astype(np.float64)
        return np.roll(np.resize(whole, n), -int(rng.integers(len(whole))))
