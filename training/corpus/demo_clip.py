"""Recipe for the bundled demo clip (realtime/assets/demo.wav): licence-clean, made here.

A sentence spoken by espeak-ng (Debian package ``espeak-ng``), placed in a simulated room, heard
through a band-limited microphone, with fan-like pink noise and mains hum at about 8 dB SNR.
``python -m rt_enhance.training.demo_clip OUT.wav`` rebuilds it (seeded, deterministic for a given
espeak-ng version). The clean reference is written next to it as ``*-clean.wav`` when asked.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import tempfile

import numpy as np
import soundfile as sf
import soxr
from scipy import signal

logger = logging.getLogger(__name__)

RATE = 48000
TEXT = (
    "This is the rt-enhance demo. A voice recorded in an echoing room, through a cheap microphone, "
    "next to a noisy fan. Listen to the hum and the hiss go away."
)


def speak(text: str, voice: str = "en-us", speed: int = 150) -> np.ndarray:
    """espeak-ng speech resampled to 48 kHz, float32 ``[samples]``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "speech.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", path, text], check=True)
        x, rate = sf.read(path, dtype="float32")
    return soxr.resample(x, rate, RATE).astype(np.float32)


def room(x: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """Exponentially decaying noise impulse response, direct path at lag 0 (stays aligned)."""
    n = int(rt60 * RATE)
    t = np.arange(n) / RATE
    rir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60) * 0.25
    rir[:96] = 0.0
    rir[0] = 1.0
    return signal.fftconvolve(x, rir)[: x.shape[0]].astype(np.float32)


def degrade(clean: np.ndarray, rng: np.random.Generator, snr_db: float = 8.0) -> np.ndarray:
    wet = room(clean, 0.5, rng)
    sos = signal.cheby1(8, 0.5, 4000, fs=RATE, output="sos")
    narrow = signal.sosfilt(sos, wet).astype(np.float32)
    pink = signal.lfilter(
        [0.049922, -0.095993, 0.050612, -0.004408], [1, -2.494956, 2.017265, -0.522189], rng.standard_normal(narrow.shape[0])
    )
    t = np.arange(narrow.shape[0]) / RATE
    hum = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in (1, 2, 3, 5))
    noise = pink / np.std(pink) + 0.5 * hum / np.std(hum)
    noise *= np.sqrt(np.mean(narrow**2) / np.mean(noise**2)) * 10 ** (-snr_db / 20)
    noisy = narrow + noise
    return (noisy * 0.7 / np.abs(noisy).max()).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="where to write the degraded clip (.wav)")
    parser.add_argument("--clean", action="store_true", help="also write the clean reference as *-clean.wav")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(20261124)
    clean = np.pad(speak(TEXT), (RATE // 4, RATE // 4))
    sf.write(args.out, degrade(clean, rng), RATE, subtype="PCM_16")
    if args.clean:
        sf.write(os.path.splitext(args.out)[0] + "-clean.wav", clean * 0.7 / np.abs(clean).max(), RATE, subtype="PCM_16")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
