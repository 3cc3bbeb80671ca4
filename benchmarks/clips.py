"""Seeded test clips: a voiced, speech-like signal in noise, so every tool gets the same input."""

from __future__ import annotations

import logging

import numpy as np
import soundfile as sf

logger = logging.getLogger(__name__)


def noisy_voice(seconds: float, rate: int = 48000, *, snr_db: float = 5.0, seed: int = 0) -> np.ndarray:
    """float32 ``[samples]``: a gliding harmonic voice with syllable-rate bursts, plus white noise.

    Peak at most 0.5; the noise sits ``snr_db`` below the voice's power. Not speech, but it has
    speech's structure (a pitch between 100 and 220 Hz, harmonics, 4 Hz syllables and pauses),
    so enhancers treat it as voice; timing is what it is for.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    f0 = 160.0 + 60.0 * np.sin(2 * np.pi * 0.3 * t) * np.sin(2 * np.pi * 0.07 * t + 1.0)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 30) if k * 220 < rate / 2)
    envelope = np.clip(np.sin(2 * np.pi * 4.0 * t + 2 * np.pi * rng.random()), 0, None) ** 2
    envelope *= np.sin(2 * np.pi * 0.25 * t) > -0.6  # pauses between phrases
    voice = voice * envelope
    noise = rng.standard_normal(n)
    noise *= np.sqrt(np.mean(voice**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    mix = voice + noise
    return (0.5 * mix / np.max(np.abs(mix))).astype(np.float32)


def write_clip(path: str, seconds: float, rate: int = 48000, channels: int = 1, seed: int = 0) -> str:
    """Write :func:`noisy_voice` (the same on every channel) as a float WAV; return the path."""
    x = noisy_voice(seconds, rate, seed=seed)
    sf.write(path, np.repeat(x[:, None], channels, axis=1), rate, subtype="FLOAT")
    return path
