"""numba kernels agree with their numpy references; crossfade weights sum to one."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rt_enhance.realtime import kernels


@given(st.integers(0, 64))
def test_crossfade_weights_sum_to_one(length):
    w = kernels.fade_in_weights(length)
    assert w.shape == (length,)
    np.testing.assert_allclose(w + w[::-1], 1.0, atol=1e-6)  # fade-out of the old window is 1 - w
    assert np.all(np.diff(w) >= 0)


@settings(max_examples=60, deadline=None)
@given(channels=st.integers(1, 3), size_log2=st.integers(3, 8), pos=st.integers(0, 10_000), n=st.integers(0, 8), seed=st.integers(0, 99))
def test_ring_write_and_read_match_numpy(channels, size_log2, pos, n, seed):
    size = 1 << size_log2
    n = min(n * 7, size)
    rng = np.random.default_rng(seed)
    block = rng.standard_normal((channels, n)).astype(np.float32)
    ring_nb = rng.standard_normal((channels, size)).astype(np.float32)
    ring_np = ring_nb.copy()
    kernels.ring_write_nb(ring_nb, pos, block)
    kernels.ring_write_np(ring_np, pos, block)
    np.testing.assert_array_equal(ring_nb, ring_np)
    out_nb, out_np = np.empty_like(block), np.empty_like(block)
    kernels.ring_read_nb(ring_nb, pos, out_nb)
    kernels.ring_read_np(ring_np, pos, out_np)
    np.testing.assert_array_equal(out_nb, out_np)
    np.testing.assert_array_equal(out_nb, block)


@settings(max_examples=60, deadline=None)
@given(
    hops=st.integers(1, 5),
    channels=st.integers(1, 3),
    hop=st.integers(1, 40),
    lookahead=st.integers(0, 40),
    fade=st.integers(0, 40),
    seed=st.integers(0, 99),
)
def test_overlap_hops_matches_numpy(hops, channels, hop, lookahead, fade, seed):
    fade = min(fade, hop, lookahead)
    window = hop + lookahead + 17
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((hops, channels, window)).astype(np.float32)
    tail = rng.standard_normal((channels, fade)).astype(np.float32)
    w = kernels.fade_in_weights(fade)
    out_nb, out_np = np.zeros((channels, hops * hop), np.float32), np.zeros((channels, hops * hop), np.float32)
    tail_nb, tail_np = tail.copy(), tail.copy()
    start = window - lookahead - hop
    kernels.overlap_hops_nb(y, tail_nb, w, out_nb, start, hop)
    kernels.overlap_hops_np(y, tail_np, w, out_np, start, hop)
    np.testing.assert_allclose(out_nb, out_np, atol=1e-6)
    np.testing.assert_array_equal(tail_nb, tail_np)


def test_duplex_callback_plays_input_delayed_and_falls_back_to_dry():
    channels, delay, frames = 2, 5, 8
    ring = np.zeros((channels, 64), np.float32)
    out_ring = np.zeros_like(ring)
    st_, fst = kernels.new_state(channels, delay=delay, declick_samples=1)
    x = np.arange(1, 1 + 4 * frames * channels, dtype=np.float32).reshape(4 * frames, channels)
    played = []
    for b in range(4):
        out = np.zeros((frames, channels), np.float32)
        # the worker "enhances" by negating, but only ever gets 10 samples written
        st_[kernels.WATERMARK] = 10
        out_ring[:, :10] = -x[:10].T
        kernels.duplex_callback_nb(x[b * frames : (b + 1) * frames], out, ring, out_ring, st_, fst)
        played.append(out)
    y = np.concatenate(played)
    assert np.all(y[:delay] == 0)  # before the delay has elapsed: silence
    np.testing.assert_array_equal(y[delay : delay + 10], -x[:10])  # enhanced, D samples late
    # positions the worker never wrote play the dry input at the same delay (after the declick)
    np.testing.assert_allclose(y[delay + 12 :], x[12 : 4 * frames - delay], atol=1e-3)
    assert st_[kernels.MISS_EVENTS] == 1
    assert st_[kernels.MISSED] == 4 * frames - delay - 10


def test_a_switch_between_identical_sources_changes_nothing_even_on_a_transient():
    """The declick matches the two sources at the switch: when enhanced equals dry (an identity
    model), switching back and forth is inaudible, and a click that lands on a switch is kept."""
    st_, fst = kernels.new_state(1, delay=0, declick_samples=48)
    x = np.zeros(64, np.float32)
    x[[10, 20, 21, 40]] = [0.8, -0.5, 0.7, 0.9]  # clicks on and next to the switches
    ring = np.zeros((1, 128), np.float32)
    out_ring = np.zeros_like(ring)
    out_ring[0, :64] = x
    played = []
    for first, end, wm in ((0, 16, 10), (16, 32, 21), (32, 64, 40)):  # switches at 10, 16, 21, 32, 40
        out = np.zeros((end - first, 1), np.float32)
        st_[kernels.WATERMARK] = wm
        kernels.duplex_callback_nb(x[first:end, None], out, ring, out_ring, st_, fst)
        played.append(out[:, 0])
    np.testing.assert_allclose(np.concatenate(played), x, atol=1e-7)


def test_a_switch_to_a_different_source_is_declicked():
    st_, fst = kernels.new_state(1, delay=0, declick_samples=48)
    ring = np.zeros((1, 64), np.float32)
    out_ring = np.full((1, 64), 0.5, np.float32)  # "enhanced" is a constant 0.5, dry is silence
    st_[kernels.WATERMARK] = 16
    out = np.zeros((48, 1), np.float32)
    kernels.duplex_callback_nb(np.zeros((48, 1), np.float32), out, ring, out_ring, st_, fst)
    y = out[:, 0]
    assert y[15] == pytest.approx(0.5, abs=1e-6) and y[16] > 0.4  # no step at the switch
    assert np.all(np.diff(y[16:]) < 0) and abs(y[-1]) < 0.05  # then a smooth fade to the dry signal


def test_soft_limiter_never_reaches_full_scale():
    channels = 1
    st_, fst = kernels.new_state(channels, delay=0, limit_knee=0.9)
    st_[kernels.WATERMARK] = 1 << 30
    ring = np.zeros((1, 1024), np.float32)
    out_ring = (np.linspace(-8, 8, 1024, dtype=np.float32))[None, :]
    out = np.zeros((1024, 1), np.float32)
    kernels.duplex_callback_nb(np.zeros((1024, 1), np.float32), out, ring, out_ring, st_, fst)
    assert np.abs(out).max() <= kernels.LIMIT_CEILING < 1.0
    small = np.abs(out_ring[0]) <= 0.9
    np.testing.assert_allclose(out[small, 0], out_ring[0, small], atol=1e-6)
