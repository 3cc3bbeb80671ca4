"""Ceilings, not tools: what a model of a given kind could reach at best, computed from the clean reference.

``oracle-envelope`` (bandwidth extension): the band the task removed, filled with noise shaped by the reference's
own envelope (:func:`envelope_fill`), needs numpy and scipy only.

``oracle-bands`` (denoising): the ideal band gains of the speech model's grid. It reads the item's clean reference
(which no real system has) and applies, in every 10 ms frame and each of the 48 ERB bands of `speech`
(model/spectral.py: the same windows, DFTs and triangular filters), the gain that makes the band's power that of the
clean signal, clipped to the model's range (0, 2), spread back to the bins as the model spreads its own. It is the
ceiling of the model family on its own grid: the distance from it to `speech` is what training can still buy, the
distance from it to the clean signal what the grid costs. torch is needed (the model's own modules do the transforms).

``oracle-phase``: the same grid and range, but the gain that brings the band closest to the clean signal in the
least-squares sense, ``sum Re(S X*) / sum |X|^2`` over the band's bins (the phase-sensitive mask): it knows how the
input's phase in each bin differs from the clean signal's, which no estimate from the input's band powers (all that
`speech`'s network sees) can know. Where a sound is the clean signal plus an independent one (noise), the two gains
agree on average; where the rest is correlated with it (a room's reflections), they part, and the distance between
the two oracles is what knowing the phase is worth.

``oracle-comb``: the least-squares gain of ``oracle-phase`` together with the best weights per band of the pitch
comb's two copies (model/comb.py, ``spec-erb-comb``: the frame one and two pitch periods back, the period found on
the noisy input as the model finds it): per band and frame, the real ``g, w1, w2`` that bring
``g (X + w1 (X1 - X) + w2 (X2 - X))`` closest to the clean spectrum (``g w_k`` solved for, then divided by ``g``;
each clipped to the model's range). Its distance from ``oracle-phase`` is what the comb can add to a band gain at best.
"""

from __future__ import annotations

import numpy as np
import soundfile as sf

from rt_enhance.benchmarks.testset import TestItem

HOP, FRAME, BANDS, MAX_GAIN = 240, 480, 48, 2.0  # `speech`'s grid (spec-erb) at 48 kHz


def ideal_band_gains(
    x: np.ndarray, clean: np.ndarray, *, hop: int = HOP, frame: int = FRAME, bands: int = BANDS, phase: bool = False, comb: int = 0
) -> np.ndarray:
    """float32 ``[n]`` -> ``[n]``: ``x`` through the ideal gain per band and frame against ``clean``, aligned with ``x``
    (the model's one hop of delay removed). The model's own ``forward`` does the framing, transforms and overlap-add;
    only its network is replaced: a first pass over ``clean`` records each frame's band powers, a second over ``x``
    returns the gains that bring ``x``'s band powers to those (``phase``: the least-squares gains of ``oracle-phase``,
    from the clean spectra the first pass records; ``comb``: with the least-squares weights of that many pitch-lagged
    copies, ``oracle-comb``)."""
    import torch

    from rt_enhance.model.spectral import SpectralUNet

    class Ideal(SpectralUNet):
        target: torch.Tensor | None = None  # the clean band powers [1, frames, bands]; None: record them
        spectra: list[tuple[torch.Tensor, torch.Tensor]]  # (real, imaginary) [1, frames, bins] of each pass

        def heads(self, power, h, band=None, likeness=None, above=None):  # the ideal gains in place of the network (power: |X|^2 per bin)
            weights = None
            if self.target is None:
                self.target = self.band_power(power)
                gain = torch.ones_like(self.target)
            elif comb:
                gain, weights = self.least_squares()
            elif phase:
                (s_re, s_im), (x_re, x_im) = self.spectra
                gain = (self.band_power(s_re * x_re + s_im * x_im) / (self.band_power(power) + 1e-12)).clamp(0.0, MAX_GAIN)
            else:
                gain = band_gain(self, self.target, power, MAX_GAIN)
            return self.to_bins(gain), None, h, None, None, weights

        def least_squares(self) -> tuple[torch.Tensor, torch.Tensor]:
            """The gain ``[1, m, bands]`` and the copies' weights ``[1, m, comb, bins]`` that bring ``g (X + sum w_k (X_k -
            X))`` closest to the clean spectrum, per band and frame (the normal equations over the band's weighted bins)."""
            (s_re, s_im), (a_re, a_im) = self.spectra  # each pass's frames and copies: [1, m, 1 + comb, bins]
            x_re, x_im = a_re[:, :, 0], a_im[:, :, 0]
            moves = [(a_re[:, :, k] - x_re, a_im[:, :, k] - x_im) for k in range(1, comb + 1)]
            clean, signals = (s_re[:, :, 0], s_im[:, :, 0]), [(x_re, x_im), *moves]

            def cross(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
                return self.band_power(a[0] * b[0] + a[1] * b[1])  # Re(a b*) summed over each band

            gram = torch.stack([torch.stack([cross(a, b) for b in signals], -1) for a in signals], -2)  # [1, m, bands, k, k]
            target = torch.stack([cross(clean, a) for a in signals], -1)  # [1, m, bands, k]
            ridge = 1e-6 * gram.diagonal(dim1=-2, dim2=-1).mean(-1, keepdim=True)[..., None] + 1e-12
            solved = torch.linalg.solve(gram + ridge * torch.eye(comb + 1), target)
            gain = solved[..., 0].clamp(0.0, MAX_GAIN)
            moved = solved[..., 1:] / solved[..., :1].clamp_min(1e-6)  # g w_k -> w_k, in the comb head's range (tanh)
            weights = self.to_bins(moved.clamp(-1.0, 1.0).transpose(-1, -2))
            return gain, weights

    grid = Ideal(hop=hop, frame=frame, channels=[4, 4], bands=bands, gru_hidden=0, comb=comb)  # only its transforms run
    grid.spectra = []
    grid.analysis.register_forward_hook(lambda module, inputs, output: grid.spectra.append(output))
    aligned(grid, clean)  # the first pass records the clean reference
    return aligned(grid, x)


def aligned(model, signal: np.ndarray) -> np.ndarray:
    """float ``[n]`` through a streaming spectral ``model`` (torch, no gradients), its one hop of delay removed:
    float32 ``[n]``. The ideal-gain models here run one pass over the clean reference, then one over the input."""
    import torch

    hop, n = model.hop, len(signal)
    audio = torch.from_numpy(np.concatenate([np.asarray(signal, np.float32), np.zeros((-n) % hop + hop, np.float32)]))
    with torch.no_grad():
        return model(audio[None, None])[0, 0].numpy()[hop : hop + n].astype(np.float32)


def band_gain(model, target, power, max_gain: float):
    """The gain per band ``[..., bands]`` that brings the band powers of ``power`` (``|X|^2`` per bin, banded as
    ``model``, a band-grid ``SpectralUNet``, bands them) to ``target``, clipped to ``(0, max_gain)``."""
    return (target / (model.band_power(power) + 1e-12)).sqrt().clamp(0.0, max_gain)


def oracle_system(x: np.ndarray, item: TestItem) -> np.ndarray:
    clean, _ = sf.read(item.clean, dtype="float32")
    return ideal_band_gains(x, clean)


def phase_oracle_system(x: np.ndarray, item: TestItem) -> np.ndarray:
    clean, _ = sf.read(item.clean, dtype="float32")
    return ideal_band_gains(x, clean, phase=True)


def comb_oracle_system(x: np.ndarray, item: TestItem) -> np.ndarray:
    clean, _ = sf.read(item.clean, dtype="float32")
    return ideal_band_gains(x, clean, comb=2)


ENVELOPE_FRAME, ENVELOPE_HOP, ENVELOPE_BANDS_PER_OCTAVE = 2048, 512, 6  # the LSD's own STFT (training/metrics.py)


def envelope_fill(x: np.ndarray, clean: np.ndarray, cut_hz: float, rate: int, *, seed: int = 0, passes: int = 4) -> np.ndarray:
    """float ``[n]`` -> float32 ``[n]``: ``x`` below ``cut_hz``; above it, noise whose level in every STFT frame
    (2048 samples, hop 512, as the LSD's) and every 1/6-octave band is the clean reference's.

    A generator that knows the missing band's envelope perfectly but not its fine structure (which partial sits
    in which bin) can do no better than this on the log-spectral distance: the distance from it to the clean
    signal is what guessing the fine structure costs, the distance from it to a model what its envelope costs.
    White noise is shaped band by band and frame by frame, and the shaping is repeated on the resynthesised signal
    (``passes`` times): a spectrogram scaled frame by frame is not the spectrogram of any signal, and its overlap-add
    loses level, which each pass wins back."""
    from scipy import signal

    frame = dict(nperseg=ENVELOPE_FRAME, noverlap=ENVELOPE_FRAME - ENVELOPE_HOP, window="hann")

    def stft(a: np.ndarray) -> np.ndarray:
        return signal.stft(np.asarray(a, np.float64), boundary="even", **frame)[2]

    def istft(spec: np.ndarray) -> np.ndarray:
        return signal.istft(spec, boundary=True, **frame)[1][: len(x)]

    kept, ref = stft(x), stft(clean)
    freqs = np.linspace(0.0, rate / 2, kept.shape[0])
    edges = [cut_hz]
    while edges[-1] < rate / 2:
        edges.append(edges[-1] * 2 ** (1 / ENVELOPE_BANDS_PER_OCTAVE))
    bands = [b for lo, hi in zip(edges, edges[1:]) if (b := (freqs >= lo) & (freqs < hi)).any()]
    level = [np.sqrt(np.mean(np.abs(ref[b]) ** 2, axis=0)) for b in bands]
    below = freqs < cut_hz
    y = np.random.default_rng(seed).standard_normal(len(x))
    for _ in range(passes):
        spec = stft(y)
        for b, want in zip(bands, level):
            have = np.sqrt(np.mean(np.abs(spec[b]) ** 2, axis=0))
            spec[b] *= want / np.maximum(have, 1e-12)
        spec[below] = kept[below]
        y = istft(spec)
    return np.asarray(y, np.float32)


def envelope_system(x: np.ndarray, item: TestItem) -> np.ndarray:
    assert item.band_limit_hz is not None  # the system applies only to band-limited tasks
    clean, rate = sf.read(item.clean, dtype="float32")
    return envelope_fill(x, clean, item.band_limit_hz, rate)
