"""The spectral streaming U-Net: identity at initialisation, streaming equals offline, state shapes,
bounded gains, and its stateful ONNX export run by the engine."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from rt_enhance.export.streaming import export_streaming
from rt_enhance.model import GeometryError, build_size, load_checkpoint, save_checkpoint
from rt_enhance.model.spectral import LOG_SCALE, SpectralUNet, erb_filterbank, window_pair
from rt_enhance.realtime import cli as rt_enhance

RATE = 48000


def small(seed: int = 0, **kwargs) -> SpectralUNet:
    torch.manual_seed(seed)
    kwargs = {"hop": 48, "channels": [4, 8, 8], "kernel": 3, "gru_hidden": 8, **kwargs}
    return SpectralUNet(**kwargs).eval()


def randomised(model: SpectralUNet, seed: int = 1) -> SpectralUNet:
    """Give the zero-initialised last layers random weights, so the gains differ from 1 (and the copies from 0)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        band_out = model.band_context.out if model.band_context is not None else None
        phase_out = model.df_phase[2] if model.df_phase is not None else None
        for head in (model.final, model.copy_head, model.df_head, band_out, phase_out, model.comb_in, model.comb_head, model.floor_in):
            if head is not None:
                head.weight.normal_(0, 0.5)
                head.bias.normal_(0, 0.5)
        for layer in model.modules():  # batch normalisation as training leaves it: statistics and affine of its own
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.running_mean.normal_(0, 0.5)
                layer.running_var.uniform_(0.2, 2.0)
                layer.weight.uniform_(0.5, 1.5)
                layer.bias.normal_(0, 0.3)
    return model


def test_a_fresh_model_is_the_identity_delayed_by_one_hop() -> None:
    model = small()
    x = torch.randn(2, 1, 48 * 30)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y[..., 48:], x[..., :-48], atol=1e-5, rtol=0)
    assert model.lookahead == model.total_stride == 48


@pytest.mark.parametrize(
    "gru,copies,bands,frame,df,comb",
    [
        (8, (), 0, 0, 0, 0),
        (0, (), 0, 0, 0, 0),
        (8, (2000.0, 6000.0), 0, 0, 0, 0),
        (8, (2000.0,), 16, 0, 0, 0),
        (8, (), 16, 192, 0, 0),
        (8, (), 16, 0, 10, 0),
        (8, (), 16, 0, -10, 0),
        (8, (), 16, 0, 10, 2),
        (8, (), 16, 0, 0, -1),
    ],
    ids=["gru", "no-gru", "copies", "bands", "long-frame", "deep-filter", "deep-filter-phase", "comb", "floor"],
)
def test_streaming_in_uneven_chunks_equals_offline(gru: int, copies: tuple[float, ...], bands: int, frame: int, df: int, comb: int) -> None:
    extra: dict = {"df_bins": abs(df), "df_order": 3, "df_phase": 6 if df < 0 else 0} if df else {}
    if comb < 0:  # the noise floor over 6 frames (the chunks below are shorter and longer than its window)
        extra["floor"], comb = 6, 0
    model = randomised(small(gru_hidden=gru, copies=copies, log_features=bool(copies), bands=bands, frame=frame, comb=comb, **extra))
    x = torch.randn(3, 1, 48 * 40)
    with torch.no_grad():
        whole = model(x)
        state, parts, pos = model.initial_state(3), [], 0
        for hops in (1, 3, 1, 7, 28):
            y, state = model.step(x[..., pos : pos + 48 * hops], state)
            parts.append(y)
            pos += 48 * hops
    torch.testing.assert_close(torch.cat(parts, dim=-1), whole, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(whole[..., 48:], x[..., :-48], atol=1e-3)  # the gains do something


def test_a_fresh_deep_filter_is_no_filter_and_a_gains_only_model_loads_into_it(tmp_path) -> None:
    plain = randomised(small(bands=12, log_features=True))
    path = tmp_path / "plain.pt"
    save_checkpoint(path, plain)
    filtered = small(bands=12, log_features=True, df_bins=10, df_order=3)
    missing = filtered.load_state_dict(load_checkpoint(path)[0].state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["df_head.bias", "df_head.weight"]
    assert filtered.state_names()[-1] == "df" and filtered.state_shapes()[-1] == (-1, 2, 20)
    x = torch.randn(2, 1, 48 * 30)
    with torch.no_grad():
        torch.testing.assert_close(filtered.eval()(x), plain(x), atol=1e-6, rtol=0)
        filtered.df_head.bias[0] = 1.0  # the current frame's tap, real part: the low bins come out louder
        louder = filtered(x)
    low = torch.stft(louder[0, 0], 96, 48, window=torch.hann_window(96), return_complex=True).abs()[:8].mean()
    base = torch.stft(plain(x)[0, 0], 96, 48, window=torch.hann_window(96), return_complex=True).abs()[:8].mean()
    assert low > 1.3 * base


def added_to_a_trained_model(tmp_path, **added) -> tuple[SpectralUNet, list[str]]:
    """A model with ``added`` loaded from a saved (randomised) one without it, and the weights it did not find there;
    asserts that it begins as the model without the addition."""
    plain = randomised(small(bands=12, log_features=True))
    save_checkpoint(tmp_path / "plain.pt", plain)
    model = small(bands=12, log_features=True, **added)
    missing = model.load_state_dict(load_checkpoint(tmp_path / "plain.pt")[0].state_dict(), strict=False).missing_keys
    x = torch.randn(2, 1, 48 * 30)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), plain(x), atol=1e-6, rtol=0)
    return model, sorted(missing)


def test_a_fresh_comb_changes_nothing_and_its_copies_lie_whole_pitch_periods_back(tmp_path) -> None:
    combed, missing = added_to_a_trained_model(tmp_path, comb=2)
    assert missing == ["comb_head.bias", "comb_head.weight", "comb_in.bias", "comb_in.weight"]
    assert combed.comb is not None
    assert combed.state_names()[-1] == "comb" and combed.state_shapes()[-1] == (-1, 1, combed.comb.history)
    comb = combed.comb
    t = torch.arange(RATE, dtype=torch.float64) / RATE
    for f0 in (95.0, 150.0, 217.3, 310.0):  # a voiced sound: harmonics of f0 with their own phases
        tone = sum(torch.sin(2 * torch.pi * f0 * h * t + h) / h for h in range(1, 25)).float()
        audio = torch.cat([torch.zeros(comb.history), tone])[None]
        m = RATE // comb.hop
        lags = comb.lags(audio, m)[0, m // 4 :]  # after the search's window has filled
        assert (lags - RATE / f0).abs().max() <= 1.0, (f0, lags.unique())
        frames = comb.frames(audio, m, comb.lags(audio, m))  # [1, m, copies, frame]
        assert frames.shape == (1, m, 2, comb.frame)
        start = comb.history + comb.hop * (m // 2 + 1) - comb.frame  # frame m/2's first sample
        now, lag = audio[0, start : start + comb.frame], int(comb.lags(audio, m)[0, m // 2])
        for k in (1, 2):  # each copy is the frame k periods back, which a steady tone repeats
            copy = frames[0, m // 2, k - 1]
            torch.testing.assert_close(copy, audio[0, start - k * lag : start - k * lag + comb.frame])
            assert (copy - now).norm() < 0.15 * now.norm(), (f0, k)  # an integer lag: a fraction of a sample off
    noise = torch.randn(1, comb.history + RATE)
    assert len(comb.lags(noise, m).unique()) > 20  # noise has no period: the search wanders


def test_the_deep_filter_is_the_sum_over_taps_of_each_coefficient_times_the_frame_that_many_back() -> None:
    model = small(bands=12, log_features=True, df_bins=10, df_order=3)
    b, m, k, order = 2, 7, 10, 3
    history = torch.randn(b, m + order - 1, 2 * k)  # oldest first: real | imaginary of the filtered bins
    coef = torch.randn(b, m, 2 * order, k)  # real parts of the taps, then imaginary
    out_re, out_im = model._deep_filter(history, coef, m)
    spectrum = torch.complex(history[..., :k], history[..., k:])
    taps = torch.complex(coef[:, :, :order], coef[:, :, order:])
    for t in range(m):  # frame t of the call is history row t + order - 1; tap i reads i frames back
        want = sum(taps[:, t, i] * spectrum[:, t + order - 1 - i] for i in range(order))
        torch.testing.assert_close(torch.complex(out_re[:, t], out_im[:, t]), want, atol=1e-5, rtol=1e-5)


def test_a_fresh_phase_correction_changes_nothing_and_sees_only_phase_moves_not_the_phase_itself(tmp_path) -> None:
    filtered = randomised(small(bands=12, log_features=True, df_bins=10, df_order=3))
    filtered.df_head.bias.data.zero_()
    path = tmp_path / "df.pt"
    save_checkpoint(path, filtered)
    phased = small(bands=12, log_features=True, df_bins=10, df_order=3, df_phase=6)
    missing = phased.load_state_dict(load_checkpoint(path)[0].state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["df_phase.0.bias", "df_phase.0.weight", "df_phase.2.bias", "df_phase.2.weight"]
    x = torch.randn(2, 1, 48 * 30)
    with torch.no_grad():
        torch.testing.assert_close(phased.eval()(x), filtered(x), atol=1e-6, rtol=0)  # it begins as the filter without it
        randomised(phased, seed=3)
        b, m, k, order = 2, 5, 10, 3
        history = torch.randn(b, m + order - 1, 2 * k)
        coef = torch.randn(b, m, 2 * order, k)
        power = torch.rand(b, m, phased.bins) + 0.1
        power[..., :k] = history[:, order - 1 :, :k].square() + history[:, order - 1 :, k:].square()
        turn = torch.polar(torch.ones(k), torch.rand(k) * 6.28)  # every bin's phase turned by its own constant
        spectrum = torch.complex(history[..., :k], history[..., k:]) * turn
        turned = torch.cat([spectrum.real, spectrum.imag], dim=-1)
        correction = phased._phase_correction(history, coef, power, m)
        assert correction.shape == coef.shape and correction.abs().max() > 0.05
        torch.testing.assert_close(phased._phase_correction(turned, coef, power, m), correction, atol=1e-5, rtol=1e-4)
        history[:, 0] = torch.randn(b, 2 * k)  # the frame two back moved: the correction of the first frame follows
        assert not torch.allclose(phased._phase_correction(history, coef, power, m)[:, 0], correction[:, 0])


def test_a_fresh_band_model_is_the_identity_delayed_by_one_hop() -> None:
    model = small(bands=12, log_features=True)
    x = torch.randn(2, 1, 48 * 30)
    with torch.no_grad():
        y = model(x)
    torch.testing.assert_close(y[..., 48:], x[..., :-48], atol=1e-5, rtol=0)


@pytest.mark.parametrize("frame,hop", [(96, 48), (192, 48), (480, 120), (960, 240)])
def test_the_window_pair_overlaps_to_one_and_the_synthesis_window_spans_two_hops(frame: int, hop: int) -> None:
    analysis, synthesis = window_pair(frame, hop)
    total = torch.zeros(frame + 8 * hop, dtype=torch.float64)
    for k in range(9):
        total[k * hop : k * hop + frame] += analysis * synthesis
    torch.testing.assert_close(total[frame : frame + 4 * hop], torch.ones(4 * hop, dtype=torch.float64))
    assert torch.all(synthesis[: frame - 2 * hop] == 0) and torch.all(synthesis[frame - 2 * hop + 1 :] > 0)
    assert torch.all(analysis[1:] > 0)


def test_a_long_frame_keeps_the_latency_of_two_hops_with_the_long_frame_s_bins() -> None:
    model = small(hop=48, frame=192, bands=16, log_features=True)
    assert model.bins == 97 and model.lookahead == model.total_stride == 48
    assert [s[-1] for s in model.state_shapes()] == [144, 8, 48]
    x = torch.randn(2, 1, 48 * 30)
    with torch.no_grad():
        y = model(x)
    torch.testing.assert_close(y[..., 48:], x[..., :-48], atol=1e-5, rtol=0)  # the identity, one hop late


def test_an_output_sample_depends_on_its_input_span_only() -> None:
    model = randomised(small(gru_hidden=0, frame=192))
    x = torch.randn(1, 1, 48 * 20)
    t = 48 * 10 + 5
    lo, hi = model.input_span(t)
    assert hi - lo + 1 == 192 + 48 - 1 == model.receptive_field
    with torch.no_grad():
        base = model(x)[0, 0, t]
        for position, inside in ((lo - 1, False), (lo, True), (hi, True), (hi + 1, False)):
            moved = x.clone()
            moved[0, 0, position] += 1.0
            changed = bool(model(moved)[0, 0, t] != base)  # outside the span: exactly the same float
            assert changed == inside, (position, lo, hi)


def test_frames_that_are_not_whole_hops_or_copies_on_a_long_frame_are_refused() -> None:
    with pytest.raises(ValueError, match="multiple of hop"):
        small(frame=120)
    with pytest.raises(ValueError, match="copies need frame"):
        small(frame=192, copies=(2000.0,))


@pytest.mark.parametrize("bins,bands", [(241, 48), (241, 32), (97, 32), (49, 49)])
def test_the_erb_filters_sum_to_one_in_every_bin_and_keep_the_lows_at_full_resolution(bins: int, bands: int) -> None:
    weights = erb_filterbank(bins, bands, RATE).double()
    assert weights.shape == (bands, bins) and weights.min() >= 0
    torch.testing.assert_close(weights.sum(dim=0), torch.ones(bins, dtype=torch.float64))
    assert (weights.sum(dim=1) > 0).all()  # no empty band
    assert weights[0, 0] == 1 and weights[1, 1] == 1  # the lowest bins are bands of their own
    centres = weights.argmax(dim=1)
    assert (centres[1:] > centres[:-1]).all() and centres[-1] == bins - 1


def test_a_band_model_costs_a_fraction_of_the_per_bin_one() -> None:
    per_bin = SpectralUNet(hop=240, channels=[12, 24, 32, 32], gru_hidden=128)
    banded = SpectralUNet(hop=240, channels=[12, 24, 32, 32], gru_hidden=128, bands=48)
    assert banded.macs(240) < 0.5 * per_bin.macs(240)
    assert banded.param_count() < 0.6 * per_bin.param_count()


def test_gains_stay_within_zero_and_max_gain() -> None:
    model = randomised(small(max_gain=1.5), seed=3)
    with torch.no_grad():
        model.final.bias.fill_(50.0)
        gains, _, _ = model.gains(torch.rand(2, 5, model.bins), None)
    assert torch.all(gains > 0) and torch.all(gains <= 1.5) and gains.max() > 1.49


def tone(hz: float, n: int) -> torch.Tensor:
    return torch.sin(2 * torch.pi * hz * torch.arange(n) / RATE).reshape(1, 1, n)


def peaks(y: torch.Tensor) -> dict[int, float]:
    """Amplitude spectrum of ``y``'s steady part, 10 Hz bins (1 s), keyed by frequency in Hz."""
    mag = torch.fft.rfft(y[0, 0, 4800 : 4800 + RATE // 10 * 10][: RATE // 10] * torch.hann_window(RATE // 10))
    return {10 * k: float(v) for k, v in enumerate(mag.abs() / (RATE // 40))}


def test_a_fresh_model_with_copies_is_the_identity_within_60_db() -> None:
    model = small(copies=(2000.0,), log_features=True)
    x = torch.randn(1, 1, 48 * 40)
    with torch.no_grad():
        y = model(x)
    error = (y[..., 48:] - x[..., :-48]).square().mean() / x.square().mean()
    assert 1e-8 < error < 1e-5  # the copy is there, 60 dB down


def test_a_copy_moves_a_tone_up_by_its_shift_as_a_clean_tone() -> None:
    """Spectral replication by an even number of bins is a coherent frequency shift: a 3.1 kHz tone
    (off the 100 Hz bins) comes out as itself plus one clean tone at 3.1 + 2 kHz, not a smear. (With
    frames as short as 2 ms, the window's leakage across 0 Hz would leave an image ~50 dB down.)"""
    model = small(copies=(2000.0,), hop=240)
    with torch.no_grad():
        model.copy_head.bias.fill_(50.0)  # copy gain 1
        y = model(tone(3100.0, RATE))
    spectrum = peaks(y)
    assert spectrum[3100] == pytest.approx(1.0, abs=0.02) and spectrum[5100] == pytest.approx(1.0, abs=0.02)
    stray = max(v for f, v in spectrum.items() if abs(f - 3100) > 300 and abs(f - 5100) > 300)
    assert stray < 1e-3  # everything else at least 60 dB down


def test_copies_must_be_at_least_two_bins_and_below_nyquist() -> None:
    with pytest.raises(ValueError, match="copies"):
        small(copies=(100.0,))  # under 2 bins of 500 Hz
    with pytest.raises(ValueError, match="copies"):
        small(copies=(24000.0,))
    assert small(copies=(2000.0, 5100.0)).shifts == [4, 10]


def test_log_features_tell_digital_silence_from_a_quiet_band() -> None:
    """With the log-power channel, the gains react to a top band ~100 dB down versus digital silence;
    from the compressed magnitude alone they barely can (same random weights on the shared channel)."""
    assert "log_features" not in small().init_kwargs

    def reaction(log_features: bool) -> float:
        model = randomised(small(log_features=log_features), seed=4)
        torch.manual_seed(5)
        with torch.no_grad():
            model.encoders[0][0].weight.normal_(0, 1.0)  # both channels weigh alike
            loud = torch.ones(1, 1, model.bins)
            quiet, silent = loud.clone(), loud.clone()
            quiet[..., model.bins // 2 :], silent[..., model.bins // 2 :] = 1e-5, 1e-8
            gains = [model.gains(mag, None)[0] for mag in (quiet, silent)]
        return float((gains[0] - gains[1]).abs().max())

    model = small(log_features=True)
    assert model.encoders[0][0].in_channels == 2 and model.init_kwargs["log_features"] is True
    assert reaction(True) > 5 * reaction(False)


def test_bad_chunks_and_states_are_refused() -> None:
    model = small()
    with pytest.raises(GeometryError, match="multiple"):
        model.step(torch.zeros(1, 1, 50), model.initial_state(1))
    with pytest.raises(GeometryError, match="state 'gru'"):
        model.step(torch.zeros(1, 1, 48), [torch.zeros(1, 1, 48), torch.zeros(1, 2, 8), torch.zeros(1, 1, 48)])
    with pytest.raises(ValueError, match="odd kernel"):
        SpectralUNet(kernel=4)


def test_checkpoint_round_trip(tmp_path) -> None:
    model = randomised(small())
    path = tmp_path / "m.pt"
    save_checkpoint(path, model)
    loaded = load_checkpoint(path)[0].eval()
    x = torch.randn(1, 1, 48 * 10)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_a_fresh_floor_changes_nothing_and_the_floor_is_the_quietest_recent_level(tmp_path) -> None:
    floored, missing = added_to_a_trained_model(tmp_path, floor=20)
    assert missing == ["floor_in.bias", "floor_in.weight"]
    assert floored.state_names()[-1] == "floor" and floored.state_shapes()[-1] == (-1, 19, 12)
    # a steady noise, then 20 dB louder for 10 frames, then steady again: per band, the level above the floor
    power = torch.ones(1, 60, floored.bins)
    power[:, 30:40] = 100.0
    empty = torch.zeros(1, 19, 12)
    above, state = floored.level_above_floor(power, empty)
    per_db = LOG_SCALE * math.log(10) / 10  # the log feature's units per dB
    torch.testing.assert_close(above[:, :30], torch.zeros(1, 30, 12), atol=1e-4, rtol=0)  # the noise is its own floor
    torch.testing.assert_close(above[:, 30:40], torch.full((1, 10, 12), 20 * per_db), atol=1e-3, rtol=0)
    torch.testing.assert_close(above[:, 40:], torch.zeros(1, 20, 12), atol=1e-4, rtol=0)
    # hop by hop the same (a stream's start takes its floor from the frames it has: zeros are no frame)
    parts, s = [], empty
    for t in range(60):
        a, s = floored.level_above_floor(power[:, t : t + 1], s)
        parts.append(a)
    torch.testing.assert_close(torch.cat(parts, dim=1), above)
    torch.testing.assert_close(s, state)
    with pytest.raises(ValueError, match="floor must be 0"):
        small(bands=12, floor=1)


@pytest.mark.parametrize(
    "size,hop",
    [
        ("spec-small", 240),
        ("spec-music", 240),
        ("spec-erb", 240),
        ("spec-erb-monitor", 120),
        ("spec-erb-df", 240),
        ("spec-erb-df-phase", 240),
        ("spec-erb-comb", 240),
        ("spec-erb-floor", 240),
        ("spec-erb-norm", 240),
        ("spec-erb-band", 240),
        ("spec-erb-wide", 240),
        ("spec-erb-long-df", 240),
        ("spec-erb-monitor-long-df", 120),
    ],
)
def test_the_named_size_builds_and_reports_its_cost(size: str, hop: int) -> None:
    model = build_size(size)
    info = model.describe(hop)
    assert isinstance(model, SpectralUNet) and info["total_stride"] == hop and info["lookahead"] == hop
    assert 0.1e9 < info["macs_per_second"] < 2e9 and info["params"] < 2_000_000


@pytest.mark.parametrize(
    "copies,bands,frame,df,band_gru,comb,norm",
    [
        ((), 0, 0, 0, 0, 0, False),
        ((2000.0, 6000.0), 0, 0, 0, 0, 0, False),
        ((), 16, 0, 0, 0, 0, False),
        ((), 16, 192, 0, 0, 0, False),
        ((), 16, 0, 10, 0, 0, False),
        ((), 16, 0, 10, 8, 0, False),
        ((), 16, 0, -10, 0, 0, False),
        ((), 16, 0, 0, 0, 2, False),
        ((), 16, 0, 0, 0, -40, False),
        ((), 16, 0, 0, 0, 0, True),
    ],
    ids=["gains", "copies", "bands", "long-frame", "deep-filter", "band-gru", "deep-filter-phase", "comb", "floor", "batch-norm"],
)
def test_export_and_rt_enhance_file_mode_equal_torch_offline(
    tmp_path, copies: tuple[float, ...], bands: int, frame: int, df: int, band_gru: int, comb: int, norm: bool
) -> None:
    extra: dict = {"df_bins": abs(df), "df_order": 3, "df_phase": 6 if df < 0 else 0} if df else {}
    if band_gru:
        extra["band_gru"] = band_gru
    if comb > 0:
        extra["comb"] = comb
    if comb < 0:  # a noise floor over 40 frames: file mode's calls are longer and shorter than its window
        extra["floor"] = -comb
    if norm:
        extra["norm"] = True
    model = randomised(small(copies=copies, log_features=bool(copies), bands=bands, frame=frame, **extra))
    out = tmp_path / "spec.onnx"
    report = export_streaming(model, out, hop=96, sample_rate=RATE, meta={"name": "spec-test"}, parity_seconds=1.0)
    assert all(f.relative < 1e-4 for f in report.fp32)
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal(48 * 200)).astype(np.float32)
    sf.write(tmp_path / "in.wav", audio, RATE, subtype="FLOAT")
    code = rt_enhance.main(["--in", str(tmp_path / "in.wav"), "--out", str(tmp_path / "out.wav"), "--model", str(out), "-q"])
    assert code == 0
    y, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    with torch.no_grad():
        ref = model(torch.from_numpy(np.concatenate([audio, np.zeros(48, np.float32)]))[None, None])[0, 0].numpy()
    # file mode compensates the model's delay: output t is the enhancement of input t
    np.testing.assert_allclose(y, ref[48 : 48 + audio.size], atol=2e-4)
