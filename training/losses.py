"""Losses of the generator and discriminator, and the batch metrics of validation.

All signals are float32 ``[batch, 1, samples]``. Models with a lookahead ``L`` (the causal
variant) estimate ``clean[t - L]`` at output ``t``; :func:`align` pairs them up before any loss.

- waveform L1 / L2 (the original work's L2); the compressed spectral loss (SPEC); SPEC plus the
  log-spectral distance (BWE), for bandwidth extension;
- multi-resolution STFT loss (spectral convergence + log-magnitude L1, Yamamoto et al. 2020);
- adversarial: each discriminator's own (model/discriminator.py, model/multidisc.py);
- feature loss: distance between autoencoder bottleneck features of output and target (MU-GAN).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

_EPS = 1e-8


def align(y: torch.Tensor, target: torch.Tensor, lookahead: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair output ``y[..., t]`` with ``target[..., t - lookahead]``; both cropped to ``samples - lookahead``."""
    if lookahead <= 0:
        return y, target
    return y[..., lookahead:], target[..., :-lookahead]


def align_padded(x: torch.Tensor, lookahead: int, *, output: bool) -> torch.Tensor:
    """One side of :func:`align`, zero-padded back to the full length (for fixed-window networks):
    ``output=True`` drops the first ``lookahead`` samples, else the last."""
    if lookahead <= 0:
        return x
    kept = x[..., lookahead:] if output else x[..., :-lookahead]
    return F.pad(kept, (0, lookahead))


def waveform_loss(
    y: torch.Tensor, target: torch.Tensor, kind: str = "L2", sdr_weight: float | None = None, bin_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean absolute (``L1``) or squared (``L2``) error, the compressed spectral loss (``SPEC``), or SPEC plus
    LSD_WEIGHT times the log-spectral distance (``BWE``); a scalar. ``sdr_weight`` replaces the spectral losses'
    own weight of the clamped SDR term (SPEC_SDR_WEIGHT, DENOISE_SDR_WEIGHT); ``bin_weights`` weighs the spectral
    losses' bins (:func:`erb_bin_weights`; ``None``: all alike)."""
    own = SPEC_SDR_WEIGHT if sdr_weight is None else sdr_weight
    if kind == "L1":
        return F.l1_loss(y, target)
    if kind == "L2":
        return F.mse_loss(y, target)
    if kind == "SPEC":
        return compressed_spectral_loss(y, target, sdr_weight=own, bin_weights=bin_weights)
    if kind == "DENOISE":
        denoise = DENOISE_SDR_WEIGHT if sdr_weight is None else sdr_weight
        return compressed_spectral_loss(y, target, over_weight=DENOISE_OVER_WEIGHT, sdr_weight=denoise, bin_weights=bin_weights)
    if kind == "BWE":
        spectral = compressed_spectral_loss(y, target, sdr_weight=own, bin_weights=bin_weights)
        return spectral + LSD_WEIGHT * log_spectral_distance(y, target)
    raise ValueError(f"unknown waveform loss {kind!r}; expected L1, L2, SPEC, DENOISE or BWE")


SPEC_FFT = 960  # 20 ms at 48 kHz, hop 240
SPEC_POWER = 0.3
SPEC_LEVEL_FLOOR = 0.1  # compressed energy of a clip near -55 dBFS: quieter targets are not scaled up further
SPEC_SDR_WEIGHT = 0.05  # per dB of the clamped SDR term
# DENOISE: SPEC tilted against residual noise. An output louder than the target in a bin is noise left in, which
# listeners (and PESQ) hear in the pauses; the SDR term (a waveform MSE) settles for Wiener-like partial gains.
DENOISE_OVER_WEIGHT = 1.0  # the squared compressed excess counts this much more
DENOISE_SDR_WEIGHT = 0.01
SDR_CEILING_DB = 30.0  # the SDR term stops rewarding beyond this: inaudible, and a perfect identity has no finite SDR


@functools.lru_cache(maxsize=4)
def erb_bin_weights(rate: int, fft: int = SPEC_FFT) -> torch.Tensor:
    """Per bin of a ``fft``-point transform at ``rate`` Hz, ``1 / ERB(f)`` (Glasberg and Moore: ``24.7 (4.37 f / 1000
    + 1)`` Hz) scaled to a mean of one: each auditory band weighs alike, as hearing (and PESQ) weighs them, where a flat
    sum over bins gives the octaves above 8 kHz two thirds of a 48 kHz spectrum's weight. Computed once per rate
    (cached: the loss asks for it every step); callers read it, never write it."""
    freqs = torch.arange(fft // 2 + 1, dtype=torch.float32) * (rate / fft)
    weights = 1.0 / (24.7 * (4.37 * freqs / 1000.0 + 1.0))
    return weights / weights.mean()


def compressed_spectral_loss(
    y: torch.Tensor,
    target: torch.Tensor,
    over_weight: float = 0.0,
    sdr_weight: float = SPEC_SDR_WEIGHT,
    bin_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Power-law compressed spectral distance (as GTCRN and DeepFilterNet train): the squared error of
    ``|Y|^0.3`` against ``|S|^0.3`` plus that of the compressed complex spectra (``Y / |Y|^0.7``),
    scaled by the target's compressed energy per item so loud and quiet clips weigh alike, minus
    SPEC_SDR_WEIGHT times the clamped SDR (:func:`clamped_sdr`). The compression makes quiet detail
    matter (unlike L1/L2 on samples), the complex term keeps phase and time alignment, the SDR term
    keeps clean input intact, and silent targets stay bounded (no division by their level). ``over_weight``
    adds that much again of the squared compressed error where the output exceeds the target (noise left in).
    ``bin_weights`` ``[fft // 2 + 1]`` weighs each bin's errors and energy (:func:`erb_bin_weights`)."""
    window = torch.hann_window(SPEC_FFT, device=y.device, dtype=torch.float32)

    def spec(x: torch.Tensor) -> torch.Tensor:
        return torch.stft(x.reshape(-1, x.shape[-1]).float(), SPEC_FFT, SPEC_FFT // 4, window=window, return_complex=True)

    sy, st = spec(y), spec(target)
    my, mt = sy.abs().clamp_min(1e-8), st.abs().clamp_min(1e-8)
    cy, ct = my.pow(SPEC_POWER), mt.pow(SPEC_POWER)
    w = 1.0 if bin_weights is None else bin_weights.to(y.device)[:, None]  # [bins, 1]: over frames alike

    def mean(e: torch.Tensor) -> torch.Tensor:
        return (w * e).mean(dim=(1, 2))

    mag = mean((cy - ct).pow(2))
    if over_weight:
        mag = mag + over_weight * mean(F.relu(cy - ct).pow(2))
    phase = mean((sy * (cy / my) - st * (ct / mt)).abs().pow(2))
    level = mean(ct.pow(2)) + SPEC_LEVEL_FLOOR
    return ((mag + phase) / level).mean() - sdr_weight * clamped_sdr(y, target).mean()


LSD_FFT = 2048  # the frame, window, hop and floor of the benchmark's LSD (training/metrics.py)
LSD_FLOOR = 1e-8
LSD_WEIGHT = 0.5


def log_spectral_distance(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The log-spectral distance of :func:`rt_enhance.training.metrics.lsd`, differentiable: per frame the RMS
    over frequency of the difference of ``log10(|STFT|^2 + 1e-8)`` (Hann 2048, hop 512, centred), averaged.

    Unlike the compressed spectral loss, it weighs a band 60 dB down as much as a loud one, which is what
    restoring the quiet top octaves of band-limited audio is about."""
    window = torch.hann_window(LSD_FFT, device=y.device, dtype=torch.float32)

    def log_power(x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(x.reshape(-1, x.shape[-1]).float(), LSD_FFT, LSD_FFT // 4, window=window, return_complex=True)
        return torch.log10(spec.real.square() + spec.imag.square() + LSD_FLOOR)

    diff = log_power(y) - log_power(target)  # [batch, F, frames]
    return torch.sqrt(diff.square().mean(dim=1) + 1e-6).mean()


def clamped_sdr(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SDR (dB, scale-sensitive) per item, saturating at SDR_CEILING_DB: ``10 log10(|t|^2 / (|t - y|^2 + c |t|^2))``.

    The spectral distance alone barely notices a clean input played back 2 dB quieter or slightly dulled
    (a few thousandths of loss beside noisy items' tenths), so a model trades clean fidelity for noise
    suppression; a log-domain term rewards each item's accuracy alike, good items included."""
    t, e = target.reshape(target.shape[0], -1).float(), (target - y).reshape(target.shape[0], -1).float()
    energy = t.pow(2).sum(dim=1) + 1e-8
    return 10 * torch.log10(energy / (e.pow(2).sum(dim=1) + energy * 10 ** (-SDR_CEILING_DB / 10)))


_CONVERGENCE_FLOOR = 10 ** (-50 / 20)  # a window quieter than -50 dBFS RMS counts as that loud
_LOG_FLOOR = 10 ** (-80 / 20)  # log magnitudes are compared above -80 dBFS per bin


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence (per window, averaged over the batch) plus log-magnitude L1, averaged over
    resolutions. Every term is a mean over windows, so splitting a batch over processes does not change it.

    ``fft_sizes`` larger than the signal are skipped (a 1024-sample window cannot hold a 2048 FFT);
    hop is a quarter of the FFT size, Hann windows.
    """

    def __init__(self, fft_sizes: Sequence[int] = (512, 1024, 2048)) -> None:
        super().__init__()
        self.fft_sizes = tuple(fft_sizes)
        for n in self.fft_sizes:
            self.register_buffer(f"window_{n}", torch.hann_window(n), persistent=False)

    def forward(self, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        y, target = y.reshape(-1, y.shape[-1]).float(), target.reshape(-1, target.shape[-1]).float()
        sizes = [n for n in self.fft_sizes if n <= y.shape[-1]] or [_largest_pow2(y.shape[-1])]
        terms = [self._one(y, target, n) for n in sizes]
        return sum(terms[1:], terms[0]) / len(sizes)

    def _one(self, y: torch.Tensor, target: torch.Tensor, n: int) -> torch.Tensor:
        window = getattr(self, f"window_{n}", None)
        window = torch.hann_window(n, device=y.device) if window is None else window
        mag_y, mag_t = (_magnitude(s, n, window) for s in (y, target))
        # Level floors keep near-silent targets (pauses, digital silence, release tails) from
        # dominating: a bin's magnitude of unit-RMS white noise is sqrt(0.375 n) with a Hann window.
        unit = (0.375 * n) ** 0.5
        floor = _CONVERGENCE_FLOOR * unit * (mag_t.shape[-2] * mag_t.shape[-1]) ** 0.5
        # per window, then the mean: a batch split over processes gives the same loss
        convergence = (_frobenius(mag_t - mag_y) / (_frobenius(mag_t) + floor)).mean()
        log_mag = F.l1_loss(torch.log(mag_y + _LOG_FLOOR * unit), torch.log(mag_t + _LOG_FLOOR * unit))
        return convergence + log_mag


def _frobenius(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).sum(dim=(-2, -1)).sqrt()


def _largest_pow2(n: int) -> int:
    return 1 << (max(n, 2).bit_length() - 1)


def _magnitude(x: torch.Tensor, n: int, window: torch.Tensor) -> torch.Tensor:
    spec = torch.stft(x, n, hop_length=n // 4, win_length=n, window=window, center=False, return_complex=True)
    return spec.abs().clamp_min(1e-7)


def feature_loss(features_y: torch.Tensor, features_target: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of feature maps ``[batch, channels, frames]``; the target side carries no gradient."""
    return F.mse_loss(features_y, features_target.detach())


# ---------------------------------------------------------------------------------------------------------------
# Batch metrics (validation): one value per window, float32 [batch]
# ---------------------------------------------------------------------------------------------------------------


def batch_snr(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SNR in dB of each window: ``10 log10(|target|^2 / |target - y|^2)``; ``[batch]``."""
    y, target = y.flatten(1).double(), target.flatten(1).double()
    num = target.pow(2).sum(1) + 1e-12
    den = (target - y).pow(2).sum(1) + 1e-12
    return (10 * torch.log10(num / den)).float()


def batch_si_sdr(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Scale-invariant SDR in dB of each window (zero-mean signals); ``[batch]``."""
    y, target = y.flatten(1).double(), target.flatten(1).double()
    y, target = y - y.mean(1, keepdim=True), target - target.mean(1, keepdim=True)
    scale = (y * target).sum(1, keepdim=True) / (target.pow(2).sum(1, keepdim=True) + 1e-12)
    projection = scale * target
    num = projection.pow(2).sum(1) + 1e-12
    den = (y - projection).pow(2).sum(1) + 1e-12
    return (10 * torch.log10(num / den)).float()


VOICE_BELOW_DB = 40.0  # a hop of the clean voice this far under the window's loudest is a pause
VOICE_FLOOR = 1e-7  # mean square of a hop (-70 dBFS) under which nothing counts as voiced
VOICE_HANGOVER_SECONDS = 0.3  # a voice heard this recently still counts: the pauses between words are voice time


def voice_activity(target: torch.Tensor, voice: torch.Tensor, hop: int, frames: int, rate: int) -> torch.Tensor:
    """Voice-activity labels ``[B, frames]`` (0 or 1) for the model frames of ``target`` ``[B, 1, W]``, hop ``hop``:
    1 where the clean target's hop is within VOICE_BELOW_DB of the window's loudest hop (and above VOICE_FLOOR),
    or was within the last VOICE_HANGOVER_SECONDS (causal: a frame only knows the past), in the windows whose
    ``voice`` flag (``[B]`` or ``[B, 1]``) is 1 (a voice file; music and the like are 0 throughout)."""
    b = target.shape[0]
    usable = min(frames, target.shape[-1] // hop)
    power = target[..., : usable * hop].reshape(b, usable, hop).float().square().mean(dim=-1)
    threshold = (power.amax(dim=1, keepdim=True) * 10 ** (-VOICE_BELOW_DB / 10)).clamp_min(VOICE_FLOOR)
    voiced = (power > threshold).float()
    span = max(1, round(VOICE_HANGOVER_SECONDS * rate / hop))
    held = F.max_pool1d(F.pad(voiced[:, None], (span - 1, 0)), span, stride=1)[:, 0]  # [B, usable]
    labels = F.pad(held, (0, frames - usable), value=0.0) if usable < frames else held
    return labels * voice.reshape(b, 1).float()


def voice_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of per-frame voice logits ``[B, m]`` against :func:`voice_activity`'s labels."""
    m = min(logits.shape[1], labels.shape[1])
    return F.binary_cross_entropy_with_logits(logits[:, :m].float(), labels[:, :m])


# The perceptual disturbance (`--pesq`): the shape of PESQ's (ITU-T P.862) cognitive model, differentiable and
# written from the recommendation's description. Calibration, level and time alignment, the IRS filter and the
# frequency/gain equalisation are left out: the pairs here are aligned, and a loss wants the disturbance, not a MOS.
PQ_FRAME_SECONDS = 0.032  # P.862's frame: 32 ms, half-overlapping
PQ_BAND_HZ = (100.0, 8000.0)  # PESQ-wb hears 100 Hz - 8 kHz
PQ_BARK_STEP = 0.5  # band width in Bark (P.862 wideband: 49 bands over ~24 Bark; this: ~40 over 100 Hz - 8 kHz)
PQ_GAMMA = 0.23  # Zwicker's loudness exponent, as P.862
PQ_THRESHOLD_DB = 60.0  # the hearing threshold this far below the reference's mean band power (speech at ~70 dB SPL)
PQ_MASK = 0.25  # a difference within this share of the quieter loudness is not heard (P.862's dead zone)
PQ_ASYM_POWER, PQ_ASYM_MIN, PQ_ASYM_MAX = 1.2, 3.0, 12.0  # added-noise factor (P.862: below 3 it counts as 0)
PQ_SYM, PQ_ASYM = 0.1, 0.0309  # P.862's weights of the symmetric and asymmetric disturbances in its raw MOS
PQ_SPLIT = 20  # frames per interval of the L6 norm over time (P.862: 320 ms), intervals half-overlapping


def _bark(f: torch.Tensor) -> torch.Tensor:
    """Zwicker and Terhardt's critical-band rate of ``f`` Hz."""
    return 13.0 * torch.atan(0.00076 * f) + 3.5 * torch.atan((f / 7500.0) ** 2)


@functools.lru_cache(maxsize=4)
def _pq_bands(rate: int, fft: int) -> torch.Tensor:
    """``[bands, fft // 2 + 1]``: which bins of a ``fft``-point transform at ``rate`` Hz sum into each band of
    PQ_BARK_STEP Bark between PQ_BAND_HZ (bands holding no bin are dropped)."""
    freqs = torch.arange(fft // 2 + 1, dtype=torch.float64) * (rate / fft)
    lo, hi = PQ_BAND_HZ
    inside = (freqs >= lo) & (freqs < min(hi, rate / 2))
    index = torch.floor((_bark(freqs) - _bark(torch.tensor(lo, dtype=torch.float64))) / PQ_BARK_STEP).long()
    used = torch.unique(index[inside])
    return ((index[None, :] == used[:, None]) & inside[None, :]).float()


def perceptual_disturbance(y: torch.Tensor, target: torch.Tensor, rate: int) -> torch.Tensor:
    """The disturbance PESQ hears in ``y`` against ``target`` (``[batch, 1, samples]`` at ``rate``), a scalar:
    ``0.1 d_sym + 0.0309 d_asym`` as P.862 subtracts from its raw MOS. Per 32 ms frame, band powers on a Bark scale
    from 100 Hz to 8 kHz become loudness by Zwicker's law (threshold PQ_THRESHOLD_DB below the target's mean band
    power, the same for both signals, so a level error counts); their difference, less a dead zone of a quarter of the
    quieter loudness, is the disturbance, summed per frame as an L3 norm over bands (symmetric) and as an L1 norm
    weighted by how much louder the output is than the target (asymmetric: noise left in or added counts up to twelve
    times as much as speech taken out); frames are combined by an L6 norm over 320 ms intervals, intervals by an L2
    norm. Unlike the compressed spectral loss, residual noise in a pause weighs by how loud it is to the ear, small
    errors under speech cost nothing, and the worst frames dominate: as PESQ-wb scores."""
    n = round(PQ_FRAME_SECONDS * rate)
    window = torch.hann_window(n, device=y.device, dtype=torch.float32)

    def band_power(x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(x.reshape(-1, x.shape[-1]).float(), n, n // 2, window=window, center=False, return_complex=True)
        bands = _pq_bands(rate, n).to(y.device)
        return torch.einsum("kf,bft->bkt", bands, spec.real.square() + spec.imag.square())  # [batch, bands, frames]

    py, pt = band_power(y), band_power(target)
    floor = 10 ** (-90 / 10) * 0.375 * n  # a bin of white noise at -90 dBFS: silent targets stay bounded
    p0 = (pt.mean(dim=(1, 2), keepdim=True) * 10 ** (-PQ_THRESHOLD_DB / 10)).clamp_min(floor)

    def loudness(p: torch.Tensor) -> torch.Tensor:
        return (0.5 + 0.5 * p / p0).pow(PQ_GAMMA) - 0.5**PQ_GAMMA

    sy, st = loudness(py), loudness(pt)
    d = F.relu((sy - st).abs() - PQ_MASK * torch.minimum(sy, st))
    ratio = ((py + p0) / (pt + p0)).pow(PQ_ASYM_POWER)
    asym = torch.where(ratio < PQ_ASYM_MIN, torch.zeros_like(ratio), ratio.clamp_max(PQ_ASYM_MAX))
    frame_sym = (d.pow(3).mean(dim=1) + 1e-20).pow(1 / 3)  # [batch, frames]
    frame_asym = (d * asym).mean(dim=1)

    def over_time(frames: torch.Tensor) -> torch.Tensor:
        split = min(PQ_SPLIT, frames.shape[-1])
        chunks = frames.unfold(-1, split, max(split // 2, 1))  # [batch, intervals, split]
        return ((chunks.pow(6).mean(dim=-1) + 1e-20).pow(1 / 6).pow(2).mean(dim=-1) + 1e-20).sqrt()

    return (PQ_SYM * over_time(frame_sym) + PQ_ASYM * over_time(frame_asym)).mean()
