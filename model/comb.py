"""A causal pitch comb for the spectral model: copies of each frame delayed by whole pitch periods.

Within one band a gain scales the voice's harmonics and the noise between them alike; PercepNet (Valin et al., 2020)
adds a comb filter tuned to the pitch, which keeps what repeats every period (the voiced harmonics) and averages away
what does not. Here, causally: the input's pitch period ``T`` is found for each frame by the normalised
autocorrelation of its last ``PITCH_WINDOW`` seconds (on the input decimated to about ``PITCH_RATE`` Hz;
:class:`PitchComb`), refined to a fraction of a decimated sample by a parabola through the peak, and the frame is
taken again ``T``, ``2 T``, ... samples earlier. For a steady voiced sound each copy's spectrum is the frame's own at
the harmonics (the same phase: whole periods back), and anything else (noise, other voices) is uncorrelated, so a
weighted mean of the frame and its copies keeps the harmonics at their level and lowers the noise between them; the
gain then applies to that mean, ``g (X + sum_k w_k (X_k - X))``, so a gain learnt without the comb keeps its meaning.
The network sees, per band, how alike the frame and each copy are (their normalised cross-power: near one for a voiced
band, near zero for noise) and gives each copy a weight per band (:class:`~rt_enhance.model.spectral.SpectralUNet`,
``comb``).

No frame ahead is read, so no latency is added; what it costs is a longer input history (the state ``comb``) and
a pitch search per frame. The period is a choice, not a differentiable function of the input: gradients reach
the weights and the copies' samples, not the search. Lags are bounded to 60-400 Hz; an octave too low (``2 T``)
still aligns every harmonic, but smears twice as far back, so a small cost per octave settles near-ties for the
shorter period, as Boersma's octave cost does.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rt_enhance.model.dft import RealDFT

COMB_LOW_HZ, COMB_HIGH_HZ = 60.0, 400.0  # the pitch periods searched
PITCH_RATE = 12000  # the search runs on the input decimated (block means) to about this rate
PITCH_WINDOW = 0.04  # seconds of input whose autocorrelation picks the period (2.4 periods at the lowest pitch)
OCTAVE_COST = 0.02  # taken off a lag's correlation per octave below the highest pitch: a tie goes to the shorter period


class PitchComb(nn.Module):
    """``copies`` pitch-lagged copies of each frame: :meth:`lags` finds the period per frame, :meth:`frames`
    gathers the delayed frames. ``history`` samples before a call's first hop must come with it.

    The search is Boersma's (1993): the autocorrelation of a Hann-windowed stretch of the decimated input, from its
    power spectrum (a zero-padded DFT, then one product with a cosine table that holds only the lags searched),
    divided by the window's own autocorrelation, so that long lags are not favoured less for overlapping less. Every
    step is a matrix product over all frames at once: no per-lag gather of samples."""

    window: torch.Tensor
    cosines: torch.Tensor
    taus: torch.Tensor
    octaves: torch.Tensor

    def __init__(self, copies: int, hop: int, frame: int, sample_rate: int) -> None:
        super().__init__()
        self.copies, self.hop, self.frame = int(copies), hop, frame
        self.decim = max(1, sample_rate // PITCH_RATE)
        if hop % self.decim:
            raise ValueError(f"comb needs a hop that is a multiple of {self.decim} (the pitch search's decimation); got {hop}")
        rate, self.step = sample_rate / self.decim, hop // self.decim  # decimated samples per hop
        self.lo, self.hi = math.ceil(rate / COMB_HIGH_HZ), math.floor(rate / COMB_LOW_HZ)
        self.span = -(-round(PITCH_WINDOW * rate) // self.step) * self.step  # whole decimated hops
        if self.span <= self.hi + 1:
            raise ValueError(f"the pitch window ({self.span} samples at {rate:.0f} Hz) must outlast the longest period")
        n = 2 * self.span  # zero-padded: the circular autocorrelation is the linear one for lags below span
        d = torch.float64
        hann = torch.hann_window(self.span, periodic=False, dtype=d)
        taus = torch.arange(self.lo - 1, self.hi + 2)  # one lag beyond each end, for the parabola at the bounds
        lags = torch.cat([torch.zeros(1, dtype=torch.int64), taus]).to(d)
        k = torch.arange(n // 2 + 1, dtype=d)
        weight = torch.full_like(k, 2.0)
        weight[0] = weight[-1] = 1.0  # DC and Nyquist appear once in the full spectrum
        cosines = weight[:, None] * torch.cos(2 * math.pi * k[:, None] * lags[None, :] / n) / n  # [bins, 1 + lags]
        own = torch.tensor([float((hann[: self.span - int(t)] * hann[int(t) :]).sum()) for t in lags.tolist()], dtype=d)
        self.dft = RealDFT(n, torch.cat([hann, torch.zeros(n - self.span, dtype=d)]))
        self.register_buffer("cosines", (cosines / own).float(), persistent=False)  # divided by the window's own
        self.register_buffer("taus", taus, persistent=False)
        self.register_buffer("octaves", (OCTAVE_COST * torch.log2(taus[1:-1].to(d) / self.lo)).float(), persistent=False)
        longest = self.decim * self.hi + self.decim // 2 + 1  # the period after refinement (at most half a step past hi)
        reach = max(self.decim * self.span, frame + self.copies * longest)  # samples before a frame's end that are read
        self.history = -(-(reach - hop) // hop) * hop  # whole hops

    @property
    def macs(self) -> int:
        """Per frame: the decimation, the search's DFT and cosine table, and the copies' windowing."""
        return self.decim * self.span + self.dft.macs + self.cosines.numel() + self.copies * self.frame

    def lags(self, audio: torch.Tensor, m: int) -> torch.Tensor:
        """The pitch period in samples ``[b, m]`` (int64) of each of the ``m`` frames of ``audio`` ``[b, history + m
        hop]``, frame ``t`` ending at sample ``history + (t + 1) hop``."""
        with torch.no_grad():
            b = audio.shape[0]
            d = audio.reshape(b, -1, self.decim).mean(dim=2)  # [b, samples / decim]: block means
            ends = self._ends(m, audio.device) // self.decim
            pieces = d[:, ends[:, None] - self.span + torch.arange(self.span, device=audio.device)]  # [b, m, span]
            re, im = self.dft(torch.nn.functional.pad(pieces, (0, self.span)))
            r = (re * re + im * im) @ self.cosines  # [b, m, 1 + lags]: the autocorrelation, lag 0 first
            r = r[..., 1:] / (r[..., :1] + 1e-12)
            best = (r[..., 1:-1] - self.octaves).argmax(dim=-1, keepdim=True) + 1  # [b, m, 1]: index into taus, never an end
            r0, below, above = r.gather(-1, best), r.gather(-1, best - 1), r.gather(-1, best + 1)
            curve = below - 2 * r0 + above  # negative at a true peak
            shift = torch.where(curve < 0, 0.5 * (below - above) / curve.clamp(max=-1e-9), torch.zeros_like(curve))
            tau = self.taus[best].to(audio.dtype) + shift.clamp(-0.5, 0.5)
            return torch.round(tau * self.decim).squeeze(-1).to(torch.int64)

    def _ends(self, m: int, device: torch.device) -> torch.Tensor:
        """``[m]``: one past the last sample of each of a call's ``m`` frames, in the call's audio with its history."""
        return self.history + self.hop * (torch.arange(m, device=device) + 1)

    def frames(self, audio: torch.Tensor, m: int, lag: torch.Tensor) -> torch.Tensor:
        """The delayed frames ``[b, m, copies, frame]`` of ``audio`` (as in :meth:`lags`): copy ``k`` (from 1) of frame
        ``t`` ends ``k * lag[t]`` samples before the frame does. One gather for every copy."""
        b, length = audio.shape
        device = audio.device
        base = (torch.arange(b, device=device) * length)[:, None] + self._ends(m, device) - self.frame  # [b, m]: starts
        back = lag[..., None] * torch.arange(1, self.copies + 1, device=device)  # [b, m, copies]
        return audio.reshape(-1)[(base[..., None] - back)[..., None] + torch.arange(self.frame, device=device)]
