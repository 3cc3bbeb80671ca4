"""The spectral streaming U-Net: the family's convolutional U-Net (skip connections, sub-pixel
shuffle) run over the *frequency* axis of each short-time spectrum, with a GRU across frames at
its bottleneck, predicting a bounded gain per frequency bin.

Why a second streaming model next to :class:`~rt_enhance.model.causal.CausalUNet`: on a CPU a
time-domain U-Net trained for hours still treats clean speech as noisy (it shrinks it by ~3 dB and
colours it, PESQ-wb 4.6 -> 2.6, see docs/models.md), because every output sample is a free
regression. A gain per bin starts as the exact identity (the last convolution is zero-initialised,
so ``gain = 1``), stays there for clean input unless the data says otherwise, and learns noise and
reverberation suppression in far fewer steps: the structure of RNNoise, GTCRN and DeepFilterNet,
with this project's U-Net as the network. ``max_gain`` > 1 lets it restore a gentle roll-off.

A gain cannot create energy above a hard cut-off, so for bandwidth extension the model can also
*replicate* the spectrum upwards, as spectral band replication (SBR, HE-AAC) does: for each shift
in ``copies`` (Hz), the spectrum moved up by that many bins is added with a second learned gain
per bin, ``Y = g * X + sum_m c_m * shift(X, d_m)``. The copies bring the fine time structure
(attacks, noise, partials) of the band below; the network learns the envelope they get. Shifts
are even numbers of bins, so at 50 % overlap the shifted frames stay phase-coherent (a shift of
``d`` bins is a modulation by ``d * rate / frame`` Hz, whose phase advances by ``pi * d`` per hop).
The copy gains start at ``COPY_START`` (-60 dB), not 0, so a log-spectral loss sees them, and the
head's output is scaled by ``COPY_SCALE``: a copy's gain must travel tens of dB (from -60 dB to
the -20..-40 dB of a top octave, or down to -100 dB on full-band input), and Adam moves each
weight by about the learning rate per step, which would take thousands of steps unscaled.

Streaming, for the engine's ``stateful`` contract (see :mod:`rt_enhance.realtime.metadata`)::

    chunk of n = m * hop samples
      -> m frames of ``frame`` samples (default ``2 * hop``; the previous ``frame - hop`` samples are
         the state ``frames``)
      -> analysis window, DFT (two small matrix products, model/dft.py) -> F = frame / 2 + 1 bins
      -> features |X|^0.3 -> U-Net over F per frame, GRU across frames (state ``gru``)
      -> gain in (0, max_gain) -> Y = gain * X (+ replicated copies) -> inverse DFT of the frame's
         last ``2 * hop`` samples, synthesis window
      -> overlap-add with the previous frame's second half (state ``ola``) -> n samples

The windows reconstruct perfectly, so with ``gain = 1`` the output is the input delayed by
``lookahead = hop`` samples, and the algorithmic latency (a hop buffered, a hop of lookahead) is
``2 * hop`` whatever the frame. With ``frame = 2 * hop`` both windows are sqrt-Hann at 50 % overlap.
A longer ``frame`` uses the asymmetric pair of Mauler and Martin (2007), as in Wang et al.'s
low-latency STFT enhancement (2022): a long analysis window, rising slowly and falling over the last
``hop`` samples, for the frequency resolution of a long frame (100 Hz bins from a 10 ms frame), and
a synthesis window nonzero only on the last ``2 * hop`` samples, so the latency stays that of the
short frame. Their product is a Hann window of ``2 * hop`` samples, which overlaps to one at ``hop``.

The network runs on all frames of a call at once, laid out as one image ``[1, channels, frames,
positions]`` with ``1 x kernel`` convolutions: onnxruntime runs each convolution as one matrix
product over every frame instead of one small product per frame (1.5x faster in file mode, where a
call holds 1 s). ``forward`` is ``step`` from the zero state, so streaming equals offline by
construction (up to float rounding).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from rt_enhance.model.base import StreamingModel
from rt_enhance.model.comb import PitchComb
from rt_enhance.model.dft import InverseRealDFT, RealDFT

logger = logging.getLogger(__name__)

State = list[torch.Tensor]
POWER = 0.3  # magnitude compression of the features (as GTCRN / DeepFilterNet's losses)
COPY_START = 1e-3  # initial gain of each replicated copy (-60 dB): near the identity, yet trainable
LOG_SCALE = 1.0 / (4.0 * math.log(10.0))  # the log feature (log10(p) + 4) / 4 as ln(p) times this, plus 1
FLOOR_EMPTY = 100.0  # a noise floor's stored "no frame here": far above any level the log feature takes (-2..2)
LOG_FLOOR = 1e-12  # the log-power feature's floor: below any real recording's noise, above float rounding
COPY_SCALE = 10.0  # the copy head's output is scaled up: a step of Adam moves a copy's log-gain 10x further


def _first_conv(block: nn.Module) -> nn.Conv1d:
    """The Conv1d that opens an encoder or decoder block (:func:`_block`)."""
    conv = next(iter(block.children()))
    assert isinstance(conv, nn.Conv1d)
    return conv


class SpectralUNet(StreamingModel):
    """Streaming spectral U-Net: ``[batch, 1, n]`` -> ``[batch, 1, n]`` lagging by ``hop`` samples.

    Arguments (plain types; checkpoints store them):

    - ``hop``: samples per frame advance (the total stride); 240 = 5 ms at 48 kHz.
    - ``frame``: analysis frame in samples, a multiple of ``hop`` (0: ``2 * hop``). Longer frames
      resolve frequency more finely at the same latency (asymmetric windows, see above).
    - ``channels``: U-Net channels per frequency level (each level after the first halves the bins).
    - ``kernel``: convolution kernel along frequency.
    - ``gru_hidden``: the bottleneck GRU across frames (0 = none: each frame on its own).
    - ``max_gain``: gains lie in ``(0, max_gain)``; the model starts at exactly 1.
    - ``dropout``: after the bottleneck, training only.
    - ``copies``: spectral replication shifts in Hz (each rounded to an even number of bins), for
      bandwidth extension; each copy's gain per bin lies in ``(0, 1)``. Empty: gains only.
    - ``log_features``: also feed the network the log power of each bin (a second input channel).
      The compressed magnitude hardly tells a top octave 100 dB down (a natural roll-off) from
      digital silence (a low-pass); the log power does, and bandwidth extension hinges on it.
    - ``df_bins``, ``df_order``: deep filtering of the lowest ``df_bins`` bins, as DeepFilterNet does: on top of
      the gain, each of those bins adds a complex filter over its last ``df_order`` frames (this one and
      ``df_order - 1`` before it; no frame ahead, so no added latency), ``sum_i c_i X[t - i]``. Where a gain can
      only scale a band, the filter resolves harmonics closer than a band and can cancel what repeats across
      frames (reverberation, periodic noise). Its coefficients come from a head beside the gain head (tanh,
      so each lies in the unit square) and start at zero: a model with the filter begins as the same model
      without it, so every tensor of a trained gains-only model fits and it starts from there (0: none).
    - ``df_phase``: hidden units of a small network, shared by the filtered bins, that corrects each bin's filter
      coefficients from what the band features cannot carry (0: none): how the bin's phase moved since each earlier
      frame of the filter (``X[t] X*[t - i]``, normalised to unit length: steady for a harmonic or a reflection of one,
      random for noise) and the bin's power against its band's mean (a harmonic's peak or the valley beside it).
      Without it the coefficients come from band powers alone, the same for every bin of a band and blind to phase,
      which is all a filter acts on. Its last layer starts at zero, so a model with it begins as the same model
      without it (every tensor of a deep-filter model fits). Needs ``df_bins`` and ``df_order`` of at least 2.
    - ``comb``: copies of each frame taken whole pitch periods earlier (model/comb.py: a causal pitch comb, as
      PercepNet's pitch filter): the frame is moved towards each copy by a weight per band, and the gain applies to
      the result, ``Y = g (X + sum_k w_k (X_k - X))``; the network sees, per band, how alike the frame and each copy
      are. Where a gain scales a band's harmonics and the noise between them alike, the copies agree with the frame
      at the harmonics only, so the mix keeps the harmonics' level and averages the rest away. The weights' head and the
      features' way in start at zero, so a model with it begins as the same model without it (every tensor fits).
      Costs a longer input history (the state ``comb``), no latency (0: none).
    - ``floor``: frames of history (``floor * hop`` samples) over which each band's noise floor is taken, as the
      minimum of its log power (minimum statistics, Martin 2001, without the bias correction, which the network
      learns): the network also sees each band's level above that floor, the a posteriori SNR a Wiener filter works
      from, which a network given only this frame's levels has to infer through its bottleneck (0: none). Its way in
      (``floor_in``, a convolution added to the first level) starts at zero, so a model with it begins as the same
      model without it. Costs a state of ``floor - 1`` frames of band levels, no latency.
    - ``band_gru``: a small GRU across frames run on every band (or bin) position of the first level, its weights
      shared by all positions, as GTCRN's inter-frame RNN: each band's own memory of what it held (a noise floor,
      a voice that was just there) at full band resolution, where the bottleneck GRU sees the spectrum only
      through ``channels[-1]`` features at an eighth of the positions. Its output is added to the first level
      through a projection that starts at zero, so a model with it begins as the same model without it and every
      tensor of a trained model fits (0: none).
    - ``voice_head``: a training aid, a linear voice-activity read-out of the bottleneck GRU (one logit per frame,
      :attr:`voice_logits` after each forward in training mode), which a loss can teach that a voice is present,
      or was a moment ago, so that the GRU carries that fact: a sound between two words is noise, the same sound
      with no voice about may be music to keep. It changes nothing the model outputs, is not computed in
      evaluation mode and so never reaches an exported graph; a model with it starts from every tensor of one without it.
    - ``bands``: run the network on this many ERB-spaced bands instead of every bin (0: every bin), as
      RNNoise, PercepNet and DeepFilterNet do. Features are band energies, gains are per band and
      spread back to the bins by the same triangular filters (each bin's weights sum to one, so
      band gains of 1 are the identity). Bands no narrower than one bin, so the low frequencies keep
      full resolution; the network costs about ``bands / bins`` of the per-bin one.
    """

    # Buffers and optional layers, declared for the type checker (set in __init__ / _dft_buffers).
    band_weights: torch.Tensor
    gru: nn.GRU | None
    copy_head: nn.Conv1d | None

    in_channels = 1

    def __init__(
        self,
        *,
        hop: int = 240,
        frame: int = 0,
        channels: Sequence[int] = (12, 24, 32, 32),
        kernel: int = 5,
        gru_hidden: int = 128,
        max_gain: float = 2.0,
        dropout: float = 0.0,
        copies: Sequence[float] = (),
        log_features: bool = False,
        bands: int = 0,
        df_bins: int = 0,
        df_order: int = 3,
        df_phase: int = 0,
        band_gru: int = 0,
        voice_head: bool = False,
        comb: int = 0,
        floor: int = 0,
        norm: bool = False,
        sample_rate: int = 48000,
    ) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if hop < 8 or len(channels) < 2 or min(channels) < 1 or kernel < 1 or kernel % 2 == 0:
            raise ValueError(
                f"need hop >= 8, >= 2 positive channel counts and an odd kernel; got hop {hop}, channels {channels}, kernel {kernel}"
            )
        if max_gain <= 1.0 or gru_hidden < 0 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"need max_gain > 1, gru_hidden >= 0, 0 <= dropout < 1; got {max_gain}, {gru_hidden}, {dropout}")
        frame = int(frame) or 2 * hop
        if frame < 2 * hop or frame % hop:
            raise ValueError(f"frame must be 0 (2 * hop) or a multiple of hop {hop} of at least {2 * hop}; got {frame}")
        if copies and frame != 2 * hop:  # the copies' phase coherence (above) holds at 50 % overlap
            raise ValueError(f"copies need frame = 2 * hop ({2 * hop}); got frame {frame}")
        self.shifts = [2 * round(float(hz) * hop / sample_rate) for hz in copies]  # bin width rate / (2 hop)
        if any(d < 2 or d >= hop for d in self.shifts):
            raise ValueError(
                f"copies must be shifts of at least 2 bins and below the Nyquist frequency "
                f"({sample_rate / hop:.0f} .. {sample_rate / 2:.0f} Hz at hop {hop}); got {list(copies)} Hz"
            )
        self.init_kwargs = {
            "hop": hop,
            "channels": channels,
            "kernel": kernel,
            "gru_hidden": gru_hidden,
            "max_gain": float(max_gain),
            "dropout": float(dropout),
            "sample_rate": sample_rate,
        }
        if frame != 2 * hop:  # only when used, as below
            self.init_kwargs["frame"] = frame
        if copies:  # only when used: checkpoints of gain-only models keep their exact arguments
            self.init_kwargs["copies"] = [float(hz) for hz in copies]
        if log_features:
            self.init_kwargs["log_features"] = True
        self.hop, self.frame = hop, frame
        self.bins = frame // 2 + 1
        if bands:
            if not 4 <= bands <= self.bins:
                raise ValueError(f"bands must be 0 (every bin) or 4..{self.bins} with {self.bins} bins; got {bands}")
            self.init_kwargs["bands"] = int(bands)
        if df_bins:
            if not 1 <= df_bins <= self.bins or df_order < 1:
                raise ValueError(f"df_bins must be 0 (none) or 1..{self.bins} and df_order at least 1; got {df_bins}, {df_order}")
            self.init_kwargs.update(df_bins=int(df_bins), df_order=int(df_order))
        self.df_bins, self.df_order = int(df_bins), int(df_order) if df_bins else 0
        if df_phase and (df_phase < 0 or not df_bins or df_order < 2):
            raise ValueError(f"df_phase needs df_bins and df_order of at least 2 (a frame before to compare with); got {df_phase}")
        if df_phase:
            self.init_kwargs["df_phase"] = int(df_phase)
        if band_gru < 0:
            raise ValueError(f"band_gru must be 0 (none) or a GRU size; got {band_gru}")
        if band_gru:
            self.init_kwargs["band_gru"] = int(band_gru)
        if comb < 0:
            raise ValueError(f"comb must be 0 (none) or a number of pitch-lagged copies; got {comb}")
        self.comb = PitchComb(int(comb), hop, frame, sample_rate) if comb else None
        if comb:
            self.init_kwargs["comb"] = int(comb)
        if floor < 0 or floor == 1:
            raise ValueError(f"floor must be 0 (none) or a history of at least 2 frames; got {floor}")
        self.floor = int(floor)
        if floor:
            self.init_kwargs["floor"] = int(floor)
        self.norm = bool(norm)
        if norm:
            self.init_kwargs["norm"] = True
        if voice_head:
            if not gru_hidden:
                raise ValueError("voice_head reads the bottleneck GRU: it needs gru_hidden > 0")
            self.init_kwargs["voice_head"] = True
        self.log_features = bool(log_features)
        self.sample_rate = sample_rate
        self.lookahead = hop
        self.gru_hidden = gru_hidden
        self.max_gain = float(max_gain)
        self._dft_buffers()
        self.bands = int(bands)
        if self.bands:
            self.register_buffer("band_weights", erb_filterbank(self.bins, self.bands, sample_rate), persistent=False)
        # positions per level (bins, or bands): F, ceil(F/2), ...
        self.lengths = [self.bands or self.bins]
        for _ in channels[1:]:
            self.lengths.append((self.lengths[-1] + 1) // 2)
        pad = kernel // 2
        self.encoders = nn.ModuleList()
        features = 2 if log_features else 1
        for level, (c_in, c_out) in enumerate(zip([features, *channels[:-1]], channels)):
            stride = 1 if level == 0 else 2
            self.encoders.append(_block(nn.Conv1d(c_in, c_out, kernel, stride, pad), self.norm))
        self.band_context = BandGRU(channels[0], int(band_gru)) if band_gru else None
        flat = channels[-1] * self.lengths[-1]
        if gru_hidden:
            self.gru_in = nn.Linear(flat, gru_hidden)
            self.gru = nn.GRU(gru_hidden, gru_hidden, batch_first=True)
            self.gru_out = nn.Linear(gru_hidden, flat)
        else:
            self.gru = None
        self.voice = nn.Linear(gru_hidden, 1) if voice_head else None
        self.voice_logits: torch.Tensor | None = None  # [batch, m] of the last forward in training mode
        self.drop = nn.Dropout(dropout)
        # decoder level b: from level b+1 (concatenated with its skip, except the bottleneck) up to b
        self.decoders = nn.ModuleList()
        for level in range(len(channels) - 1):
            c_in = channels[level + 1] * (1 if level == len(channels) - 2 else 2)
            self.decoders.append(_block(nn.Conv1d(c_in, 2 * channels[level], kernel, 1, pad), self.norm))
        self.final = nn.Conv1d(2 * channels[0], 1, kernel, 1, pad)
        nn.init.zeros_(self.final.weight)  # gain exactly 1 at the start: the model begins as the identity
        assert self.final.bias is not None
        nn.init.zeros_(self.final.bias)
        self._gain_bias = math.log(1.0 / (self.max_gain - 1.0))  # sigmoid(z + b) * max_gain = 1 at z = 0
        if self.shifts:
            self.copy_head = nn.Conv1d(2 * channels[0], len(self.shifts), kernel, 1, pad)
            nn.init.zeros_(self.copy_head.weight)
            assert self.copy_head.bias is not None
            nn.init.constant_(self.copy_head.bias, math.log(COPY_START / (1.0 - COPY_START)) / COPY_SCALE)
        else:
            self.copy_head = None
        self.df_head: nn.Conv1d | None = None
        if self.df_bins:  # real and imaginary coefficient per tap, zero at the start: no filter
            self.df_head = nn.Conv1d(2 * channels[0], 2 * self.df_order, kernel, 1, pad)
            nn.init.zeros_(self.df_head.weight)
            assert self.df_head.bias is not None
            nn.init.zeros_(self.df_head.bias)
        self.df_phase: nn.Sequential | None = None
        if df_phase:  # per bin: the coefficients, the phase moves to each earlier frame, the power against the band
            inputs = 2 * self.df_order + 2 * (self.df_order - 1) + 1
            last = nn.Linear(int(df_phase), 2 * self.df_order)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.df_phase = nn.Sequential(nn.Linear(inputs, int(df_phase)), nn.ReLU(), last, nn.Tanh())
        self.floor_in: nn.Conv1d | None = None
        if self.floor:  # each band's level above its floor into the first level: zero at the start
            self.floor_in = nn.Conv1d(1, channels[0], kernel, 1, pad)
            nn.init.zeros_(self.floor_in.weight)
            assert self.floor_in.bias is not None
            nn.init.zeros_(self.floor_in.bias)
        self.comb_in: nn.Conv1d | None = None
        self.comb_head: nn.Conv1d | None = None
        if comb:  # the copies' likeness per band into the first level, and a weight per copy and band out: both zero
            self.comb_in = nn.Conv1d(int(comb), channels[0], kernel, 1, pad)
            self.comb_head = nn.Conv1d(2 * channels[0], int(comb), kernel, 1, pad)
            for layer in (self.comb_in, self.comb_head):
                nn.init.zeros_(layer.weight)
                assert layer.bias is not None
                nn.init.zeros_(layer.bias)

    def _dft_buffers(self) -> None:
        analysis, synthesis = window_pair(self.frame, self.hop)
        self.analysis = RealDFT(self.frame, analysis)
        self.synthesis = InverseRealDFT(self.frame, synthesis, 2 * self.hop)  # the synthesis window is zero before

    # ------------------------------------------------------------------ streaming

    def state_names(self) -> list[str]:
        names = ["frames", "gru", "ola"] if self.gru is not None else ["frames", "ola"]
        names += ["df"] if self.df_bins else []
        names += ["band"] if self.band_context is not None else []
        names += ["comb"] if self.comb is not None else []
        return names + ["floor"] if self.floor else names

    def state_shapes(self) -> list[tuple[int, ...]]:
        """``frames`` (the previous ``frame - hop`` samples of input), ``gru`` (``[1, batch, H]``), ``ola`` (the overlap tail)."""
        shapes: list[tuple[int, ...]] = [(-1, 1, self.frame - self.hop)]
        if self.gru is not None:
            shapes.append((1, -1, self.gru_hidden))
        shapes.append((-1, 1, self.hop))
        if self.df_bins:  # the low bins' spectra (real | imaginary) of the df_order - 1 frames before
            shapes.append((-1, self.df_order - 1, 2 * self.df_bins))
        if self.band_context is not None:  # the band GRU's state, per position of the first level
            shapes.append((-1, self.lengths[0], self.band_context.hidden))
        if self.comb is not None:  # the input before the chunk that the pitch search and the copies reach back to
            shapes.append((-1, 1, self.comb.history))
        if self.floor:  # the band levels of the floor - 1 frames before, stored as FLOOR_EMPTY - level (0: no frame)
            shapes.append((-1, self.floor - 1, self.bands or self.bins))
        return shapes

    def gains(self, mag: torch.Tensor, h: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """``mag`` ``[batch, m, F]`` -> gains ``[batch, m, F]``, the copies' gains ``[batch, m, copies, F]``
        (``None`` without copies) and the new GRU state. The network sees the frames as one image
        ``[1, channels, batch * m, positions]`` (module docstring)."""
        gain, copy, h, _, _, _ = self.heads(mag.square(), h)
        return gain, copy, h

    def heads(
        self,
        power: torch.Tensor,
        h: torch.Tensor | None,
        band: torch.Tensor | None = None,
        likeness: torch.Tensor | None = None,
        above: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """:meth:`gains` from the power per bin ``|X|^2``, the deep filter's coefficients ``[batch, m, 2 df_order,
        df_bins]`` (real parts of the taps, then imaginary; ``None`` without the filter), the band GRU's new state
        (``None`` without it; ``band`` is its state, zero when ``None``) and the comb's weights ``[batch, m, comb, F]``
        (``None`` without it; ``likeness`` ``[batch, m, comb, positions]`` is what the network sees of the copies;
        ``above`` ``[batch, m, positions]`` each band's level above its floor, :meth:`level_above_floor`)."""
        b, m, f = power.shape  # |X|^2 per bin
        power = self.band_power(power)
        features = [power.clamp_min(1e-24).pow(POWER / 2)]
        if self.log_features:  # log10 power from 1e-12 (digital silence) up, scaled to about -2..2
            features.append(_log_level(power))
        z = torch.stack(features).reshape(1, len(features), b * m, -1)
        skips = []
        band_new = None
        for level, enc in enumerate(self.encoders):
            z = _run_block(enc, z)
            if level == 0 and self.band_context is not None:
                z, band_new = self.band_context(z, b, band)
            if level == 0 and self.comb_in is not None and likeness is not None:
                z = z + _conv(self.comb_in, likeness.permute(2, 0, 1, 3).reshape(1, -1, b * m, likeness.shape[-1]))
            if level == 0 and self.floor_in is not None and above is not None:
                z = z + _conv(self.floor_in, above.reshape(1, 1, b * m, above.shape[-1]))
            skips.append(z)
        if self.gru is not None:
            c, length = z.shape[1], z.shape[3]
            flat = z.transpose(1, 2).reshape(b, m, c * length)
            g, h = self.gru(torch.relu(self.gru_in(flat)), h)
            if self.voice is not None and self.training:
                self.voice_logits = self.voice(g).squeeze(-1)
            z = z + self.gru_out(self.drop(g)).reshape(1, b * m, c, length).transpose(1, 2)
        levels = len(self.encoders)
        for level in reversed(range(levels - 1)):
            if level < levels - 2:
                z = torch.cat([z, skips[level + 1]], dim=1)
            z = _run_block(self.decoders[level], z)
            c = z.shape[1] // 2  # sub-pixel shuffle: [c * 2, L] -> [c, 2L], cropped to the level's bins
            z = z.reshape(1, c, 2, b * m, -1).permute(0, 1, 3, 4, 2).reshape(1, c, b * m, -1)[..., : self.lengths[level]]
        z = torch.cat([z, skips[0]], dim=1)
        gain = self.to_bins(self.max_gain * torch.sigmoid(_conv(self.final, z) + self._gain_bias))
        copy = None
        if self.copy_head is not None:
            copy = self.to_bins(torch.sigmoid(COPY_SCALE * _conv(self.copy_head, z)))  # [1, copies, b m, F]
            copy = copy.transpose(1, 2).reshape(b, m, len(self.shifts), f)
        coef = None
        if self.df_head is not None:
            taps = 2 * self.df_order
            coef = torch.tanh(_conv(self.df_head, z))  # [1, taps, b m, positions]: spread to the filtered bins only
            coef = coef @ self.band_weights[:, : self.df_bins] if self.bands else coef[..., : self.df_bins]
            coef = coef.transpose(1, 2).reshape(b, m, taps, self.df_bins)
        weights = None
        if self.comb_head is not None:
            weights = self.to_bins(torch.tanh(_conv(self.comb_head, z)))  # [1, comb, b m, F]
            weights = weights.transpose(1, 2).reshape(b, m, -1, f)
        return gain.reshape(b, m, f), copy, h, coef, band_new, weights

    def band_power(self, power: torch.Tensor) -> torch.Tensor:
        """``[..., bins]`` power -> the mean power per band (each band's weights normalised to sum to one);
        unchanged without bands."""
        return power @ (self.band_weights / self.band_weights.sum(dim=1, keepdim=True)).T if self.bands else power

    def to_bins(self, per_position: torch.Tensor) -> torch.Tensor:
        """``[..., bands]`` -> ``[..., bins]`` through the triangular filters (identity without bands)."""
        return per_position @ self.band_weights if self.bands else per_position

    def _replicate(self, part: torch.Tensor, copy: torch.Tensor) -> torch.Tensor:
        """``sum_m copy[:, :, m] * part`` moved up by ``shifts[m]`` bins.

        ``part``: ``[b, m, F]``, real or imaginary.
        """
        out: torch.Tensor | int = 0  # shifts is never empty here: a tensor comes out
        for index, d in enumerate(self.shifts):
            moved = torch.nn.functional.pad(part[..., : self.bins - d], (d, 0))
            out = out + copy[:, :, index] * moved
        return cast(torch.Tensor, out)

    def step(self, x: torch.Tensor, states: Sequence[torch.Tensor]) -> tuple[torch.Tensor, State]:
        """Enhance the next chunk ``[batch, 1, m * hop]`` given the state after the previous one."""
        self._check_step(x, states)
        states = list(states)
        floor_prev = states.pop() if self.floor else None
        comb_prev = states.pop() if self.comb is not None else None
        band = states.pop() if self.band_context is not None else None
        df_prev = states.pop() if self.df_bins else None
        if self.gru is not None:
            prev, h, tail = states
        else:
            (prev, tail), h = states, None
        b, hop, spans = x.shape[0], self.hop, self.frame // self.hop
        audio = torch.cat([prev, x], dim=2).reshape(b, -1)  # [b, (m + spans - 1) * hop]
        m = audio.shape[1] // hop - spans + 1
        rows = audio.reshape(b, -1, hop)  # [b, m + spans - 1, hop]: frame t is rows t .. t + spans - 1 side by side
        frames = torch.cat([rows[:, i : i + m] for i in range(spans)], dim=2)  # [b, m, frame]: no index tensor
        likeness = comb_new = copies = None
        if self.comb is not None and comb_prev is not None:  # the frames and their copies through one transform
            long = torch.cat([comb_prev, x], dim=2).reshape(b, -1)  # [b, history + m hop]
            shifted = self.comb.frames(long, m, self.comb.lags(long, m))  # [b, m, comb, frame]
            all_re, all_im = self.analysis(torch.cat([frames.unsqueeze(2), shifted], dim=2))  # [b, m, 1 + comb, F]
            re, im, copies = all_re[:, :, 0], all_im[:, :, 0], (all_re[:, :, 1:], all_im[:, :, 1:])
            comb_new = long[:, None, -self.comb.history :]
        else:
            re, im = self.analysis(frames)  # [b, m, F]
        power = re * re + im * im + 1e-20
        if copies is not None:
            likeness = self._likeness(re, im, power, *copies)
        above = floor_new = None
        if floor_prev is not None:
            above, floor_new = self.level_above_floor(power, floor_prev)
        gain, copy, h_new, coef, band_new, weights = self.heads(power, h, band, likeness, above)
        mix_re, mix_im = re, im
        if weights is not None and copies is not None:  # the frame moved towards its copies, then the gain
            mix_re = re + (weights * (copies[0] - re.unsqueeze(2))).sum(dim=2)
            mix_im = im + (weights * (copies[1] - im.unsqueeze(2))).sum(dim=2)
        out_re, out_im = gain * mix_re, gain * mix_im
        if copy is not None:
            out_re = out_re + self._replicate(re, copy)
            out_im = out_im + self._replicate(im, copy)
        df_new = None
        if coef is not None and df_prev is not None:
            k = self.df_bins
            history = torch.cat([df_prev, torch.cat([re[..., :k], im[..., :k]], dim=2)], dim=1)  # [b, m + order - 1, 2k]
            if self.df_phase is not None:
                coef = coef + self._phase_correction(history, coef, power, m)
            df_re, df_im = self._deep_filter(history, coef, m)
            pad = (0, self.bins - k)
            out_re = out_re + torch.nn.functional.pad(df_re, pad)
            out_im = out_im + torch.nn.functional.pad(df_im, pad)
            df_new = history[:, m:]
        out = self.synthesis(out_re, out_im)  # [b, m, 2 hop], windowed
        first, second = out[..., :hop], out[..., hop:]
        y = first + torch.cat([tail.reshape(b, 1, hop), second[:, :-1]], dim=1)
        new = [audio[:, None, hop - self.frame :]]  # the last frame - hop samples
        if h_new is not None:
            new.append(h_new)
        new.append(second[:, -1:].reshape(b, 1, hop))
        if df_new is not None:
            new.append(df_new)
        if band_new is not None:
            new.append(band_new)
        if comb_new is not None:
            new.append(comb_new)
        if floor_new is not None:
            new.append(floor_new)
        return y.reshape(b, 1, -1), new

    def level_above_floor(self, power: torch.Tensor, prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each band's log level (the log feature's scale) above its floor, the least level of this frame and the
        ``floor - 1`` before it: ``power`` ``[b, m, F]`` (``|X|^2`` per bin), ``prev`` ``[b, floor - 1, positions]`` the
        state (``FLOOR_EMPTY - level`` of the frames before, zeros where there was none, so a stream's start takes
        its floor from the frames it has) -> ``[b, m, positions]`` (0 or more) and the new state. The minimum over a
        window of frames is a max-pool of the stored values: one operator for any number of frames per call."""
        level = _log_level(self.band_power(power))
        stored = torch.cat([prev, FLOOR_EMPTY - level], dim=1)  # [b, floor - 1 + m, positions]
        most = torch.nn.functional.max_pool1d(stored.transpose(1, 2), self.floor, 1).transpose(1, 2)  # [b, m, positions]
        return level - (FLOOR_EMPTY - most), stored[:, -(self.floor - 1) :]

    def _likeness(self, re: torch.Tensor, im: torch.Tensor, power: torch.Tensor, c_re: torch.Tensor, c_im: torch.Tensor) -> torch.Tensor:
        """Per band (or bin), the normalised cross-power of a frame ``re + i im`` ``[b, m, F]`` and each of its copies
        ``[b, m, comb, F]``: the real part of ``sum X C*`` over ``sqrt(sum |X|^2 sum |C|^2)``, in [-1, 1]: near one where
        the copy repeats the frame (a voiced harmonic one period back), near zero for noise -> ``[b, m, comb, positions]``."""
        cross = self.band_power(re.unsqueeze(2) * c_re + im.unsqueeze(2) * c_im)
        return cross / (self.band_power(power).unsqueeze(2) * self.band_power(c_re * c_re + c_im * c_im + 1e-20)).sqrt()

    def _phase_correction(self, history: torch.Tensor, coef: torch.Tensor, power: torch.Tensor, m: int) -> torch.Tensor:
        """``df_phase``'s correction ``[b, m, 2 order, k]`` of the coefficients ``coef`` (same shape), from the low bins'
        ``history`` ``[b, m + order - 1, 2k]`` (oldest first) and the power per bin ``power`` ``[b, m, F]``."""
        assert self.df_phase is not None
        k, order = self.df_bins, self.df_order
        now = history[:, order - 1 :]  # [b, m, 2k]: this frame
        a, b_ = now[..., :k], now[..., k:]
        features = [coef.transpose(2, 3)]  # [b, m, k, 2 order]
        moves = []
        for lag in range(1, order):
            then = history[:, order - 1 - lag : order - 1 - lag + m]
            c, d = then[..., :k], then[..., k:]
            norm = ((a * a + b_ * b_) * (c * c + d * d)).sqrt() + 1e-12
            moves += [(a * c + b_ * d) / norm, (b_ * c - a * d) / norm]  # X[t] X*[t - lag], unit length
        features.append(torch.stack(moves, dim=-1))
        band = self.to_bins(self.band_power(power))[..., :k] if self.bands else power[..., :k]
        features.append((torch.log(power[..., :k] + LOG_FLOOR) - torch.log(band + LOG_FLOOR)).unsqueeze(-1) * LOG_SCALE)
        return self.df_phase(torch.cat(features, dim=-1)).transpose(2, 3)

    def _deep_filter(self, history: torch.Tensor, coef: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``sum_i c_i X[t - i]`` over the taps, complex: ``history`` ``[b, m + order - 1, 2k]`` (real | imaginary
        of the low bins, oldest first), ``coef`` ``[b, m, 2 order, k]`` -> real and imaginary parts ``[b, m, k]``."""
        k, order = self.df_bins, self.df_order
        # every tap at once (a streaming hop is one frame: a handful of graph operators, not a handful per tap)
        rows = torch.arange(m, device=history.device)[:, None] + torch.arange(order - 1, -1, -1, device=history.device)
        past = history[:, rows]  # [b, m, order, 2k]: X[t - tap] for each frame and tap
        x_re, x_im = past[..., :k], past[..., k:]
        c_re, c_im = coef[:, :, :order], coef[:, :, order:]
        return (c_re * x_re - c_im * x_im).sum(dim=2), (c_re * x_im + c_im * x_re).sum(dim=2)

    def widened(self, state: dict[str, torch.Tensor], hidden: int) -> dict[str, torch.Tensor]:
        """The bottleneck GRU's tensors of ``state`` (a model like this one with a GRU of ``hidden`` units,
        fewer than ours) embedded in this model's own: the old units keep their weights and do not see the new
        ones, and ``gru_out`` reads the old units only, so the widened model computes what the narrower one
        did while the new units (their fresh initialisation) learn beside them. Returns the tensors to load."""
        if self.gru is None or not 0 < hidden < self.gru_hidden:
            raise ValueError(f"can only widen a GRU of fewer than {self.gru_hidden} units; got {hidden}")
        ours, new, h = self.state_dict(), {}, hidden
        size = self.gru_hidden
        for name in ("gru_in.weight", "gru_in.bias"):
            new[name] = ours[name].clone()
            new[name][:h] = state[name]
        for name in ("gru.weight_ih_l0", "gru.weight_hh_l0", "gru.bias_ih_l0", "gru.bias_hh_l0"):
            tensor = ours[name].clone()
            for gate in range(3):  # reset, update, new: [gate * size, gate * size + h) are the old units
                rows = slice(gate * size, gate * size + h)
                old = state[name][gate * h : (gate + 1) * h]
                if tensor.dim() == 2:
                    tensor[rows] = 0.0
                    tensor[rows, :h] = old
                else:
                    tensor[rows] = old
            new[name] = tensor
        new["gru_out.weight"] = torch.zeros_like(ours["gru_out.weight"])
        new["gru_out.weight"][:, :h] = state["gru_out.weight"]
        new["gru_out.bias"] = state["gru_out.bias"].clone()
        return new

    # ------------------------------------------------------------------ geometry and cost

    @property
    def total_stride(self) -> int:
        return self.hop

    @property
    def recurrent(self) -> bool:
        return self.gru is not None

    def input_span(self, t: int) -> tuple[int, int]:
        """Output ``t`` (input ``t - hop``, late by the lookahead) is the overlap of the two frames whose
        synthesis windows cover it, the later one ending with the hop that holds ``t``: inputs from the
        earlier frame's start to the later one's end (plus the GRU's unbounded past), less the earlier frame's
        first sample, where the analysis window is zero."""
        end = (t // self.hop + 1) * self.hop
        start = end - self.hop - self.frame + 1
        if self.comb is not None:  # the pitch search and the copies reach back over the comb's history
            start = min(start, end - self.hop - self.comb.history)
        if self.floor:  # the noise floor: the frames of its window before the earlier frame
            start = min(start, end - self.hop - self.frame + 1 - (self.floor - 1) * self.hop)
        return start, end - 1

    def macs(self, window: int) -> int:
        """MACs of one pass over ``window`` samples: DFTs, convolutions, linear layers and the GRU."""
        self.check_window(window)
        frames = window // self.hop
        f = self.bins
        dft = self.analysis.macs + self.synthesis.macs
        if self.bands:  # band energies and the spread of gains (and copies) back to the bins
            dft += self.bands * f * (2 + len(self.shifts))
        convs = 0
        for enc, length in zip(self.encoders, self.lengths):
            conv = _first_conv(enc)
            convs += length * conv.out_channels * conv.in_channels * conv.kernel_size[0]
        for level, dec in enumerate(self.decoders):
            conv = _first_conv(dec)
            convs += self.lengths[level + 1] * conv.out_channels * conv.in_channels * conv.kernel_size[0]
        positions = self.lengths[0]
        convs += positions * self.final.in_channels * self.final.kernel_size[0]
        if self.copy_head is not None:
            convs += positions * len(self.shifts) * self.copy_head.in_channels * self.copy_head.kernel_size[0]
            convs += 2 * f * len(self.shifts)
        if self.df_head is not None:  # its head, the spread of its coefficients, and the filter (4 MACs per tap and bin)
            convs += positions * 2 * self.df_order * self.df_head.in_channels * self.df_head.kernel_size[0]
            convs += 2 * self.df_order * self.df_bins * (self.bands or 1) + 4 * self.df_order * self.df_bins
        if self.df_phase is not None:  # per filtered bin: the small network, and the phase moves (~8 MACs per lag)
            first, last = cast(nn.Linear, self.df_phase[0]), cast(nn.Linear, self.df_phase[2])
            convs += self.df_bins * (first.in_features * first.out_features + last.in_features * last.out_features)
            convs += self.df_bins * 8 * (self.df_order - 1)
        if self.comb is not None and self.comb_in is not None and self.comb_head is not None:
            # the search and windowing, the copies' DFTs, their likeness per band, the two convolutions, the sum
            k = self.comb.copies
            convs += self.comb.macs + k * (self.analysis.macs + 6 * f + 3 * (self.bands or 0) * f)
            convs += positions * k * (self.comb_in.out_channels + self.comb_head.in_channels) * self.comb_in.kernel_size[0]
            convs += k * (positions * f if self.bands else 0) + 4 * k * f
        if self.floor_in is not None:  # the window's comparisons per band, its way in
            convs += positions * (self.floor + self.floor_in.out_channels * self.floor_in.kernel_size[0])
        gru = 0
        if self.gru is not None:
            flat, hdim = self.gru_in.in_features, self.gru_hidden
            gru = 2 * flat * hdim + 3 * hdim * 2 * hdim
        if self.band_context is not None:
            gru += self.lengths[0] * self.band_context.macs
        return frames * (dft + convs + gru)

    def describe(self, window: int | None = None) -> dict[str, Any]:
        return {
            **super().describe(window),
            "lookahead": self.lookahead,
            "frame": self.frame,
            "gru_hidden": self.gru_hidden,
            "states": len(self.state_shapes()),
            "bands": self.bands or self.bins,
        }


class BandGRU(nn.Module):
    """A GRU across frames on every position of a frame image ``[1, channels, b * m, positions]``, its weights
    shared by the positions, added back through a linear projection that starts at zero (the block begins as the
    identity). The state is ``[b, positions, hidden]``."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.gru = nn.GRU(channels, hidden, batch_first=True)
        self.out = nn.Linear(hidden, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def macs(self) -> int:
        """Per position and frame."""
        c, h = self.gru.input_size, self.hidden
        return 3 * h * (c + h) + h * c

    def forward(self, z: torch.Tensor, b: int, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        c, positions = z.shape[1], z.shape[3]
        seq = z.reshape(c, b, -1, positions).permute(1, 3, 2, 0).reshape(-1, z.shape[2] // b, c)  # [b P, m, c]
        h0 = None if state is None else state.reshape(1, -1, self.hidden)
        g, h = self.gru(seq, h0)
        back = self.out(g).reshape(b, positions, -1, c).permute(3, 0, 2, 1).reshape(1, c, -1, positions)
        return z + back, h.reshape(b, positions, self.hidden)


def _log_level(power: torch.Tensor) -> torch.Tensor:
    """The log feature of a power: ``(log10(p) + 4) / 4`` from LOG_FLOOR (digital silence) up, about -2..2."""
    return torch.log(power + LOG_FLOOR) * LOG_SCALE + 1.0


def _conv(conv: nn.Conv1d, z: torch.Tensor) -> torch.Tensor:
    """``conv`` (over positions) on every frame of ``z`` ``[1, channels, frames, positions]`` at once, as a
    ``1 x kernel`` 2-D convolution: the same weights, one matrix product instead of one per frame."""
    return torch.nn.functional.conv2d(z, conv.weight.unsqueeze(2), conv.bias, (1, conv.stride[0]), (0, cast(tuple[int], conv.padding)[0]))


def _block(conv: nn.Conv1d, norm: bool) -> nn.Sequential:
    """An encoder or decoder block: the convolution, a batch normalisation of its channels when ``norm``, a PReLU."""
    layers: list[nn.Module] = [conv, nn.BatchNorm2d(conv.out_channels)] if norm else [conv]
    return nn.Sequential(*layers, nn.PReLU(conv.out_channels))


def _run_block(block: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """An encoder or decoder block (:func:`_block`) on the frame image ``[1, channels, frames, positions]``: batch
    normalisation and PReLU are per channel, dimension 1, in any layout."""
    conv, *rest = block.children()
    assert isinstance(conv, nn.Conv1d)
    z = _conv(conv, z)
    for layer in rest:
        z = layer(z)
    return z


def window_pair(frame: int, hop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Analysis and synthesis windows ``[frame]`` (float64) whose product overlaps to one at ``hop``.

    ``frame = 2 hop``: sqrt-Hann both. Longer: the asymmetric pair (module docstring): the analysis
    window rises as the first half of a sqrt-Hann of ``2 (frame - hop)`` samples and falls as the second
    half of one of ``2 hop``; the synthesis window is zero but for the last ``2 hop`` samples, where the
    product of the two is a periodic Hann of ``2 hop`` samples."""
    short = torch.sin(math.pi * torch.arange(2 * hop, dtype=torch.float64) / (2 * hop))  # sqrt-Hann, 2 hop
    if frame == 2 * hop:
        return short, short.clone()
    rise = frame - hop
    analysis = torch.cat([torch.sin(math.pi * torch.arange(rise, dtype=torch.float64) / (2 * rise)), short[hop:]])
    synthesis = torch.zeros(frame, dtype=torch.float64)
    synthesis[frame - 2 * hop : frame - hop] = short[:hop].square() / analysis[frame - 2 * hop : frame - hop]
    synthesis[frame - hop :] = short[hop:]
    return analysis, synthesis


def erb_rate(hz: torch.Tensor) -> torch.Tensor:
    """Glasberg and Moore's ERB-rate scale (ERBs below ``hz``)."""
    return 21.4 * torch.log10(1.0 + 0.00437 * hz)


def erb_filterbank(bins: int, bands: int, sample_rate: int) -> torch.Tensor:
    """Triangular filters ``[bands, bins]``: linear interpolation between band centres spaced evenly in
    ERB rate from 0 Hz to Nyquist, each centre at least one bin above the last, so every bin's
    weights sum to one.

    Where the ERB spacing is finer than the bins (the low frequencies), the centres are one bin
    apart and the filters are single bins: full resolution where speech has its harmonics.
    """
    nyquist = sample_rate / 2
    top = float(erb_rate(torch.tensor(nyquist, dtype=torch.float64)))
    hz = (10 ** (torch.linspace(0.0, top, bands, dtype=torch.float64) / 21.4) - 1.0) / 0.00437
    centres = [0.0]
    for position in (hz * (bins - 1) / nyquist).tolist()[1:]:
        centres.append(max(position, centres[-1] + 1.0))
    # pull the top centres down where the one-bin minimum pushed them past Nyquist (bands close to bins)
    ceiling = (bins - 1) - torch.arange(bands - 1, -1, -1, dtype=torch.float64)
    points = torch.minimum(torch.tensor(centres, dtype=torch.float64), ceiling).numpy()
    points[-1] = bins - 1
    k = np.arange(bins, dtype=np.float64)
    weights = np.stack([np.interp(k, points, row) for row in np.eye(bands)])
    return torch.from_numpy(weights).float()
