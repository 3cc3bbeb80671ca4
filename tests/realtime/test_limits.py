"""Bounds on everything a file, a model's metadata or a flag can make large (hypothesis over all of them)."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rt_enhance.realtime import cli, limits
from rt_enhance.realtime.geometry import Geometry, GeometryError, resolve, resolve_stateful
from rt_enhance.realtime.metadata import ModelError, parse_props
from rt_enhance.realtime.processor import PassthroughProcessor
from rt_enhance.realtime.streamer import Streamer

HUGE = st.one_of(st.integers(-10, 10), st.integers(-(10**13), 10**13), st.sampled_from([0, 1, 2**20, 2**20 + 1, 10**9, 10**12]))


def within(what: str, value: int) -> bool:
    low, high, _ = limits.bounds(what)
    return low <= value <= high


@settings(max_examples=300, deadline=None)
@given(rate=HUGE, window=HUGE, hop=HUGE, lookahead=HUGE, crossfade=HUGE)
def test_metadata_outside_the_bounds_is_refused_with_the_key_named(rate, window, hop, lookahead, crossfade):
    props = {"sample_rate": str(rate), "window": str(window), "hop": str(hop), "lookahead": str(lookahead), "crossfade": str(crossfade)}
    try:
        info = parse_props(props, "m.onnx")
    except ModelError as exc:
        assert str(exc).startswith("m.onnx: ") and "\n" not in str(exc)
        return
    assert within("sample rate", info.sample_rate) and within("window", info.window) and within("hop", info.hop)
    assert within("lookahead", info.lookahead) and within("crossfade", info.crossfade)


@settings(max_examples=200, deadline=None)
@given(stride=HUGE, state=st.lists(st.integers(-3, 10**5), min_size=1, max_size=4))
def test_stateful_metadata_bounds(stride, state):
    shape = [-1, *state]
    props = {
        "sample_rate": "48000",
        "window": "480",
        "hop": str(max(stride, 1) * 2),
        "lookahead": "0",
        "crossfade": "0",
        "kind": "stateful",
        "total_stride": str(stride),
        "state_inputs": '["s"]',
        "state_outputs": '["t"]',
        "state_shapes": json.dumps([shape]),
    }
    try:
        info = parse_props(props, "m.onnx")
    except ModelError as exc:
        assert "\n" not in str(exc)
        return
    size = int(np.prod([max(d, 1) for d in state]))
    assert within("total stride", info.total_stride) and within("state size", size)


def parse(*argv: str):
    return cli.build_parser().parse_args(["--in", "x.wav", "--out", "y.wav", *argv])


@settings(max_examples=300, deadline=None)
@given(flag=st.sampled_from(["--threads", "--rate", "--channels", "--blocksize"]), value=HUGE)
def test_numeric_flags_are_bounded(flag, value):
    args = parse(flag, str(value))
    what = {"--rate": "sample rate"}.get(flag, flag[2:])
    try:
        cli._check_args(args)
    except (cli.UsageError, limits.LimitError) as exc:
        assert flag in str(exc) and "\n" not in str(exc)
        return
    assert within(what, value)


@settings(max_examples=200, deadline=None)
@given(hop=st.one_of(st.integers(0, 10**12).map(str), st.integers(0, 10**7).map(lambda v: f"{v}ms")), stateful=st.booleans())
def test_hop_flag_is_bounded(hop, stateful):
    try:
        if stateful:
            g = resolve_stateful(sample_rate=48000, receptive_field=480, default_hop=240, lookahead=240, stride=240, hop=hop)
        else:
            g = resolve(
                sample_rate=48000,
                window=2048,
                default_hop=480,
                default_lookahead=480,
                default_crossfade=240,
                hop=hop,
                lookahead="0",
                crossfade="0",
            )
    except GeometryError as exc:
        assert str(exc).startswith("--hop") or "hop" in str(exc)
        assert " or ".join([str(240)] * 2) not in str(exc)
        return
    assert 0 < g.hop <= limits.bounds("hop")[1]


class CountingPassthrough(PassthroughProcessor):
    """The identity, recording the largest batch the engine hands it."""

    largest = 0

    def run(self, windows):
        CountingPassthrough.largest = max(CountingPassthrough.largest, windows.size)
        return windows


@pytest.mark.parametrize("channels", [1, 8])
def test_the_model_never_sees_more_than_a_bounded_block(channels):
    """One 4 M-sample block (a 1 Hz file upsampled to 48 kHz once made one of 38.7 M) is cut up."""
    base = PassthroughProcessor.at_rate(48000)
    processor = CountingPassthrough(info=base.info, is_identity=False)
    g = Geometry(48000, 1024, 256, 128, 64)
    streamer = Streamer(processor, g, channels)
    x = np.random.default_rng(0).standard_normal((channels, 4_000_000 // channels), dtype=np.float32)
    y = np.concatenate([streamer.feed(x), streamer.flush()], axis=1)
    np.testing.assert_allclose(y, x, atol=1e-5)
    assert CountingPassthrough.largest <= limits.MAX_CALL_SAMPLES + channels * g.window
