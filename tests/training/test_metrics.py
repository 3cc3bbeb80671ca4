"""Sanity of the evaluation metrics and of the upsampling baselines."""

from __future__ import annotations

import logging
import math
import sys

import numpy as np
import pytest
import soxr
from scipy import signal

from rt_enhance.training import metrics
from rt_enhance.training.baselines import sinc_upsample, spline_upsample
from rt_enhance.training.degrade.noisegen import babble

RATE = 16000


@pytest.fixture(scope="module")
def speechy() -> np.ndarray:
    """2 s of babble-like, speech-band, syllable-modulated noise at -20 dBFS: enough for PESQ's VAD."""
    return (0.1 * babble(2 * RATE, RATE, np.random.default_rng(0))).astype(np.float64)


def _with_noise(x: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(x))
    noise *= math.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return x + noise


def test_snr_of_known_noise(speechy: np.ndarray) -> None:
    assert abs(metrics.snr(speechy, _with_noise(speechy, 12.0)) - 12.0) < 1e-6
    assert abs(metrics.snr(speechy, 2 * speechy) - 0.0) < 1e-6  # error = x: 0 dB


def test_si_sdr(speechy: np.ndarray) -> None:
    assert metrics.si_sdr(speechy, speechy) > 100
    assert metrics.si_sdr(speechy, 0.25 * speechy) > 100  # scale invariant
    assert abs(metrics.si_sdr(speechy, _with_noise(speechy, 12.0)) - 12.0) < 0.2


def test_lsd(speechy: np.ndarray) -> None:
    assert metrics.lsd(speechy, speechy) == 0.0
    lowpassed = signal.sosfiltfilt(signal.cheby1(8, 0.05, 4000, fs=RATE, output="sos"), speechy)
    assert metrics.lsd(speechy, lowpassed) > 1.0
    assert metrics.lsd(speechy, _with_noise(speechy, 30)) < metrics.lsd(speechy, _with_noise(speechy, 10))


def test_lsd_frames_follow_kuleshov() -> None:
    spec = metrics.log_power_spectrogram(np.ones(4096), 2048)
    assert spec.shape == (4096 // 512 + 1, 1025)  # hop 512, centred frames


def test_pesq_and_stoi(speechy: np.ndarray) -> None:
    clean_pesq = metrics.pesq_wb(speechy, speechy, RATE)
    noisy_pesq = metrics.pesq_wb(speechy, _with_noise(speechy, 5), RATE)
    assert clean_pesq > 4.0 and noisy_pesq < clean_pesq - 1
    assert metrics.stoi(speechy, speechy, RATE) > 0.99
    assert metrics.stoi(speechy, _with_noise(speechy, -5), RATE) < 0.9


def test_pesq_resamples_other_rates(speechy: np.ndarray) -> None:
    x48 = soxr.resample(speechy, RATE, 48000)
    assert metrics.pesq_wb(x48, x48, 48000) > 4.0


def test_pesq_without_speech_is_nan(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert math.isnan(metrics.pesq_wb(np.zeros(RATE), np.zeros(RATE), RATE))
    assert "PESQ skipped" in caplog.text


def test_missing_packages_give_nan(speechy: np.ndarray, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "pesq", None)
    monkeypatch.setitem(sys.modules, "pystoi", None)
    with caplog.at_level(logging.WARNING):
        assert math.isnan(metrics.pesq_wb(speechy, speechy, RATE))
        assert math.isnan(metrics.stoi(speechy, speechy, RATE))
    assert "pip install pesq" in caplog.text and "pip install pystoi" in caplog.text


def test_evaluate(speechy: np.ndarray) -> None:
    noisy = _with_noise(speechy, 10)
    scores = metrics.evaluate(speechy, noisy, RATE)
    assert set(scores) == {"snr", "si_sdr", "lsd", "pesq", "stoi", "highs"}
    assert abs(scores["snr"] - 10) < 1e-6
    assert set(metrics.evaluate(speechy, noisy, RATE, speech=False)) == {"snr", "si_sdr", "lsd"}


def test_highs_kept_tells_a_dulled_voice_from_a_kept_one(speechy: np.ndarray) -> None:
    import soxr

    assert metrics.highs_kept(speechy, speechy, RATE) == pytest.approx(0.0, abs=1e-9)
    assert metrics.highs_kept(speechy, 0.5 * speechy, RATE) == pytest.approx(-6.02, abs=0.01)
    dull = soxr.resample(soxr.resample(speechy, RATE, 4000), 4000, RATE)[: len(speechy)]  # nothing above 2 kHz
    assert metrics.highs_kept(speechy, dull, RATE) < -20
    assert math.isnan(metrics.highs_kept(np.zeros(RATE), speechy[:RATE], RATE))


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"equal length, got \(100,\) and \(99,\)"):
        metrics.snr(np.zeros(100), np.zeros(99))


# --- baselines --------------------------------------------------------------------------------------------------


def _sine(rate: int, freq: float = 300.0, seconds: float = 0.1) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)


@pytest.mark.parametrize("upsample", [spline_upsample, sinc_upsample])
def test_upsampling_baselines_recover_a_low_tone(upsample) -> None:
    out = upsample(_sine(8000), 8000, RATE)
    truth = _sine(RATE)
    assert out.dtype == np.float32 and out.shape == truth.shape
    assert metrics.snr(truth[100:-100], out[100:-100]) > 30


def test_spline_passes_through_the_low_rate_samples() -> None:
    x = np.random.default_rng(0).standard_normal(50)
    np.testing.assert_allclose(spline_upsample(x, 8000, 24000)[::3], x, atol=1e-6)


def test_sinc_baseline_is_band_limited() -> None:
    """The sinc baseline puts no energy above the low rate's Nyquist: that band is what a model must add."""
    x = np.random.default_rng(0).standard_normal(4000)
    out = sinc_upsample(x, 8000, RATE)
    freqs, psd = signal.welch(out, RATE, nperseg=512)
    assert psd[freqs > 4500].sum() < 1e-6 * psd[freqs < 3500].sum()


def test_pause_attenuation_measures_the_noise_left_between_words():
    from rt_enhance.training.metrics import PAUSE_FLOOR_DB, pause_attenuation

    rate = 16000
    rng = np.random.default_rng(0)
    t = np.arange(2 * rate) / rate
    ref = np.where(t < 1.0, 0.5 * np.sin(2 * np.pi * 220 * t), 0.0)  # a tone, then a second of silence
    noise = 0.05 * rng.standard_normal(t.size)
    given = ref + noise
    assert pause_attenuation(ref, given, given, rate) == pytest.approx(0.0, abs=1e-9)  # all the noise left
    assert pause_attenuation(ref, given, ref + 0.1 * noise, rate) == pytest.approx(-20.0, abs=1e-6)
    assert pause_attenuation(ref, given, ref, rate) == PAUSE_FLOOR_DB  # none left
    assert np.isnan(pause_attenuation(given, given, given, rate))  # no pause in the reference
    assert np.isnan(pause_attenuation(ref, ref, ref, rate))  # no noise in the input
