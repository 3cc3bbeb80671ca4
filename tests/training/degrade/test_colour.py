"""The microphone colouration (``miceq``): gentle, seeded, on the degraded side only, still aligned."""

from __future__ import annotations

import numpy as np
from scipy import signal

from rt_enhance.training.degrade import colour, parse_pipeline

RATE = 48000


def test_mic_eq_is_gentle_and_seeded():
    freqs = np.geomspace(50, 20000, 64)
    for seed in range(20):
        eq = colour.draw_mic_eq(RATE, np.random.default_rng(seed))
        response = eq.response_db(freqs, RATE)
        assert np.all(np.abs(response[freqs > 200]) < 16)
    x = np.random.default_rng(0).standard_normal(RATE)
    y1 = colour.random_mic_eq(x, RATE, np.random.default_rng(5))
    assert np.array_equal(y1, colour.random_mic_eq(x, RATE, np.random.default_rng(5)))
    assert np.all(np.isfinite(y1)) and y1.shape == x.shape


def test_miceq_step_colours_the_degraded_side_only_and_keeps_alignment():
    x = (0.1 * np.random.default_rng(1).standard_normal(RATE // 2)).astype(np.float32)
    pipeline = parse_pipeline("miceq")
    degraded, target = pipeline(x, RATE, np.random.default_rng(3))
    np.testing.assert_array_equal(target, x)
    assert not np.allclose(degraded, x, atol=1e-3)
    np.testing.assert_array_equal(degraded, pipeline(x, RATE, np.random.default_rng(3))[0])
    corr = signal.correlate(degraded, target, mode="full", method="fft")
    assert abs(int(np.argmax(np.abs(corr))) - (len(target) - 1)) <= 1
    assert parse_pipeline("maybe 0.5 miceq").steps[0].inner == pipeline.steps[0]
