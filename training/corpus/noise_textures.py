"""Synthetic noise textures that ``training/degrade/noisegen.py`` lacks: keyboard, fan, rain, traffic, wind,
buzz, crackle, and babble built from real TTS talkers.

Every generator has noise.py's signature ``gen(n, rate, rng) -> np.ndarray``: float64 ``[n]``, unit RMS. The
colours (white, pink, brown), hum, clicks and the synthetic babble come from ``training/degrade/noisegen.py`` and
are listed in :data:`KINDS` next to these, so the corpus draws from one table.

These are textures, not recordings: each is a few filters and envelopes chosen to put energy where the real
sound has it (a fan's blade-pass tone and broadband whoosh, rain's dense droplet transients over hiss, traffic's
low rumble with passing swells) so a denoiser meets stationary, tonal, impulsive and slowly modulated noise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
from scipy import signal

from rt_enhance.training.degrade import noisegen

logger = logging.getLogger(__name__)

Generator = Callable[[int, int, np.random.Generator], np.ndarray]


def _sos(kind: str, hz: float | list[float], rate: int, order: int = 4) -> np.ndarray:
    """A Butterworth SOS with corner(s) clipped below Nyquist."""
    nyq = rate / 2
    corners = np.clip(np.atleast_1d(hz), 1.0, 0.95 * nyq)
    return signal.butter(order, corners if len(corners) > 1 else corners[0], btype=kind, fs=rate, output="sos")


def _slow(n: int, rate: int, rng: np.random.Generator, max_hz: float) -> np.ndarray:
    """Smooth random signal ``[n]`` with energy below ``max_hz``, zero mean, unit std."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum[np.fft.rfftfreq(n, 1.0 / rate) > max_hz] = 0.0
    slow = np.fft.irfft(spectrum, n)
    spread = float(np.std(slow))
    return slow / spread if spread > 1e-12 else np.zeros(n)


def _burst(length: int, tau: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise ``[length]`` under an exponential decay of ``tau`` samples."""
    return rng.standard_normal(length) * np.exp(-np.arange(length) / max(tau, 1.0))


def _place(out: np.ndarray, at: int, event: np.ndarray) -> None:
    """Add ``event`` into ``out`` at ``at`` (cut at the end)."""
    if 0 <= at < len(out):
        stop = min(len(out), at + len(event))
        out[at:stop] += event[: stop - at]


def _keystroke(rate: int, rng: np.random.Generator, centre: float) -> np.ndarray:
    """One key: a sharp resonant click (press), a softer one 40-120 ms later (release), a low thump."""
    length = int(0.18 * rate)
    out = np.zeros(length)
    click = signal.sosfilt(
        _sos("bandpass", [centre / 1.6, centre * 1.6], rate, 2), _burst(int(0.012 * rate), rng.uniform(0.0008, 0.002) * rate, rng)
    )
    thump = signal.sosfilt(_sos("lowpass", 300.0, rate, 2), _burst(int(0.03 * rate), 0.006 * rate, rng))
    _place(out, 0, click + 0.5 * thump[: len(click)])
    _place(out, int(rng.uniform(0.04, 0.12) * rate), rng.uniform(0.2, 0.6) * click)
    return out


def keyboard(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Typing ``[n]``: bursts of 3-15 keystrokes at 4-10 keys/s separated by pauses, each key its own timbre
    (resonance 1.5-5 kHz) and level; unit RMS."""
    out, t = np.zeros(n), int(rng.uniform(0, 0.3) * rate)
    while t < n:
        speed = rng.uniform(4, 10)
        for _ in range(int(rng.integers(3, 16))):
            key = _keystroke(rate, rng, rng.uniform(1500, 5000))
            _place(out, t, rng.uniform(0.3, 1.0) * key)
            t += int(rng.exponential(1 / speed) * rate) + int(0.03 * rate)
        t += int(rng.uniform(0.3, 2.0) * rate)
    return noisegen.unit_rms(out + 1e-6 * rng.standard_normal(n))


def fan(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A fan ``[n]``: broadband pink whoosh shaped by a low-pass at 1-6 kHz, a blade-pass tone (40-300 Hz) with
    harmonics, a little motor hum, all under a slow 0.05-0.5 Hz wobble of +-5-15 %; unit RMS."""
    t = np.arange(n) / rate
    whoosh = signal.sosfilt(_sos("lowpass", rng.uniform(1000, 6000), rate, 2), noisegen.pink(n, rate, rng))
    blade = rng.uniform(40, 300) * (1 + 0.01 * _slow(n, rate, rng, 0.2))
    phase = 2 * np.pi * np.cumsum(blade) / rate
    tones = sum(rng.uniform(0.05, 0.3) / k * np.sin(k * phase + rng.uniform(0, 2 * np.pi)) for k in range(1, 5))
    motor = 0.05 * np.sin(2 * np.pi * rng.choice([100.0, 120.0]) * t)
    wobble = 1 + rng.uniform(0.05, 0.15) * _slow(n, rate, rng, rng.uniform(0.05, 0.5))
    return noisegen.unit_rms((noisegen.unit_rms(whoosh) + tones + motor) * wobble)


def rain(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Rain ``[n]``: 200-3000 droplets per second (short high-passed decaying bursts with random sizes) over a
    high-passed hiss, intensity drifting slowly; unit RMS."""
    count = int(rng.uniform(200, 3000) * n / rate)
    train = np.zeros(n)
    train[rng.integers(0, n, count)] = rng.lognormal(0, 0.8, count) * rng.choice([-1.0, 1.0], count)
    drop = _burst(int(0.004 * rate), rng.uniform(0.0003, 0.001) * rate, rng)
    drops = signal.sosfilt(_sos("highpass", rng.uniform(800, 3000), rate, 2), signal.fftconvolve(train, drop)[:n])
    hiss = signal.sosfilt(_sos("highpass", 500.0, rate, 2), noisegen.white(n, rate, rng))
    drift = np.exp(0.3 * _slow(n, rate, rng, 0.1))
    return noisegen.unit_rms((noisegen.unit_rms(drops) + rng.uniform(0.2, 0.8) * hiss) * drift)


def traffic(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Distant traffic ``[n]``: a brown rumble low-passed at 150-600 Hz plus passing vehicles (2-8 s swells of
    low-passed noise and a gliding engine tone 30-120 Hz); unit RMS."""
    rumble = signal.sosfilt(_sos("lowpass", rng.uniform(150, 600), rate, 2), noisegen.brown(n, rate, rng))
    out = noisegen.unit_rms(rumble)
    t = np.arange(n) / rate
    for _ in range(max(1, int(rng.poisson(n / rate / 4)))):
        centre, width = rng.uniform(0, n / rate), rng.uniform(1.0, 4.0)
        envelope = np.exp(-0.5 * ((t - centre) / (width / 2)) ** 2)
        engine = rng.uniform(30, 120) * (1 - 0.05 * np.tanh((t - centre) / width))
        tone = np.sin(2 * np.pi * np.cumsum(engine) / rate)
        swish = signal.sosfilt(_sos("lowpass", rng.uniform(800, 3000), rate, 2), rng.standard_normal(n))
        out += rng.uniform(1.0, 4.0) * envelope * (0.5 * tone + swish / max(np.std(swish), 1e-12))
    return noisegen.unit_rms(out)


def wind(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Wind ``[n]``: a dark (80-300 Hz) and a brighter (600-2500 Hz) low-passed noise, cross-faded by a slow random
    weight so the timbre wanders, under strong gusts (0.05-0.5 Hz modulation); unit RMS."""
    base = rng.standard_normal(n)
    dark = noisegen.unit_rms(signal.sosfilt(_sos("lowpass", rng.uniform(80, 300), rate, 2), base))
    bright = noisegen.unit_rms(signal.sosfilt(_sos("lowpass", rng.uniform(600, 2500), rate, 2), base))
    weight = 1 / (1 + np.exp(-1.5 * _slow(n, rate, rng, 0.3)))
    gusts = np.exp(0.8 * _slow(n, rate, rng, rng.uniform(0.05, 0.5)))
    return noisegen.unit_rms((dark * (1 - weight) + bright * weight) * gusts)


def buzz(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Electrical buzz ``[n]``: a 50/60 Hz (or 100/120 Hz) wave clipped hard, so rich in odd harmonics up to
    several kHz, slightly band-limited and level-wobbling (ground loops, dimmers, guitar amps); unit RMS."""
    f0 = rng.choice([50.0, 60.0, 100.0, 120.0]) * (1 + rng.uniform(-0.005, 0.005))
    t = np.arange(n) / rate
    wave = np.tanh(rng.uniform(3, 30) * np.sin(2 * np.pi * f0 * t + rng.uniform(0, 2 * np.pi)))
    wave = signal.sosfilt(_sos("lowpass", rng.uniform(2000, 8000), rate, 2), wave)
    wobble = 1 + 0.05 * _slow(n, rate, rng, 1.0)
    return noisegen.unit_rms(wave * wobble + 0.02 * noisegen.white(n, rate, rng))


def crackle(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Vinyl-like crackle ``[n]``: dense tiny ticks (50-500 per second), rarer loud pops, over faint hiss and a
    rumble; unit RMS."""
    out = np.zeros(n)
    for density, scale in ((rng.uniform(50, 500), 0.2), (rng.uniform(0.5, 4), 1.0)):
        count = max(1, int(rng.poisson(density * n / rate)))
        out[rng.integers(0, n, count)] += scale * rng.lognormal(0, 0.7, count) * rng.choice([-1.0, 1.0], count)
    ticks = signal.sosfilt(_sos("highpass", 1000.0, rate, 2), out)
    hiss = signal.sosfilt(_sos("highpass", 2000.0, rate, 2), noisegen.white(n, rate, rng))
    rumble = signal.sosfilt(_sos("lowpass", 40.0, rate, 2), noisegen.white(n, rate, rng))
    return noisegen.unit_rms(noisegen.unit_rms(ticks) + 0.1 * hiss + 0.3 * noisegen.unit_rms(rumble))


def talker_babble(talkers: list[np.ndarray], n: int, rng: np.random.Generator, rate: int = 48000) -> np.ndarray:
    """Babble ``[n]`` from real ``talkers`` (each ``[m]`` speech at the same rate): each looped to ``n``, started at
    a random point, levelled within +-4 dB, summed; unit RMS."""
    out = np.zeros(n)
    for talk in talkers:
        if talk.size == 0 or noisegen.power(talk) == 0:
            continue
        looped = np.resize(np.roll(talk, -int(rng.integers(len(talk)))), n)
        out += 10 ** (rng.uniform(-4, 4) / 20) * looped / math.sqrt(noisegen.power(talk))
    if noisegen.power(out) == 0:
        raise ValueError("talker_babble: every talker was silent")
    return noisegen.unit_rms(out)


TEXTURES: dict[str, Generator] = {
    "keyboard": keyboard,
    "fan": fan,
    "rain": rain,
    "traffic": traffic,
    "wind": wind,
    "buzz": buzz,
    "crackle": crackle,
}

#: Every generator the corpus draws from: noise.py's plus the textures above (``tts_babble`` is built by the
#: corpus from TTS talkers, see :func:`talker_babble`).
KINDS: dict[str, Generator] = {**noisegen.GENERATORS, **TEXTURES}


def generate(kind: str, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Noise of one ``kind`` from KINDS: float64 ``[n]``, unit RMS; ValueError names the known kinds."""
    if kind not in KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; known: {', '.join(KINDS)}")
    return KINDS[kind](n, rate, rng)


def mixture(kinds: list[str], gains_db: list[float], n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Sum of unit-RMS noises of ``kinds`` at ``gains_db``: float64 ``[n]``, unit RMS."""
    out = sum(10 ** (g / 20) * generate(k, n, rate, rng) for k, g in zip(kinds, gains_db, strict=True))
    return noisegen.unit_rms(np.asarray(out))
