"""Properties of each degradation step and of the --preprocessing parser."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from rt_enhance.training import degrade
from rt_enhance.training.degrade import DegradationError, Reverb, parse_pipeline
from rt_enhance.training.metrics import snr as _snr_db

RATE = 16000


def _noise(seconds: float = 0.5, seed: int = 0, rate: int = RATE) -> np.ndarray:
    """Band-limited (< 7 kHz) Gaussian noise, level about -20 dBFS: a broadband test signal."""
    rng = np.random.default_rng(seed)
    x = signal.sosfiltfilt(signal.butter(8, 7000, fs=rate, output="sos"), rng.standard_normal(int(seconds * rate)))
    return (0.1 * x / np.std(x)).astype(np.float32)


def _band_gain_db(out: np.ndarray, inp: np.ndarray, low: float, high: float = RATE / 2) -> float:
    """Power gain of ``out`` over ``inp`` in [low, high] Hz (Welch estimates)."""
    freqs, p_in = signal.welch(inp, RATE, nperseg=1024)
    _, p_out = signal.welch(out, RATE, nperseg=1024)
    band = (freqs >= low) & (freqs <= high)
    return 10 * math.log10(p_out[band].sum() / p_in[band].sum())


def _peak_lag(degraded: np.ndarray, target: np.ndarray) -> int:
    corr = signal.correlate(degraded, target, mode="full", method="fft")
    return int(np.argmax(np.abs(corr))) - (len(target) - 1)


def _write_noise_folder(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(5)
    sf.write(folder / "long.wav", 0.3 * rng.standard_normal(20000), RATE)
    sf.write(folder / "short_22k.flac", 0.2 * rng.standard_normal(3000), 22050)  # shorter than a segment
    return folder


# --- the parser -------------------------------------------------------------------------------------------------

ORIGINAL_STRINGS = [
    "sample 5000 10000,whitenoise 0 0.002",
    "sample 8000 16000",
    "whitenoise 0 0.005",
    "pinknoise 0.001 0.01",
    "brownnoise 0 0.01",
    "tpdfnoise 0.002 0.01",
    "reverb 16000",
    "reverb 16000 2 80 100 100 100 40 0",
    "scale 16000",
    "sample 5000 10000,reverb 10000,whitenoise 0 0.002",
]


@pytest.mark.parametrize("spec", ORIGINAL_STRINGS)
def test_original_strings_parse_and_run(spec: str) -> None:
    pipeline = parse_pipeline(spec)
    out_rate = pipeline.output_rate(RATE)
    degraded, target = pipeline(_noise(0.25), RATE, np.random.default_rng(0))
    assert degraded.dtype == target.dtype == np.float32
    assert degraded.shape == target.shape == (int(round(0.25 * out_rate)),)
    assert np.all(np.isfinite(degraded)) and np.all(np.isfinite(target))


def test_original_sample_string_sets_the_rate() -> None:
    assert parse_pipeline("sample 5000 10000,whitenoise 0 0.002").output_rate(44100) == 10000
    assert parse_pipeline("reverb 8000").output_rate(RATE) == 8000
    assert parse_pipeline("whitenoise 0 0.1").output_rate(RATE) == RATE


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("sample 5000", "step 1 'sample': expected 'sample LOW HIGH'"),
        ("sample 5000 10000,lowpass abc", "step 2 'lowpass': expected 'lowpass HZ [cheby1|butter] [ORDER]'"),
        ("lowpass 4000 bessel", "step 1 'lowpass'"),
        ("whitenoise 0.1", "step 1 'whitenoise': expected 'whitenoise VARIANCE VOLUME'"),
        ("pinknoise -1 0.1", "step 1 'pinknoise'"),
        ("gain 6 -6", "step 1 'gain'"),
        ("clip 0", "step 1 'clip'"),
        ("quantize 8.5", "step 1 'quantize'"),
        ("noise synth 0", "step 1 'noise'"),
        ("noise synth 0 10 hiss", "unknown noise kind"),
        ("noise /does/not/exist 0 10", "does not exist"),
        ("rir simulate 0.9 0.3", "step 1 'rir'"),
        ("rir", "step 1 'rir'"),
        ("rir simulate 0.3 0.5 early", "step 1 'rir'"),
        ("rir simulate 0.3 0.5 early 500", "early MS must lie in"),
        ("rir simulate 0.3 early 50 0.5", "'early MS' comes last"),
        ("reverb", "step 1 'reverb'"),
        ("reverb 16000 0 150", "REVERBERANCE must lie in"),
        ("scale fast", "step 1 'scale'"),
        ("gain 0 1,echo 3", "step 2 'echo': unknown step"),
        ("gain 0 1,,clip 0.5", "step 2 is empty"),
    ],
)
def test_bad_strings_name_the_step(spec: str, expected: str) -> None:
    with pytest.raises(DegradationError, match=expected.replace("[", r"\[").replace("]", r"\]").replace("|", r"\|")):
        parse_pipeline(spec)


def test_empty_string_is_identity() -> None:
    x = _noise(0.1)
    degraded, target = parse_pipeline("  ")(x, RATE, np.random.default_rng(0))
    np.testing.assert_array_equal(degraded, x)
    np.testing.assert_array_equal(target, x)


def test_rate_dependent_error_names_the_step() -> None:
    with pytest.raises(DegradationError, match=r"step 2 'lowpass': cutoff 9000 Hz is not below the Nyquist"):
        parse_pipeline("gain 0 0,lowpass 9000")(_noise(0.1), RATE, np.random.default_rng(0))


def test_pipeline_rejects_multichannel() -> None:
    with pytest.raises(ValueError, match=r"mono audio \[samples\]"):
        parse_pipeline("gain 0 0")(np.zeros((2, 100)), RATE, np.random.default_rng(0))


def test_seeded_and_reproducible() -> None:
    pipeline = parse_pipeline("noise synth 0 20,gain -6 6,reverb 16000 5")
    x = _noise(0.2)
    first = pipeline(x, RATE, np.random.default_rng(7))
    again = pipeline(x, RATE, np.random.default_rng(7))
    other = pipeline(x, RATE, np.random.default_rng(8))
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.allclose(first[0], other[0])


# --- noise ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("colour", ["whitenoise", "pinknoise", "brownnoise", "tpdfnoise"])
def test_coloured_noise_level(colour: str) -> None:
    """VOLUME scales sox's full-scale noise: added RMS = VOLUME / sqrt(3), so the SNR is known to 0.1 dB."""
    x = _noise(0.5)
    degraded, target = parse_pipeline(f"{colour} 0 0.02")(x, RATE, np.random.default_rng(1))
    expected = 20 * math.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)) * math.sqrt(3) / 0.02)
    assert abs(_snr_db(x, degraded) - expected) < 0.1
    np.testing.assert_array_equal(target, x)


def test_coloured_noise_variance_jitters_the_volume() -> None:
    step = degrade.ColouredNoise.parse(["0.01", "0.05"], "whitenoise")
    amplitudes = [step.amplitude(np.random.default_rng(i)) for i in range(400)]
    assert abs(np.mean(amplitudes) - 0.05) < 0.003
    assert 0.008 < np.std(amplitudes) < 0.012


def test_pink_noise_is_pink() -> None:
    x = np.zeros(RATE, dtype=np.float32)
    degraded, _ = parse_pipeline("pinknoise 0 0.5")(x, RATE, np.random.default_rng(0))
    freqs, psd = signal.welch(degraded, RATE, nperseg=2048)
    low, high = psd[(freqs >= 200) & (freqs < 400)].mean(), psd[(freqs >= 3200) & (freqs < 6400)].mean()
    assert 10 < 10 * math.log10(low / high) < 14  # 1/f: mean PSD of two octaves 4 octaves apart differs by 12 dB


def test_shaped_noise_of_an_awkward_length_is_shaped_over_a_fast_one() -> None:
    from rt_enhance.training.degrade.noisegen import fft_size, pink

    n = 2 * 3 * 34763  # a 1 s window with the rooms' context: a prime factor that makes an FFT ~100x slower
    size = fft_size(n)
    rest = size
    for p in (2, 3, 5):
        while rest % p == 0:
            rest //= p
    assert rest == 1 and n <= size < 1.05 * n
    x = pink(n, RATE, np.random.default_rng(0))
    freqs, psd = signal.welch(x, RATE, nperseg=2048)
    low, high = psd[(freqs >= 200) & (freqs < 400)].mean(), psd[(freqs >= 3200) & (freqs < 6400)].mean()
    assert len(x) == n and np.sqrt(np.mean(x**2)) == pytest.approx(1.0) and 10 < 10 * math.log10(low / high) < 14


@pytest.mark.parametrize("kind", ["white", "tpdf", "pink", "brown", "hum", "clicks", "babble"])
def test_noise_synth_snr_within_0_1_db(kind: str) -> None:
    x = _noise(0.5)
    degraded, target = parse_pipeline(f"noise synth 7.5 7.5 {kind}")(x, RATE, np.random.default_rng(3))
    assert abs(_snr_db(x, degraded) - 7.5) < 0.1
    np.testing.assert_array_equal(target, x)


def test_noise_synth_snr_drawn_in_range() -> None:
    pipeline, x = parse_pipeline("noise synth -5 15"), _noise(0.25)
    snrs = [_snr_db(x, pipeline(x, RATE, np.random.default_rng(i))[0]) for i in range(12)]
    assert all(-5.1 < s < 15.1 for s in snrs)
    assert np.ptp(snrs) > 5


def test_noise_folder_snr_within_0_1_db(tmp_path: Path) -> None:
    folder = _write_noise_folder(tmp_path / "noises")
    pipeline, x = parse_pipeline(f"noise {folder} 2 12"), _noise(0.5)
    for seed in range(6):  # both files get drawn: one cropped, one looped and resampled
        rng = np.random.default_rng(seed)
        expected = np.random.default_rng(seed).uniform(2, 12)
        degraded, _ = pipeline(x, RATE, rng)
        assert abs(_snr_db(x, degraded) - expected) < 0.1


def _peak_hz(x: np.ndarray) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(x))) * RATE / len(x))


def test_noise_vary_plays_each_stretch_at_a_drawn_speed_and_keeps_the_snr(tmp_path: Path) -> None:
    (tmp_path / "tone").mkdir()
    sf.write(tmp_path / "tone" / "a.wav", 0.3 * np.sin(2 * np.pi * 1000 * np.arange(RATE) / RATE), RATE)
    x = _noise(0.5)
    plain, varied = parse_pipeline(f"noise {tmp_path / 'tone'} 6 6"), parse_pipeline(f"noise {tmp_path / 'tone'} 6 6 vary")
    assert plain.steps[0].vary is False and varied.steps[0].vary is True
    peaks = []
    for seed in range(8):
        degraded, _ = varied(x, RATE, np.random.default_rng(seed))
        assert abs(_snr_db(x, degraded) - 6.0) < 0.1
        peaks.append(_peak_hz(degraded - x))
        assert _peak_hz(plain(x, RATE, np.random.default_rng(seed))[0] - x) == pytest.approx(1000, abs=2)
    assert all(500 - 2 <= p <= 2000 + 2 for p in peaks) and np.ptp(peaks) > 200


def test_tilt_slopes_the_spectrum_by_the_asked_db_per_octave() -> None:
    from rt_enhance.training.degrade.noise import tilt, tilt_gains

    x = _noise(4.0)
    tilted = tilt(x, RATE, 4.0)
    slope = _band_gain_db(tilted, x, 2000, 4000) - _band_gain_db(tilted, x, 1000, 2000)
    assert slope == pytest.approx(4.0, abs=0.3)
    assert len(tilt(x[:48001], RATE, 4.0)) == 48001  # filtered over a fast FFT length, cut back
    floor = tilt_gains(np.array([0.0, 20.0, 50.0, 1000.0]), -4.0)  # flat below 50 Hz, 1 at the pivot
    assert floor[0] == floor[1] == floor[2] == pytest.approx(10 ** (4.0 * math.log2(20) / 20)) and floor[3] == 1.0


def test_noise_vary_is_only_a_word_of_noise_files(tmp_path: Path) -> None:
    folder = _write_noise_folder(tmp_path / "noises")
    with pytest.raises(DegradationError, match="only be 'vary'"):
        parse_pipeline(f"noise {folder} 0 10 loud")
    with pytest.raises(DegradationError, match="unknown noise kind"):
        parse_pipeline("noise synth 0 10 vary")


def test_noise_folder_must_hold_audio(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DegradationError, match="holds no audio"):
        parse_pipeline(f"noise {tmp_path / 'empty'} 0 10")


# --- band limits ------------------------------------------------------------------------------------------------


def test_lowpass_removes_energy_above_cutoff() -> None:
    x = np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 0.1
    degraded, target = parse_pipeline("lowpass 4000 cheby1 8")(x, RATE, np.random.default_rng(0))
    assert _band_gain_db(degraded, x, 1.2 * 4000) < -40
    assert abs(_band_gain_db(degraded, x, 100, 3000)) < 0.5
    assert _peak_lag(degraded, target) == 0


def test_lowpass_butter_and_order_are_honoured() -> None:
    x = np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 0.1
    gains = [
        _band_gain_db(parse_pipeline(f"lowpass 2000 butter {order}")(x, RATE, np.random.default_rng(0))[0], x, 3000, 4000)
        for order in (2, 8)
    ]
    assert gains[1] < gains[0] - 20


def test_sample_removes_content_above_low_nyquist() -> None:
    x = np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 0.1
    degraded, target = parse_pipeline("sample 8000 16000")(x, RATE, np.random.default_rng(0))
    assert _band_gain_db(degraded, x, 4000) < -60
    assert abs(_band_gain_db(degraded, x, 100, 3500)) < 0.5
    np.testing.assert_array_equal(target, x)
    assert _peak_lag(degraded, target) == 0


def test_sample_to_other_rate_resamples_target() -> None:
    t = np.arange(RATE) / RATE
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    degraded, target = parse_pipeline("sample 5000 10000")(x, RATE, np.random.default_rng(0))
    expected = 0.5 * np.sin(2 * np.pi * 440 * np.arange(10000) / 10000)
    assert len(target) == 10000
    assert np.max(np.abs(target[200:-200] - expected[200:-200])) < 1e-3
    assert np.max(np.abs(degraded[200:-200] - expected[200:-200])) < 1e-3  # 440 Hz survives a 5 kHz rate


# --- reverberation ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["reverb 16000", "reverb 16000 3 60 50 80 100 10 3", "rir simulate 0.2 1.0"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reverb_keeps_direct_path_alignment(spec: str, seed: int) -> None:
    x = _noise(0.5, seed)
    degraded, target = parse_pipeline(spec)(x, RATE, np.random.default_rng(seed))
    assert abs(_peak_lag(degraded, target)) <= 1
    assert _snr_db(target, degraded) < 10  # it did reverberate


def test_reverb_parameters_are_honoured() -> None:
    step = Reverb.parse(["16000", "0", "80", "100", "100", "100", "40", "-6"], "reverb")
    rir = step.impulse_response(step.draw(np.random.default_rng(0)), RATE, np.random.default_rng(0))
    pre_delay = int(0.040 * RATE)
    assert rir[0] == 1.0 and not np.any(rir[1 : 1 + pre_delay])
    assert abs(10 * math.log10(np.sum(rir[1:] ** 2)) - (-6)) < 1e-6
    assert abs(_rt60(rir) / Reverb.rt60(80, 100) - 1) < 0.15
    bright = Reverb.parse(["16000", "0", "80", "0", "100", "100", "40", "-6"], "reverb")  # HF_DAMPING 0 %
    undamped = bright.impulse_response(bright.draw(np.random.default_rng(0)), RATE, np.random.default_rng(0))
    late = slice(int(0.3 * RATE), None)
    assert _band_gain_db(rir[late], undamped[late], 4000) < -20  # HF_DAMPING 100 %: the late tail loses its top
    assert _band_gain_db(rir[late], undamped[late], 100, 1000) > -1  # (the tail energy is WET_GAIN either way)


def test_reverb_variance_jitters_parameters() -> None:
    step = Reverb.parse(["16000", "10"], "reverb")
    draws = np.array([step.draw(np.random.default_rng(i)) for i in range(50)])
    assert np.std(draws[:, 0]) > 5 and np.all(draws[:, 0] <= 100) and np.all(draws[:, 5] >= -10)


def _rt60(rir: np.ndarray) -> float:
    """T30 from Schroeder's backward integration."""
    energy = np.cumsum(rir[::-1] ** 2)[::-1]
    decay = 10 * np.log10(energy / energy[0] + 1e-30)
    start, end = np.argmax(decay <= -5), np.argmax(decay <= -35)
    return 2 * (end - start) / RATE


@pytest.mark.parametrize("rt60", [0.3, 0.8])
def test_simulated_room_rt60_close_to_draw(rt60: float) -> None:
    rirs = [degrade.simulate_rir(rt60, RATE, np.random.default_rng(s)) for s in range(3)]
    for rir, direct in rirs:
        assert int(np.argmax(np.abs(rir))) == direct and rir[direct] == 1.0  # a unit direct path, the strongest tap
        assert abs(_rt60(rir[direct:]) / rt60 - 1) < 0.25


def test_rir_folder_aligns_on_direct_path(tmp_path: Path) -> None:
    folder = tmp_path / "rirs"
    folder.mkdir()
    rir = np.zeros(4000)
    rir[120] = 0.5  # direct path after 120 samples of flight
    rir[121:] = 0.05 * np.random.default_rng(0).standard_normal(3879) * np.exp(-np.arange(3879) / 800)
    sf.write(folder / "room.wav", rir, RATE, subtype="FLOAT")
    x = _noise(0.5)
    degraded, target = parse_pipeline(f"rir {folder}")(x, RATE, np.random.default_rng(0))
    assert _peak_lag(degraded, target) == 0
    gain = np.dot(degraded, target) / np.dot(target, target)
    assert abs(gain - 1.0) < 0.05  # normalised to a unit direct path


def test_early_target_keeps_the_reflections_of_its_first_milliseconds_and_drops_the_tail(tmp_path: Path) -> None:
    folder = tmp_path / "rirs"
    folder.mkdir()
    rir = np.zeros(8000)
    rir[120] = 0.5
    rir[121:] = 0.05 * np.random.default_rng(0).standard_normal(7879) * np.exp(-np.arange(7879) / 2000)
    sf.write(folder / "room.wav", rir, RATE, subtype="FLOAT")
    x = np.zeros(RATE // 2)
    x[1000] = 1.0  # an impulse: the target is the response the step kept, from the impulse on
    _, direct = parse_pipeline(f"rir {folder}")(x, RATE, np.random.default_rng(0))
    _, early = parse_pipeline(f"rir {folder} early 50")(x, RATE, np.random.default_rng(0))
    unit = rir / 0.5
    taper = int(degrade.base.EARLY_TAPER_SECONDS * RATE)
    end = int(0.05 * RATE)
    np.testing.assert_allclose(early[1000 : 1000 + end - taper], unit[120 : 120 + end - taper], atol=1e-5)  # early: kept
    assert np.all(np.abs(early[1000 + end + 1 :]) < 1e-6)  # the late tail: gone
    assert np.all(np.abs(direct[1000 + int(degrade.base.DIRECT_SECONDS * RATE) + 1 :]) < 1e-6)  # without it: direct only
    degraded_early, _ = parse_pipeline(f"rir {folder} 0 5 early 50")(x, RATE, np.random.default_rng(0))
    degraded, _ = parse_pipeline(f"rir {folder} 0 5")(x, RATE, np.random.default_rng(0))
    np.testing.assert_array_equal(degraded_early, degraded)  # the input does not change


def test_simulated_rooms_take_an_early_target_too() -> None:
    step = parse_pipeline("rir simulate 0.4 0.6 early 30")
    x = np.zeros(RATE)
    x[2000] = 1.0
    degraded, target = step(x, RATE, np.random.default_rng(1))
    tail = target[2000 + int(0.031 * RATE) :]
    assert np.all(np.abs(tail) < 1e-6) and np.sum(degraded[2000 + int(0.031 * RATE) :] ** 2) > 1e-3


# --- sample-wise steps ------------------------------------------------------------------------------------------


def test_clip() -> None:
    x = _noise(0.2) * 5
    degraded, target = parse_pipeline("clip 0.3")(x, RATE, np.random.default_rng(0))
    assert np.max(np.abs(degraded)) <= 0.3 + 1e-7
    inside = np.abs(x) < 0.3
    np.testing.assert_array_equal(degraded[inside], x[inside])
    assert np.all(degraded[x > 0.3] == np.float32(0.3))
    np.testing.assert_array_equal(target, x)


@pytest.mark.parametrize("bits", [4, 8, 12])
def test_quantize(bits: int) -> None:
    x = _noise(0.2)
    degraded, target = parse_pipeline(f"quantize {bits}")(x, RATE, np.random.default_rng(0))
    step = 2.0 ** (1 - bits)
    codes = degraded.astype(np.float64) / step
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-3)
    assert np.max(np.abs(degraded - x)) <= step / 2 + 1e-7
    np.testing.assert_array_equal(target, x)


def test_gain_applies_to_both_signals_in_range() -> None:
    x = _noise(0.1)
    for seed in range(10):
        degraded, target = parse_pipeline("gain -12 -3")(x, RATE, np.random.default_rng(seed))
        ratio_db = 20 * math.log10(np.linalg.norm(target) / np.linalg.norm(x))
        assert -12 - 1e-4 <= ratio_db <= -3 + 1e-4
        np.testing.assert_allclose(degraded, target)


def test_gain_then_clip_clips_input_only() -> None:
    x = _noise(0.1)
    degraded, target = parse_pipeline("gain 20 20,clip 0.5")(x, RATE, np.random.default_rng(0))
    assert np.max(np.abs(target)) > 0.5 >= np.max(np.abs(degraded)) - 1e-7


# --- pipeline-wide properties -----------------------------------------------------------------------------------

_RATE_PRESERVING = [
    "gain -3 3",
    "clip 0.2",
    "quantize 10",
    "lowpass 3000",
    "noise synth 0 20",
    "whitenoise 0 0.01",
    "sample 6000 16000",
    "reverb 16000 0 30 50 50 50 5",
    "scale 16000",
]


@settings(max_examples=25, deadline=None)
@given(
    steps=st.lists(st.sampled_from(_RATE_PRESERVING), min_size=1, max_size=4), length=st.integers(1, 3000), seed=st.integers(0, 2**32 - 1)
)
def test_any_chain_keeps_length_and_is_finite(steps: list[str], length: int, seed: int) -> None:
    x = np.random.default_rng(seed).uniform(-0.5, 0.5, length).astype(np.float32)
    degraded, target = parse_pipeline(",".join(steps))(x, RATE, np.random.default_rng(seed))
    assert degraded.shape == target.shape == (length,)
    assert np.all(np.isfinite(degraded)) and np.all(np.isfinite(target))


def test_context_covers_reverb_tail() -> None:
    assert parse_pipeline("reverb 16000").context(RATE) >= Reverb.rt60(80, 100) * RATE
    assert parse_pipeline("gain 0 1,clip 0.5").context(RATE) == 0


def test_maybe_identity_and_bandlimit():
    from rt_enhance.training.degrade import DegradationError, parse_pipeline

    rate = 48000
    rng = np.random.default_rng(0)
    clean = rng.standard_normal(rate // 2).astype(np.float32) * 0.1
    pipe = parse_pipeline("identity 0.3, maybe 0.5 bandlimit 2000 8000, noise synth 5 5 white")
    identical = 0
    for _ in range(40):
        degraded, target = pipe(clean, rate, rng)
        np.testing.assert_array_equal(target, clean)
        identical += np.array_equal(degraded, clean)
    assert 5 <= identical <= 22  # about 30% of the pairs are left alone
    degraded, _ = parse_pipeline("bandlimit 3000 3000")(clean, rate, rng)
    spectrum = np.abs(np.fft.rfft(degraded)) ** 2
    freqs = np.fft.rfftfreq(len(degraded), 1 / rate)
    assert spectrum[freqs > 6000].sum() < 1e-4 * spectrum[freqs < 2000].sum()
    for bad, needle in [
        ("maybe 2 gain 0 1", "between 0 and 1"),
        ("maybe 0.5 scale 16000", "changes the sample rate"),
        ("identity 0.1, sample 8000 16000", "changes the sample rate"),
        ("bandlimit 5000 100", "HZ_MIN"),
    ]:
        with pytest.raises(DegradationError, match=needle):
            parse_pipeline(bad)


def test_rir_files_with_a_drawn_direct_to_reverberant_ratio(tmp_path):
    import soundfile as sf

    from rt_enhance.training.degrade import parse_pipeline

    rate = 48000
    rng = np.random.default_rng(0)
    rir = np.zeros(rate // 2)
    rir[40] = 1.0
    rir[400:] = rng.standard_normal(rate // 2 - 400) * np.exp(-np.arange(rate // 2 - 400) / 4000) * 0.05
    sf.write(tmp_path / "room.wav", rir, rate, subtype="FLOAT")
    step = parse_pipeline(f"rir {tmp_path} 6 6").steps[0]
    shaped = step.with_drr(rir, 40, rate, rng)
    near = np.zeros(len(rir), bool)
    near[: 40 + 121] = True
    assert abs(10 * np.log10(np.sum(shaped[near] ** 2) / np.sum(shaped[~near] ** 2)) - 6.0) < 0.01
    clean = rng.standard_normal(rate).astype(np.float32) * 0.1
    degraded, target = parse_pipeline(f"rir {tmp_path} 6 6")(clean, rate, rng)
    lag = np.argmax(np.correlate(degraded[:4000], target[:4000], "full")) - 3999
    assert lag == 0  # still aligned on the direct path


def test_the_dereverberation_target_is_the_direct_sound_not_the_dry_signal(tmp_path):
    """A direct path spread over a few taps (a fractional delay, as measured and simulated rooms have)
    is part of the target, so the pair differs only by the reverberant tail."""
    folder = tmp_path / "rirs"
    folder.mkdir()
    rir = np.zeros(6000)
    rir[100:103] = [0.4, 1.0, 0.4]  # the direct sound, spread over three taps
    rir[600:] = 0.05 * np.random.default_rng(1).standard_normal(5400) * np.exp(-np.arange(5400) / 900)
    sf.write(folder / "room.wav", rir, RATE, subtype="FLOAT")
    x = _noise(0.5)
    degraded, target = parse_pipeline(f"rir {folder}")(x, RATE, np.random.default_rng(0))
    spread = np.convolve(x, [0.4, 1.0, 0.4])[1 : 1 + len(x)]
    np.testing.assert_allclose(target, spread, atol=1e-5)
    tail = np.convolve(x, rir[101:] * (np.arange(len(rir) - 101) >= 499))[: len(x)]
    np.testing.assert_allclose(degraded - target, tail, atol=1e-4)


def test_both_applies_a_step_to_the_target_alike_and_keeps_the_rate() -> None:
    x = np.random.default_rng(1).standard_normal(48000)
    step = degrade.parse_pipeline("maybe 1 both bandlimit 3500 16000").steps[0]
    degraded, target, rate = step.apply(x, x.copy(), 48000, np.random.default_rng(0))
    assert rate == 48000 and np.array_equal(degraded, target)  # the same filter, the same draws
    spectrum = np.abs(np.fft.rfft(target))
    assert spectrum[17000:].mean() < 0.01 * spectrum[:3000].mean()  # low-passed (16 kHz at most)
    for bad in ("both sample 16000 48000", "both maybe 0.5 gain 0 1", "both"):
        with pytest.raises(degrade.DegradationError):
            degrade.parse_pipeline(bad)


def test_every_registered_step_names_itself_and_shows_its_syntax():
    """The one registry: each name maps to a step class whose syntax starts with that name, and a step parsed
    from the name answers to it (so error messages and the device path name the step the user wrote)."""
    assert set(degrade.STEPS) >= {
        "sample",
        "whitenoise",
        "reverb",
        "scale",
        "lowpass",
        "noise",
        "rir",
        "clip",
        "quantize",
        "gain",
        "bandlimit",
        "maybe",
        "identity",
        "both",
        "miceq",
    }
    for name, cls in degrade.STEPS.items():
        assert cls.syntax(name).startswith(name), name
    assert parse_pipeline("pinknoise 0 0.1,gain 0 1,miceq").steps[0].name == "pinknoise"
    assert [s.name for s in parse_pipeline("gain 0 1,miceq,rir simulate 0.2 0.3").steps] == ["gain", "miceq", "rir"]
