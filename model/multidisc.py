"""Multi-period and multi-resolution discriminators with feature matching (``--disc mpd-mrd``), for the fine
structure of restored bands (issue 17).

The project's first discriminator (:class:`~rt_enhance.model.discriminator.Discriminator`) scores a whole
window with one logit. A band restored at the right level but with the wrong fine structure (harmonics that
do not line up, noise where partials should be) barely moves such a score. HiFi-GAN (Kong et al. 2020)
judges the waveform folded at several periods, which sees periodic structure at every pitch, and UnivNet
(Jang et al. 2021), as AP-BWE after it, judges magnitude spectrograms at several resolutions, which sees
each band's texture; both train the generator to match the discriminators' intermediate features on the
clean signal (feature matching), a dense signal where one logit is sparse. This module follows their
design at a width a CPU can train (``width`` scales every channel count), with least-squares losses:

* discriminator: ``sum_k mean((D_k(clean) - 1)^2) + mean(D_k(enhanced)^2)``;
* generator: ``sum_k mean((D_k(enhanced) - 1)^2)``, and feature matching, the L1 distance between the
  feature maps of enhanced and clean, averaged over every layer of every sub-discriminator.

Any input length of at least the largest FFT is accepted (no fixed window); as in HiFi-GAN, the losses judge
a random ``segment`` of each batch (the same stretch of the enhanced and the clean signal), so their cost does
not grow with the training window. Conditional: the degraded input is a second channel, folded or
transformed like the first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rt_enhance.model.base import AudioModel, GeometryError

logger = logging.getLogger(__name__)

SLOPE = 0.1  # leaky ReLU, as in HiFi-GAN


def _channels(width: float, base: Sequence[int]) -> list[int]:
    return [max(4, round(c * width)) for c in base]


class PeriodDiscriminator(nn.Module):
    """The waveform folded at ``period``: ``[B, C, T]`` -> ``[B, C, T / p, p]``, 2-D convolutions along the
    folded time axis only, so each column (one phase of the period) is judged on its own."""

    def __init__(self, period: int, in_channels: int, width: float) -> None:
        super().__init__()
        self.period = period
        chans = [in_channels, *_channels(width, (32, 128, 512, 1024))]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, (5, 1), (3, 1), (2, 0)) for a, b in zip(chans[:-1], chans[1:]))
        self.convs.append(nn.Conv2d(chans[-1], chans[-1], (5, 1), 1, (2, 0)))
        self.out = nn.Conv2d(chans[-1], 1, (3, 1), 1, (1, 0))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = x.shape
        pad = -t % self.period
        if pad:
            x = F.pad(x, (0, pad), mode="reflect" if pad < t else "constant")
        z = x.view(b, c, -1, self.period)
        features = []
        for conv in self.convs:
            z = F.leaky_relu(conv(z), SLOPE)
            features.append(z)
        return self.out(z).flatten(1), features


class ResolutionDiscriminator(nn.Module):
    """The magnitude spectrogram at one STFT resolution, ``[B, C, F, frames]``, through 2-D convolutions that
    stride along time: the texture of every band at that resolution."""

    def __init__(self, fft: int, in_channels: int, width: float) -> None:
        super().__init__()
        self.fft, self.hop = fft, fft // 4
        self.window: torch.Tensor
        self.register_buffer("window", torch.hann_window(fft), persistent=False)
        c = _channels(width, (32,))[0]
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(in_channels, c, (3, 9), 1, (1, 4)),
                nn.Conv2d(c, c, (3, 9), (1, 2), (1, 4)),
                nn.Conv2d(c, c, (3, 9), (1, 2), (1, 4)),
                nn.Conv2d(c, c, (3, 9), (1, 2), (1, 4)),
                nn.Conv2d(c, c, (3, 3), 1, (1, 1)),
            ]
        )
        self.out = nn.Conv2d(c, 1, (3, 3), 1, (1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = x.shape
        spec = torch.stft(x.reshape(b * c, t).float(), self.fft, self.hop, window=self.window.float(), return_complex=True)
        z = spec.abs().clamp_min(1e-7).pow(0.5).to(x.dtype)  # compressed, as the generator's loss
        z = z.view(b, c, *z.shape[-2:])
        features = []
        for conv in self.convs:
            z = F.leaky_relu(conv(z), SLOPE)
            features.append(z)
        return self.out(z).flatten(1), features


class MultiDiscriminator(AudioModel):
    """Period discriminators (``periods``) and resolution discriminators (``ffts``) side by side;
    ``[B, 1, T]`` (+ condition ``[B, 1, T]``) -> one score map per sub-discriminator and their features."""

    def __init__(
        self,
        *,
        periods: Sequence[int] = (2, 3, 5, 7, 11),
        ffts: Sequence[int] = (512, 1024, 2048),
        width: float = 0.125,
        segment: int = 16384,
        conditional: bool = False,
        sample_rate: int = 48000,
    ) -> None:
        super().__init__()
        if not periods and not ffts:
            raise ValueError("need at least one period or one FFT size")
        if any(p < 1 for p in periods) or any(n < 16 for n in ffts) or width <= 0:
            raise ValueError(f"need periods >= 1, FFT sizes >= 16 and width > 0; got {list(periods)}, {list(ffts)}, {width}")
        self.init_kwargs = {
            "periods": [int(p) for p in periods],
            "ffts": [int(n) for n in ffts],
            "width": float(width),
            "segment": int(segment),
            "conditional": conditional,
            "sample_rate": sample_rate,
        }
        self.sample_rate, self.conditional = sample_rate, conditional
        self.min_length = max([*ffts, 2 * max(periods, default=1)])
        if segment < self.min_length:
            raise ValueError(f"segment {segment} is shorter than the largest FFT or period pair ({self.min_length})")
        self.segment = int(segment)
        ch = self.in_channels
        self.judges = nn.ModuleList(
            [*(PeriodDiscriminator(p, ch, width) for p in periods), *(ResolutionDiscriminator(n, ch, width) for n in ffts)]
        )

    @property
    def in_channels(self) -> int:
        return 2 if self.conditional else 1

    def judge(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        """Each sub-discriminator's ``(scores [B, n], features)`` of ``x`` ``[B, 1, T]``."""
        if condition is not None:
            x = torch.cat([x, condition], dim=1)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channel(s) (conditional={self.conditional})")
        self.check_window(x.shape[-1])
        return [judge(x) for judge in self.judges]

    def segment_of(self, length: int) -> slice:
        """A random stretch of ``segment`` samples of a ``length``-sample signal (all of a shorter one)."""
        if length <= self.segment:
            return slice(0, length)
        start = int(torch.randint(0, length - self.segment + 1, ()))
        return slice(start, start + self.segment)

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor, condition: torch.Tensor | None = None):
        """Least squares on a random segment: clean towards 1, enhanced (detach it) towards 0; the loss and mean
        scores."""
        cut = self.segment_of(real.shape[-1])
        real, fake, condition = real[..., cut], fake[..., cut], (None if condition is None else condition[..., cut])
        real_out, fake_out = self.judge(real, condition), self.judge(fake, condition)
        loss = sum(((r.float() - 1).pow(2).mean() + f.float().pow(2).mean() for (r, _), (f, _) in zip(real_out, fake_out)), torch.zeros(()))
        d_real = torch.stack([r.float().mean() for r, _ in real_out]).mean()
        d_fake = torch.stack([f.float().mean() for f, _ in fake_out]).mean()
        return loss, {"d_real": d_real.item(), "d_fake": d_fake.item()}

    def generator_loss(
        self, fake: torch.Tensor, real: torch.Tensor, condition: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(adversarial, feature matching)`` for the generator's output ``fake`` against ``real``, on the same
        random segment of both."""
        cut = self.segment_of(fake.shape[-1])
        fake, real, condition = fake[..., cut], real[..., cut], (None if condition is None else condition[..., cut])
        fake_out = self.judge(fake, condition)
        with torch.no_grad():
            real_out = self.judge(real, condition)
        adversarial = sum(((f.float() - 1).pow(2).mean() for f, _ in fake_out), torch.zeros(()))
        distances = [
            F.l1_loss(ff.float(), rf.float())
            for (_, fake_feats), (_, real_feats) in zip(fake_out, real_out)
            for ff, rf in zip(fake_feats, real_feats)
        ]
        return adversarial, torch.stack(distances).mean()

    @property
    def total_stride(self) -> int:
        return 1

    def input_span(self, t: int) -> tuple[int, int]:
        return 0, self.min_length - 1

    def check_window(self, window: int) -> None:
        if window < self.min_length:
            raise GeometryError(f"this discriminator needs at least {self.min_length} samples, not {window}")

    def valid_length(self, n: int) -> int:
        return max(n, self.min_length)
