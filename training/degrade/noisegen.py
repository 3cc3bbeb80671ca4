"""Synthetic noise generators and SNR mixing.

Every generator has the signature ``gen(n, rate, rng) -> np.ndarray`` and returns float64 ``[n]`` with unit RMS,
so callers choose the level. They exist so that a user without a noise folder still gets a denoising task
(``noise synth ...`` in the degradation pipeline) and to provide the ``whitenoise``/``pinknoise``/``brownnoise``/
``tpdfnoise`` colours of the original tool.

Kinds: ``white`` (uniform, like sox's ``synth whitenoise``), ``tpdf`` (triangular PDF), ``pink`` (1/f power),
``brown`` (1/f^2 power), ``hum`` (50 or 60 Hz mains hum with harmonics), ``clicks`` (sparse decaying impulses),
``babble`` (several speech-band noises with syllable-rate envelopes, babble-like).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from scipy import fft as scipy_fft
from scipy import signal

logger = logging.getLogger(__name__)

Generator = Callable[[int, int, np.random.Generator], np.ndarray]

#: Segments shorter than this have no meaningful colour or envelope: synth_noise gives white noise instead.
MIN_SHAPED = 64
#: Coloured noise has no energy below this frequency (the 1/f shapes would otherwise put most energy in a DC drift).
LOW_CUT_HZ = 20.0


def unit_rms(x: np.ndarray) -> np.ndarray:
    """Scale ``x`` ``[n]`` to RMS 1; raises ValueError on an all-zero input."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    if rms == 0.0:
        raise ValueError("cannot normalise a silent signal to unit RMS")
    return np.asarray(x, dtype=np.float64) / rms


def power(x: np.ndarray) -> float:
    """Mean power of ``x`` ``[n]`` (mean of squares, float64)."""
    return float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0


def white(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform white noise ``[n]``, unit RMS (sox's ``synth whitenoise`` is uniform in [-1, 1])."""
    return unit_rms(rng.uniform(-1.0, 1.0, n))


def tpdf(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Triangular-PDF white noise ``[n]`` (sum of two uniforms, as sox's ``tpdfnoise``), unit RMS."""
    return unit_rms(rng.uniform(-0.5, 0.5, n) + rng.uniform(-0.5, 0.5, n))


def fft_size(n: int) -> int:
    """The smallest length >= ``n`` made of the factors 2, 3 and 5: the generators shape their spectra over it
    and keep the first ``n`` samples (a training window with its context can be a length whose FFT is ~100x
    slower, e.g. 2 x 3 x 34763)."""
    return int(scipy_fft.next_fast_len(max(n, 1), real=True))


def _shaped(n: int, rate: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Gaussian noise ``[n]`` whose power spectrum falls as 1/f**exponent above LOW_CUT_HZ, unit RMS."""
    size = fft_size(n)
    spectrum = np.fft.rfft(rng.standard_normal(size))
    freqs = np.fft.rfftfreq(size, 1.0 / rate)
    keep = freqs >= LOW_CUT_HZ
    if not keep[1:].any():  # segment too short to resolve LOW_CUT_HZ: keep everything but DC
        keep = freqs > 0
    if not keep.any():  # a single sample has no spectrum to shape
        return white(n, rate, rng)
    shape = np.zeros_like(freqs)
    shape[keep] = freqs[keep] ** (-exponent / 2.0)
    return unit_rms(np.fft.irfft(spectrum * shape, size)[:n])


def pink(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Pink noise ``[n]`` (power ~ 1/f above 20 Hz), unit RMS."""
    return _shaped(n, rate, rng, 1.0)


def brown(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Brown noise ``[n]`` (power ~ 1/f^2 above 20 Hz), unit RMS."""
    return _shaped(n, rate, rng, 2.0)


def hum(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum ``[n]``: 50 or 60 Hz (+-0.5 Hz) and up to 12 harmonics with random 1/k-ish levels, unit RMS."""
    f0 = rng.choice([50.0, 60.0]) + rng.uniform(-0.5, 0.5)
    t = np.arange(n) / rate
    out = np.zeros(n)
    for k in range(1, 13):
        if k * f0 >= rate / 2:
            break
        level = rng.uniform(0.1, 1.0) / k
        out += level * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi))
    return unit_rms(out)


def clicks(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Clicks ``[n]``: Poisson impulses (1-20 per second, at least one) through a 0.2-2 ms decaying burst, unit RMS."""
    density = rng.uniform(1.0, 20.0)
    count = max(1, rng.poisson(density * n / rate))
    train = np.zeros(n)
    train[rng.integers(0, n, count)] = rng.uniform(0.2, 1.0, count) * rng.choice([-1.0, 1.0], count)
    tau = rng.uniform(0.2e-3, 2e-3) * rate
    length = max(1, int(5 * tau))
    burst = rng.standard_normal(length) * np.exp(-np.arange(length) / tau)
    burst[0] = np.abs(burst).max() * 2  # a sharp leading edge
    return unit_rms(signal.fftconvolve(train, burst)[:n])


def _envelope(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Syllable-rate envelope ``[n]`` (positive, energy below ~6 Hz), mean about 1."""
    size = fft_size(n)
    spectrum = np.fft.rfft(rng.standard_normal(size))
    spectrum[np.fft.rfftfreq(size, 1.0 / rate) > 6.0] = 0.0
    slow = np.fft.irfft(spectrum, size)[:n]
    spread = float(np.std(slow))
    return np.exp(1.2 * slow / spread) if spread > 1e-9 else np.ones(n)


def babble(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Babble-like noise ``[n]``: 4-8 'talkers', each pink noise band-passed to 100-4000 Hz with its own
    syllable-rate envelope; unit RMS. Not intelligible speech, but speech-shaped and non-stationary."""
    high = min(4000.0, 0.45 * rate)
    sos = signal.butter(4, [100.0, high], btype="bandpass", fs=rate, output="sos")
    out = np.zeros(n)
    for _ in range(int(rng.integers(4, 9))):
        talker = signal.sosfilt(sos, pink(n, rate, rng)) * _envelope(n, rate, rng)
        out += rng.uniform(0.5, 1.0) * talker / max(float(np.std(talker)), 1e-12)
    return unit_rms(out)


GENERATORS: dict[str, Generator] = {
    "white": white,
    "tpdf": tpdf,
    "pink": pink,
    "brown": brown,
    "hum": hum,
    "clicks": clicks,
    "babble": babble,
}


def synth_noise(kind: str, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Noise of one kind from GENERATORS, ``[n]`` float64, unit RMS (white below MIN_SHAPED samples);
    ValueError names the known kinds."""
    if kind not in GENERATORS:
        raise ValueError(f"unknown noise kind {kind!r}; known: {', '.join(GENERATORS)}")
    if n <= 0:
        return np.zeros(0)
    return GENERATORS[kind if n >= MIN_SHAPED else "white"](n, rate, rng)


def scale_to_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float, *, floor_db: float = -60.0) -> np.ndarray:
    """Return ``noise`` ``[n]`` scaled so that ``10*log10(P(clean)/P(noise))`` equals ``snr_db``.

    Power is measured over the whole segment. A (near) silent ``clean`` is treated as having power
    ``floor_db`` dBFS, so silent stretches still get noise, at the level it would have under a quiet signal.
    """
    noise_power = power(noise)
    if noise_power == 0.0:
        raise ValueError("cannot scale silent noise to an SNR")
    clean_power = max(power(clean), 10.0 ** (floor_db / 10.0))
    return np.asarray(noise, dtype=np.float64) * np.sqrt(clean_power / noise_power / 10.0 ** (snr_db / 10.0))
