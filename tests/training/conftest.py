"""Fixtures for the training-loop tests: a tiny folder of synthetic WAVs (tones, chirps, noise bursts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

RATE = 16000


def write_tiny_corpus(root: Path, *, files: int = 5, seconds: float = 1.0, rate: int = RATE) -> Path:
    """``files`` mono 16-bit WAVs of harmonic tones with vibrato, chirps and noise bursts (seeded)."""
    rng = np.random.default_rng(1234)
    root.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    for i in range(files):
        f0 = 140.0 + 45.0 * i
        x = sum(0.25 / k * np.sin(2 * np.pi * k * f0 * (t + 0.02 * np.sin(2 * np.pi * 3 * t))) for k in range(1, 10))
        x = x + 0.2 * np.sin(2 * np.pi * (300 * t + 1500 * t**2))
        burst = np.zeros_like(t)
        start = int(rng.integers(0, len(t) - rate // 10))
        burst[start : start + rate // 10] = 0.1 * rng.standard_normal(rate // 10)
        x = 0.5 * (x + burst) * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t + i) ** 2)
        sf.write(root / f"clip{i}.wav", x.astype(np.float32), rate, subtype="PCM_16")
    return root


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five one-second 16 kHz clips (3 train, 1 val, 1 test with the default split)."""
    return write_tiny_corpus(tmp_path_factory.mktemp("corpus"))
