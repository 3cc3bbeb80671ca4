"""Geometry flags, presets, and the live delay formula's guarantee."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rt_enhance.realtime.geometry import Geometry, GeometryError, live_delay, parse_duration, resolve


def test_parse_duration_samples_and_ms():
    assert parse_duration("240", 48000, "hop") == 240
    assert parse_duration("5ms", 48000, "hop") == 240
    assert parse_duration("2.5 ms", 16000, "hop") == 40
    for bad in ("-5", "five", "1.5", "5s"):
        with pytest.raises(GeometryError, match="--hop"):
            parse_duration(bad, 48000, "hop")


def test_presets_and_flags_override_model_defaults():
    base = dict(sample_rate=48000, window=2048, default_hop=480, default_lookahead=480, default_crossfade=240)
    assert resolve(**base).hop == 480
    low = resolve(**base, preset="low")
    assert (low.hop, low.lookahead, low.crossfade) == (240, 240, 120)
    assert resolve(**base, preset="low", hop="10ms").hop == 480
    with pytest.raises(GeometryError, match="unknown preset"):
        resolve(**base, preset="fastest")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(hop=0, lookahead=0, crossfade=0), "hop must be positive"),
        (dict(hop=1024, lookahead=1500, crossfade=0), "exceeds the model window"),
        (dict(hop=256, lookahead=64, crossfade=128), "crossfade"),
    ],
)
def test_impossible_geometry_is_refused(kwargs, message):
    with pytest.raises(GeometryError, match=message):
        Geometry(sample_rate=48000, window=2048, **kwargs)


def test_classic_half_overlap_is_allowed():
    g = resolve(sample_rate=16000, window=2048, default_hop=1024, default_lookahead=512, default_crossfade=512)
    assert g.kept_start == 512 and g.latency == 1536


@given(hop=st.integers(1, 2000), lookahead=st.integers(0, 500), block=st.integers(1, 2000))
def test_live_delay_gives_the_worker_a_hop_of_time(hop, lookahead, block):
    """For every hop, the time from the callback that completes it to the callback that first plays
    its output is at least one hop and at least one callback period."""
    d = live_delay(hop, lookahead, block)
    for k in range(0, 3 * block // math.gcd(hop, block) + 3):
        completes = (k * hop + hop - 1) // block  # callback delivering the hop's last input sample
        first_out = k * hop - lookahead  # aligned position of the hop's first output sample
        needed = (first_out + d) // block  # callback whose output block holds that position
        assert (needed - completes) * block >= max(hop, block)
    if block == hop:
        assert d == hop + lookahead


def test_a_preset_a_streaming_model_cannot_meet_is_rounded_and_said(caplog):
    from rt_enhance.realtime.geometry import resolve_stateful

    with caplog.at_level("WARNING"):
        g = resolve_stateful(sample_rate=48000, receptive_field=480, default_hop=240, lookahead=240, stride=240, preset="monitor")
    assert g.hop == 240 and g.lookahead == 240
    assert "algorithmic latency is 10.0 ms, not 5.0 ms" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        resolve_stateful(sample_rate=48000, receptive_field=480, default_hop=240, lookahead=240, stride=240, preset="low")
    assert caplog.text == ""
