"""Losses and batch metrics: values, alignment of lookahead models, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rt_enhance.training import losses
from rt_enhance.training.metrics import si_sdr, snr


def _signals(batch: int = 3, n: int = 2048, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    clean = torch.stack([0.3 * torch.sin(2 * math.pi * (200 + 50 * i) * t) for i in range(batch)])[:, None]
    return clean + 0.05 * torch.randn(clean.shape, generator=g), clean


def test_waveform_losses() -> None:
    y, target = torch.tensor([[[1.0, -2.0]]]), torch.zeros(1, 1, 2)
    assert losses.waveform_loss(y, target, "L1").item() == pytest.approx(1.5)
    assert losses.waveform_loss(y, target, "L2").item() == pytest.approx(2.5)
    with pytest.raises(ValueError):
        losses.waveform_loss(y, target, "L3")


def test_align_pairs_output_t_with_target_t_minus_lookahead() -> None:
    target = torch.arange(10.0).view(1, 1, 10)
    y = torch.cat([torch.zeros(1, 1, 3), target[..., :-3]], dim=-1)  # a perfect model with lookahead 3
    a, b = losses.align(y, target, 3)
    assert torch.equal(a, b) and a.shape[-1] == 7
    assert losses.align(y, target, 0)[0] is y
    padded = losses.align_padded(y, 3, output=True)
    assert padded.shape == y.shape and torch.equal(padded, losses.align_padded(target, 3, output=False))


def test_mr_stft_is_zero_on_identity_and_grows_with_error() -> None:
    noisy, clean = _signals()
    loss = losses.MultiResolutionSTFTLoss()
    assert loss(clean, clean).item() == pytest.approx(0.0, abs=1e-6)
    worse = clean + 0.2 * (noisy - clean)
    assert 0 < loss(worse, clean).item() < loss(noisy, clean).item()


def test_mr_stft_skips_ffts_longer_than_the_window_and_has_gradients() -> None:
    noisy, clean = _signals(n=1024)
    y = noisy.clone().requires_grad_(True)
    value = losses.MultiResolutionSTFTLoss((512, 1024, 2048))(y, clean)
    value.backward()
    assert torch.isfinite(value) and y.grad is not None and y.grad.abs().sum() > 0
    short = losses.MultiResolutionSTFTLoss((2048,))(noisy[..., :300], clean[..., :300])  # falls back to 256
    assert torch.isfinite(short)


def test_feature_loss_sends_no_gradient_to_the_target_side() -> None:
    a, b = torch.randn(2, 8, 16, requires_grad=True), torch.randn(2, 8, 16, requires_grad=True)
    losses.feature_loss(a, b).backward()
    assert a.grad is not None and b.grad is None


def test_batch_metrics_match_the_evaluation_metrics() -> None:
    noisy, clean = _signals()
    got_sdr, got_snr = losses.batch_si_sdr(noisy, clean), losses.batch_snr(noisy, clean)
    for i in range(noisy.shape[0]):
        ref, est = clean[i, 0].numpy().astype(np.float64), noisy[i, 0].numpy().astype(np.float64)
        assert got_sdr[i].item() == pytest.approx(si_sdr(ref, est), abs=1e-3)
        assert got_snr[i].item() == pytest.approx(snr(ref, est), abs=1e-3)
    assert torch.allclose(losses.batch_si_sdr(3.0 * noisy, clean), got_sdr, atol=1e-4)  # scale invariant


def test_stft_loss_stays_bounded_on_silent_targets():
    """Digital silence in the target (pauses, padding) must not dominate the loss: -60 dB of noise
    against silence costs about as much as a small error on loud audio, not a million times more."""
    import torch

    from rt_enhance.training.losses import MultiResolutionSTFTLoss

    torch.manual_seed(0)
    loss = MultiResolutionSTFTLoss()
    silence = torch.zeros(2, 1, 8192)
    whisper = 1e-3 * torch.randn(2, 1, 8192)
    loud = 0.3 * torch.randn(2, 1, 8192)
    assert loss(whisper, silence).item() < 3.0
    assert loss(loud * 1.1, loud).item() < loss(whisper * 100, silence).item()
    assert loss(loud, loud).item() < 1e-6


def test_compressed_spectral_loss_is_zero_for_a_match_and_bounded_on_silence() -> None:
    from rt_enhance.training.losses import waveform_loss

    torch.manual_seed(0)
    clean = torch.randn(2, 1, 9600) * 0.1
    best = -losses.SPEC_SDR_WEIGHT * losses.SDR_CEILING_DB  # the spectral part is 0, the SDR term saturated
    assert waveform_loss(clean, clean, "SPEC").item() == pytest.approx(best, abs=1e-4)
    noisy = clean + 0.05 * torch.randn_like(clean)
    quieter = 0.5 * clean
    assert waveform_loss(noisy, clean, "SPEC").item() > best + 0.5
    assert waveform_loss(quieter, clean, "SPEC").item() > best + 0.5  # a clean input played back quieter is an error
    silent = torch.zeros(2, 1, 9600)
    assert waveform_loss(noisy, silent, "SPEC").item() < 1e3  # no division by a silent target's level
    # the same relative error on a loud and on a quiet clip weighs alike
    assert waveform_loss(100 * noisy, 100 * clean, "SPEC").item() == pytest.approx(waveform_loss(noisy, clean, "SPEC").item(), abs=0.05)


def test_denoise_loss_weighs_noise_left_in_above_speech_taken_out() -> None:
    torch.manual_seed(0)
    clean = torch.randn(2, 1, 9600) * 0.1
    best = -losses.DENOISE_SDR_WEIGHT * losses.SDR_CEILING_DB
    assert losses.waveform_loss(clean, clean, "DENOISE").item() == pytest.approx(best, abs=1e-4)
    louder, quieter = 1.25 * clean, 0.75 * clean  # the same error in amplitude, either side of the target

    def excess(kind: str, y: torch.Tensor) -> float:
        floor = -(losses.DENOISE_SDR_WEIGHT if kind == "DENOISE" else losses.SPEC_SDR_WEIGHT)
        return losses.waveform_loss(y, clean, kind).item() - floor * losses.clamped_sdr(y, clean).mean().item()

    # the spectral part (magnitude + complex terms, equal here: the phase is right): too loud (noise left in)
    # costs the magnitude term once more, 1.5 times what SPEC charges; too quiet costs the same
    assert excess("DENOISE", louder) == pytest.approx(1.5 * excess("SPEC", louder), rel=0.02)
    assert excess("DENOISE", quieter) == pytest.approx(excess("SPEC", quieter), rel=0.02)


def test_log_spectral_distance_is_the_benchmark_lsd_and_rewards_restoring_a_quiet_band() -> None:
    from rt_enhance.training.metrics import lsd

    rng = np.random.default_rng(0)
    clean = rng.standard_normal(24000).astype(np.float32) * 0.1
    spectrum = np.fft.rfft(clean)
    spectrum[len(spectrum) // 4 :] *= 1e-3  # a top band 60 dB down: quiet, but the LSD counts it
    target = np.fft.irfft(spectrum, n=clean.size).astype(np.float32)
    cut = spectrum.copy()
    cut[len(spectrum) // 4 :] = 0
    degraded = np.fft.irfft(cut, n=clean.size).astype(np.float32)
    as_torch = lambda a: torch.from_numpy(a)[None, None]  # noqa: E731
    ours = float(losses.log_spectral_distance(as_torch(degraded), as_torch(target)))
    assert ours == pytest.approx(lsd(target, degraded), rel=1e-3)
    assert ours > 1.0  # the missing quiet band dominates
    assert float(losses.log_spectral_distance(as_torch(target), as_torch(target))) < 1e-2
    both = losses.waveform_loss(as_torch(degraded), as_torch(target), "BWE")
    spec = losses.waveform_loss(as_torch(degraded), as_torch(target), "SPEC")
    assert float(both - spec) == pytest.approx(losses.LSD_WEIGHT * ours, rel=1e-4)


def test_lsd_weight_adds_the_log_spectral_distance_to_any_loss() -> None:
    from rt_enhance.training.config import make_config, parse_flags
    from rt_enhance.training.trainer import Objective

    torch.manual_seed(0)
    target = 0.1 * torch.randn(2, 1, 4800)
    y = target + 0.01 * torch.randn(2, 1, 4800)
    plain, weighted = Objective(loss="SPEC"), Objective(loss="SPEC", lsd=2.0)
    lsd = losses.log_spectral_distance(y, target)
    assert lsd > 0
    assert torch.allclose(weighted.reconstruction(y, target), plain.reconstruction(y, target) + 2.0 * lsd)
    assert plain.reconstruction(y, target) == losses.waveform_loss(y, target, "SPEC")
    flags, _ = parse_flags(["--lsd", "1.5", "--loss", "BWE"])
    assert Objective.of(make_config(flags)).lsd == 1.5


def test_the_sdr_weight_replaces_the_spectral_losses_own_and_is_refused_where_there_is_none() -> None:
    from rt_enhance.training.config import ConfigError, check_config, make_config, parse_flags, stored_layer
    from rt_enhance.training.trainer import Objective

    torch.manual_seed(0)
    target = 0.1 * torch.randn(2, 1, 4800)
    y = target + 0.05 * torch.randn(2, 1, 4800)
    sdr = losses.clamped_sdr(y, target).mean()
    own, none = Objective(loss="SPEC").reconstruction(y, target), Objective(loss="SPEC", sdr=0.0).reconstruction(y, target)
    assert torch.allclose(none - own, losses.SPEC_SDR_WEIGHT * sdr)  # the default weight, and no term at 0
    light = Objective(loss="DENOISE", sdr=0.03).reconstruction(y, target)
    assert torch.allclose(Objective(loss="DENOISE").reconstruction(y, target) - light, (0.03 - losses.DENOISE_SDR_WEIGHT) * sdr)
    flags, _ = parse_flags(["--sdr", "0.01", "--loss", "SPEC"])
    assert Objective.of(make_config(flags)).sdr == 0.01
    for bad in (["--sdr", "0.01", "--loss", "L1"], ["--sdr", "-2", "--loss", "SPEC"], ["--sdr", "-1", "--loss", "SPEC"]):
        with pytest.raises(ConfigError):
            check_config(make_config(parse_flags(bad)[0]))
    assert stored_layer({"loss": "SPEC", "sdr": -1.0})["sdr"] is None  # a run stored before None meant "not given"
    assert stored_layer({"loss": "SPEC", "sdr": None})["sdr"] is None


def test_erb_weighting_counts_an_error_where_hearing_resolves_it_and_is_refused_where_there_is_no_spectral_loss() -> None:
    from rt_enhance.training.config import ConfigError, check_config, make_config, parse_flags
    from rt_enhance.training.trainer import Objective

    weights = losses.erb_bin_weights(48000)
    assert weights.shape == (losses.SPEC_FFT // 2 + 1,) and abs(weights.mean().item() - 1.0) < 1e-5
    assert bool((weights[1:] < weights[:-1]).all())  # falls with frequency: wider auditory bands, less per bin
    t = torch.arange(9600) / 48000
    torch.manual_seed(0)
    target = 0.05 * torch.randn(1, 1, 9600)  # as loud at every frequency
    low = target + (0.01 * torch.sin(2 * torch.pi * 500 * t)).reshape(1, 1, -1)  # the same error, low or high
    high = target + (0.01 * torch.sin(2 * torch.pi * 15000 * t)).reshape(1, 1, -1)
    flat, erb = Objective(loss="SPEC", sdr=0.0), Objective(loss="SPEC", sdr=0.0, spec_weighting="erb")
    assert flat.reconstruction(low, target).item() == pytest.approx(flat.reconstruction(high, target).item(), rel=0.35)
    assert erb.reconstruction(low, target).item() > 10 * erb.reconstruction(high, target).item()
    assert erb.reconstruction(target, target).item() == pytest.approx(0.0, abs=1e-6)
    assert Objective.of(make_config(parse_flags(["--spec_weighting", "erb", "--loss", "SPEC"])[0])).spec_weighting == "erb"
    for bad in (["--spec_weighting", "erb", "--loss", "L2"], ["--spec_weighting", "bark", "--loss", "SPEC"]):
        with pytest.raises(ConfigError):
            check_config(make_config(parse_flags(bad)[0]))


def test_perceptual_disturbance_follows_pesq_weighs_noise_left_in_and_is_added_by_its_weight() -> None:
    from rt_enhance.training.config import ConfigError, check_config, make_config, parse_flags
    from rt_enhance.training.degrade.noisegen import babble
    from rt_enhance.training.metrics import pesq_wb
    from rt_enhance.training.trainer import Objective

    rate = 48000
    rng = np.random.default_rng(0)
    clean = (0.1 * babble(3 * rate, rate, rng)).astype(np.float32)  # syllable-modulated: pauses and peaks
    noise = rng.standard_normal(clean.size).astype(np.float32)
    noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2))
    as_torch = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None]  # noqa: E731

    def disturbance(y: np.ndarray) -> float:
        return losses.perceptual_disturbance(as_torch(y), as_torch(clean), rate).item()

    # ordered as PESQ-wb orders them: more noise, more disturbance; none for the target itself
    noisy = {snr: clean + noise * 10 ** (-snr / 20) for snr in (0, 10, 20)}
    scores = {snr: pesq_wb(clean, y, rate) for snr, y in noisy.items()}
    assert scores[0] < scores[10] < scores[20]
    assert disturbance(noisy[0]) > disturbance(noisy[10]) > disturbance(noisy[20]) > disturbance(clean) == pytest.approx(0, abs=1e-3)
    # noise left in (the output louder than the target) counts more than the same loudness error as speech taken out
    louder, quieter = 2 * clean, clean / 2  # 6 dB either way
    assert disturbance(louder) > 2 * disturbance(quieter) > 0
    # bounded on a silent target, and gradients reach the output
    y = (0.01 * torch.randn(1, 1, rate)).requires_grad_()
    value = losses.perceptual_disturbance(y, torch.zeros(1, 1, rate), rate)
    assert math.isfinite(value.item()) and value.item() < 1e3
    value.backward()
    assert y.grad is not None and bool(torch.isfinite(y.grad).all()) and y.grad.abs().sum() > 0
    # --pesq adds it with its weight; refused when negative
    target, out = as_torch(clean), as_torch(noisy[10])
    plain, weighted = Objective(loss="SPEC"), Objective(loss="SPEC", pesq=0.2)
    extra = weighted.reconstruction(out, target) - plain.reconstruction(out, target)
    assert extra.item() == pytest.approx(0.2 * disturbance(noisy[10]), rel=1e-4)
    assert Objective.of(make_config(parse_flags(["--pesq", "0.2", "--loss", "SPEC"])[0])).pesq == 0.2
    with pytest.raises(ConfigError):
        check_config(make_config(parse_flags(["--pesq", "-1", "--loss", "SPEC"])[0]))
