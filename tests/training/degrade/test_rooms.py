"""The room simulator (corpus rooms and ``rir simulate``): a dominant direct path where it says, its RT60."""

from __future__ import annotations

import numpy as np
import pytest

from rt_enhance.training.degrade import rooms

RATE = 48000


def test_room_response_has_a_dominant_direct_path_and_its_rt60():
    pytest.importorskip("pyroomacoustics")
    rir, room = rooms.simulate(0.5 / rooms.SABINE_BIAS, RATE, np.random.default_rng(0))
    assert int(np.argmax(np.abs(rir))) == rooms.DIRECT_INDEX
    assert rir[rooms.DIRECT_INDEX] == pytest.approx(rooms.DIRECT_LEVEL)
    assert 0.35 < rooms.measure_rt60(rir, RATE) < 0.65
    assert all(0 < c < d for c, d in zip(room.mic, room.dims, strict=True))
