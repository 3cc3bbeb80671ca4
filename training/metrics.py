"""Evaluation metrics on mono float signals ``[samples]``: SNR, SI-SDR, LSD, wideband PESQ and STOI, and the
noise left in the speech pauses.

``ref`` is always the clean reference and ``est`` the signal judged; both must have the same length.
PESQ and STOI come from the optional ``pesq`` and ``pystoi`` packages; when one is missing, or PESQ finds no
speech, the metric is ``nan`` and a warning is logged (never an exception in the middle of an evaluation).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import soxr

logger = logging.getLogger(__name__)

_EPS = 1e-12
PESQ_RATE = 16000


def _pair(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, est = np.asarray(ref, dtype=np.float64), np.asarray(est, dtype=np.float64)
    if ref.ndim != 1 or ref.shape != est.shape:
        raise ValueError(f"metrics take two mono signals of equal length, got {ref.shape} and {est.shape}")
    return ref, est


def snr(ref: np.ndarray, est: np.ndarray) -> float:
    """Signal-to-noise ratio in dB: ``10 log10(|ref|^2 / |ref - est|^2)`` (the original tool's definition)."""
    ref, est = _pair(ref, est)
    return 10.0 * math.log10((np.sum(ref**2) + _EPS) / (np.sum((ref - est) ** 2) + _EPS))


def si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), on zero-mean signals."""
    ref, est = _pair(ref, est)
    ref, est = ref - ref.mean(), est - est.mean()
    target = (np.dot(est, ref) / (np.dot(ref, ref) + _EPS)) * ref
    return 10.0 * math.log10((np.sum(target**2) + _EPS) / (np.sum((est - target) ** 2) + _EPS))


def log_power_spectrogram(x: np.ndarray, frame: int = 2048) -> np.ndarray:
    """``log10(|STFT|^2 + 1e-8)`` ``[frames, frame // 2 + 1]``: Hann window, hop frame/4, centred frames with
    reflect padding (librosa's ``stft`` defaults, which Kuleshov et al. used)."""
    x = np.asarray(x, dtype=np.float64)
    padded = np.pad(x, frame // 2, mode="reflect" if len(x) > frame // 2 else "constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame)[:: frame // 4]
    return np.log10(np.abs(np.fft.rfft(frames * np.hanning(frame + 1)[:-1], axis=1)) ** 2 + 1e-8)


def lsd(ref: np.ndarray, est: np.ndarray, frame: int = 2048) -> float:
    """Log-spectral distance (Kuleshov et al. 2017): per frame, the RMS over frequency of the difference of the
    log10 power spectra; then the mean over frames. Unitless; 0 for identical signals.

    The paper's definition is followed (log10, RMS over frequency); their released code used the natural log
    and averaged over time before frequency, so its numbers are not directly comparable.
    """
    ref, est = _pair(ref, est)
    diff = log_power_spectrogram(ref, frame) - log_power_spectrogram(est, frame)
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=1))))


def pesq_wb(ref: np.ndarray, est: np.ndarray, rate: int) -> float:
    """Wideband PESQ (ITU-T P.862.2, MOS-LQO) at 16 kHz (both signals resampled with soxr); nan with a logged
    warning when the ``pesq`` package is missing or the reference holds no speech."""
    ref, est = _pair(ref, est)
    try:
        from pesq import PesqError, pesq
    except ImportError:
        logger.warning("PESQ skipped: the pesq package is not installed (pip install pesq)")
        return math.nan
    ref16, est16 = (soxr.resample(s, rate, PESQ_RATE) if rate != PESQ_RATE else s for s in (ref, est))
    if not np.any(ref16) or not np.any(est16):
        logger.warning("PESQ skipped: a signal is silent")
        return math.nan
    try:
        return float(pesq(PESQ_RATE, ref16, est16, "wb"))
    except PesqError as err:
        logger.warning("PESQ skipped: %s", type(err).__name__)
        return math.nan


def stoi(ref: np.ndarray, est: np.ndarray, rate: int) -> float:
    """Short-time objective intelligibility (Taal et al. 2011, pystoi; 0..1); nan with a logged warning when
    the ``pystoi`` package is missing."""
    ref, est = _pair(ref, est)
    try:
        from pystoi import stoi as _stoi
    except ImportError:
        logger.warning("STOI skipped: the pystoi package is not installed (pip install pystoi)")
        return math.nan
    return float(_stoi(ref, est, rate, extended=False))


PAUSE_FRAME_SECONDS = 0.02
PAUSE_BELOW_DB = 35.0  # a frame of the reference this far under its loudest frame is a pause
PAUSE_MIN_SHARE = 0.1  # fewer pause frames than this share: no figure
PAUSE_FLOOR_DB = -100.0


def pause_attenuation(ref: np.ndarray, given: np.ndarray, est: np.ndarray, rate: int) -> float:
    """The noise left where the reference is silent: ``10 log10`` of the output's energy over the input's noise
    energy (``given - ref``) in the reference's pause frames (20 ms frames more than PAUSE_BELOW_DB under its
    loudest), in dB: 0 keeps the noise, -30 removes 30 dB of it (floored at PAUSE_FLOOR_DB). What listeners, and
    PESQ, hear first between words; a gain model can win on SI-SDR and still leave it. ``nan`` where the
    reference has too few pauses or the input no noise there."""
    n = max(1, round(PAUSE_FRAME_SECONDS * rate))
    frames = min(len(ref), len(given), len(est)) // n
    if frames == 0:
        return math.nan

    def energy(x: np.ndarray) -> np.ndarray:
        return np.square(_frames(x, n, frames)).sum(axis=1)

    clean = energy(ref)
    pause = ~_voiced(clean)
    noise = energy(given[: frames * n] - ref[: frames * n])[pause].sum()
    if pause.mean() < PAUSE_MIN_SHARE or noise <= _EPS:
        return math.nan
    left = energy(est)[pause].sum()
    return max(PAUSE_FLOOR_DB, 10 * math.log10(max(left, 1e-300) / noise))


def _frames(x: np.ndarray, n: int, frames: int) -> np.ndarray:
    """The first ``frames`` frames of ``n`` samples of ``x``, as float64 ``[frames, n]``: the 20 ms grid of the pause
    and highs metrics."""
    return x[: frames * n].astype(np.float64).reshape(frames, n)


def _voiced(level: np.ndarray) -> np.ndarray:
    """Frames whose reference energy is within PAUSE_BELOW_DB of its loudest frame's (the rest are pauses)."""
    return level > level.max() * 10 ** (-PAUSE_BELOW_DB / 10)


HIGHS_HZ = (2000.0, 8000.0)  # where a voice's consonants and brightness are, and PESQ-wb still listens


def highs_kept(ref: np.ndarray, est: np.ndarray, rate: int) -> float:
    """The output's level against the reference's between 2 and 8 kHz in the reference's voiced frames (20 ms Hann
    frames at most PAUSE_BELOW_DB under its loudest), in dB: 0 keeps the voice's highs (or replaces what it removes
    with as much noise), -15 leaves the voice 15 dB duller there. A denoiser that cuts the highs of a voice whenever
    noise is about wins little SI-SDR and loses much PESQ-wb. ``nan`` where the reference has nothing there."""
    n = max(2, round(PAUSE_FRAME_SECONDS * rate))
    frames = min(len(ref), len(est)) // n
    if frames == 0:
        return math.nan
    window = np.hanning(n)

    def power(x: np.ndarray) -> np.ndarray:
        return np.square(np.abs(np.fft.rfft(_frames(x, n, frames) * window, axis=1)))

    clean, out = power(ref), power(est)
    voiced = _voiced(clean.sum(axis=1))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    band = (freqs >= HIGHS_HZ[0]) & (freqs < min(HIGHS_HZ[1], rate / 2))
    kept, there = out[voiced][:, band].sum(), clean[voiced][:, band].sum()
    if there <= _EPS:
        return math.nan
    return 10 * math.log10(max(kept, 1e-300) / there)


def evaluate(ref: np.ndarray, est: np.ndarray, rate: int, *, speech: bool = True) -> dict[str, float]:
    """All metrics of ``est`` against ``ref`` (mono ``[samples]`` at ``rate``): keys snr, si_sdr, lsd and, when
    ``speech`` is true, pesq, stoi and highs (speech-only metrics; pass ``speech=False`` for music)."""
    out = {"snr": snr(ref, est), "si_sdr": si_sdr(ref, est), "lsd": lsd(ref, est)}
    if speech:
        out.update(pesq=pesq_wb(ref, est, rate), stoi=stoi(ref, est, rate), highs=highs_kept(ref, est, rate))
    return out
