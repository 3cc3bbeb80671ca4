"""The degradation pipeline run by torch on whole batches, on the training device (a GPU's answer to a
CPU-bound data path).

:func:`device_pipeline` turns a parsed ``--preprocessing`` :class:`~rt_enhance.training.degrade.Pipeline`
into :class:`DeviceStep` objects that degrade a batch ``[B, N]`` at once, with the CPU steps' meaning
(training/degrade/) and per-item random draws from a ``torch.Generator``:

- ``identity P``, ``maybe P STEP``, ``gain``, ``clip``, ``quantize``: as on the CPU, per item;
- ``noise DIR`` / ``noise synth``: a random stretch of a random file of a :class:`Bank` (files decoded
  once; ``synth`` noise is a bank of segments made by training/degrade/noisegen.py's generators at start-up,
  each kind equally often), looped when short, added at an SNR drawn per item and measured over
  the whole segment as the CPU step does (a silent signal counts as -60 dBFS); ``vary`` draws a speed and a
  spectral tilt per item as the CPU step does;
- ``rir DIR [DRR_MIN DRR_MAX]``: a random response of a :class:`RirBank` (unit direct path at its
  largest tap), its reverberant part rescaled to a drawn direct-to-reverberant ratio, convolved by
  FFT and aligned on the direct path; the target goes through the direct part only (+-2.5 ms);
- ``lowpass`` / ``bandlimit``: the zero-phase (forward-backward) response of the same Butterworth or
  Chebyshev I (0.05 dB ripple) filter, ``|H|^2`` from its analogue prototype through the bilinear
  transform, applied in the frequency domain (the segment's context keeps the circular wrap out of
  the window).

The steps that change the sample rate (``sample``, ``scale``, ``reverb``) and ``rir simulate``,
``whitenoise``... have no device version: :class:`Unsupported` names them, and training then
degrades on the CPU (DataLoader workers) instead.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rt_enhance.realtime.errors import RtEnhanceError
from rt_enhance.training import degrade as cpu
from rt_enhance.training.degrade import noise as cpu_noise
from rt_enhance.training.degrade import noisegen

logger = logging.getLogger(__name__)

SILENT_POWER = 1e-6  # -60 dBFS: the power a silent segment counts as when noise is scaled to an SNR


class Unsupported(RtEnhanceError, ValueError):
    """A pipeline step that has no device version; the message names it."""


# ---------------------------------------------------------------------------------------------------------------
# Audio banks
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Bank:
    """Mono files concatenated in one tensor: ``audio [total]``, ``offsets`` and ``lengths`` ``[files]`` (long);
    ``labels [files]`` (float), where the files carry one (a voice file 1, else 0: ``dataset_args voices=...``)."""

    audio: torch.Tensor
    offsets: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor | None = None

    @classmethod
    def from_arrays(cls, arrays: list[np.ndarray], device: torch.device, labels: list[float] | None = None) -> Bank:
        kept = [i for i, a in enumerate(arrays) if a.size]
        if not kept:
            raise ValueError("no audio to bank")
        lengths = torch.tensor([arrays[i].size for i in kept], dtype=torch.long)
        offsets = torch.cumsum(lengths, 0) - lengths
        audio = torch.from_numpy(np.concatenate([arrays[i] for i in kept]).astype(np.float32))
        flags = None if labels is None else torch.tensor([float(labels[i]) for i in kept]).to(device)
        return cls(audio.to(device), offsets.to(device), lengths.to(device), flags)

    @property
    def files(self) -> int:
        return int(self.lengths.numel())

    def take(self, files: torch.Tensor, starts: torch.Tensor, n: int, *, loop: bool) -> torch.Tensor:
        """``[B, n]``: from file ``files[b]`` at sample ``starts[b]`` (may be negative); looped within the
        file (``loop``) or zero outside it."""
        pos = starts[:, None] + torch.arange(n, device=starts.device)[None, :]
        length = self.lengths[files][:, None]
        if loop:
            return self.audio[self.offsets[files][:, None] + torch.remainder(pos, length)]
        inside = (pos >= 0) & (pos < length)
        index = self.offsets[files][:, None] + pos.clamp(min=0).minimum(length - 1)
        return self.audio[index] * inside

    def windows(self, batch: int, n: int, context: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``[batch, n + 2 context]``: windows uniform over the bank's audio (each file as often as its
        length), with ``context`` samples of the file (or zeros) on each side, as the dataset reads them;
        and the file of each ``[batch]``."""
        device = self.audio.device
        weights = self.lengths.float()
        files = torch.multinomial(weights, batch, replacement=True, generator=gen)
        room = (self.lengths[files] - n).clamp(min=0) + 1
        starts = (torch.rand(batch, device=device, generator=gen) * room).long()
        return self.take(files, starts - context, n + 2 * context, loop=False), files

    def stretches(self, batch: int, n: int, gen: torch.Generator, speed: torch.Tensor | None = None) -> torch.Tensor:
        """``[batch, n]``: a random stretch of a uniformly drawn file each, looped when shorter (as
        ``noise DIR`` reads its files); played at ``speed[b]`` (linear interpolation, as ``noise DIR ... vary``)
        when given."""
        device = self.audio.device
        files = torch.randint(self.files, (batch,), device=device, generator=gen)
        starts = (torch.rand(batch, device=device, generator=gen) * self.lengths[files]).long()
        if speed is None:
            return self.take(files, starts, n, loop=True)
        pos = torch.arange(n, device=device, dtype=torch.float64)[None, :] * speed.double()[:, None]
        whole = torch.floor(pos)
        frac = (pos - whole).to(self.audio.dtype)
        first = starts[:, None] + whole.long()
        length, offset = self.lengths[files][:, None], self.offsets[files][:, None]
        a = self.audio[offset + torch.remainder(first, length)]
        b = self.audio[offset + torch.remainder(first + 1, length)]
        return a + frac * (b - a)


@dataclass
class RirBank:
    """Room responses ``[R, taps]`` (zero-padded, each scaled to a unit direct path) and their direct taps ``[R]``."""

    rirs: torch.Tensor
    direct: torch.Tensor

    @classmethod
    def from_arrays(cls, arrays: list[np.ndarray], device: torch.device) -> RirBank:
        taps = max(a.size for a in arrays)
        rirs, direct = np.zeros((len(arrays), taps), np.float32), []
        for i, rir in enumerate(arrays):
            tap = int(np.argmax(np.abs(rir)))
            if rir[tap] == 0:
                raise ValueError(f"impulse response {i} is silent")
            rirs[i, : rir.size] = rir / rir[tap]
            direct.append(tap)
        return cls(torch.from_numpy(rirs).to(device), torch.tensor(direct, dtype=torch.long, device=device))


def synth_bank(kinds: tuple[str, ...], *, rate: int, segments: int, seconds: float, seed: int, device: torch.device) -> Bank:
    """``segments`` noise segments of ``seconds`` per kind of training/degrade/noisegen.py, unit RMS, as a bank."""
    rng = np.random.default_rng([seed, 7])
    n = max(int(seconds * rate), noisegen.MIN_SHAPED)
    arrays = [noisegen.synth_noise(kind, n, rate, rng).astype(np.float32) for kind in kinds for _ in range(segments)]
    return Bank.from_arrays(arrays, device)


# ---------------------------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Batch:
    """A batch being degraded: ``degraded``, ``target`` ``[B, N]`` float32, and ``active`` ``[B]`` (no
    ``identity`` has stopped the item)."""

    degraded: torch.Tensor
    target: torch.Tensor
    active: torch.Tensor


def _uniform(batch: int, low: float, high: float, like: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(batch, device=like.device, generator=gen)


def _where(mask: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    return torch.where(mask[:, None], new, old)


class DeviceStep:
    """One step on a batch; ``apply`` degrades the items in ``mask`` ``[B]`` and leaves the others."""

    def apply(self, batch: Batch, mask: torch.Tensor, gen: torch.Generator) -> None:
        raise NotImplementedError


@dataclass
class Identity(DeviceStep):
    p: float

    def apply(self, batch: Batch, mask: torch.Tensor, gen: torch.Generator) -> None:
        stop = torch.rand(mask.shape[0], device=mask.device, generator=gen) < self.p
        batch.active &= ~(stop & mask)


@dataclass
class Maybe(DeviceStep):
    p: float
    inner: DeviceStep

    def apply(self, batch: Batch, mask: torch.Tensor, gen: torch.Generator) -> None:
        chosen = torch.rand(mask.shape[0], device=mask.device, generator=gen) < self.p
        self.inner.apply(batch, mask & chosen, gen)


@dataclass
class Both(DeviceStep):
    """The inner step on the degraded signal and, with the same draws, on the target (``both STEP``)."""

    inner: DeviceStep

    def apply(self, batch: Batch, mask: torch.Tensor, gen: torch.Generator) -> None:
        before = gen.get_state()
        twin = Batch(batch.target, batch.target, batch.active.clone())
        self.inner.apply(batch, mask, gen)
        after = gen.get_state()
        gen.set_state(before)
        self.inner.apply(twin, mask, gen)
        gen.set_state(after)
        batch.target = twin.degraded


@dataclass
class Gain(DeviceStep):
    db_min: float
    db_max: float

    def apply(self, batch: Batch, mask: torch.Tensor, gen: torch.Generator) -> None:
        db = _uniform(mask.shape[0], self.db_min, self.db_max, mask, gen)
        factor = torch.where(mask, 10.0 ** (db / 20.0), torch.ones_like(db))[:, None]
        batch.degraded, batch.target = batch.degraded * factor, batch.target * factor


@dataclass
class Clip(DeviceStep):
    level: float

    def apply(self, batch: Batch, mask: torch.Tensor, gen: torch.Generator) -> None:
        batch.degraded = _where(mask, batch.degraded.clamp(-self.level, self.level), batch.degraded)


@dataclass
class Quantize(DeviceStep):
    bits: int

    def apply(self, batch: Batch, mask: torch.Tensor, gen: torch.Generator) -> None:
        step = 2.0 ** (1 - self.bits)
        rounded = (torch.round(batch.degraded / step) * step).clamp(-1.0, 1.0 - step)
        batch.degraded = _where(mask, rounded, batch.degraded)


@dataclass
class Noise(DeviceStep):
    """Additive noise from ``bank`` at an SNR uniform in [snr_min, snr_max] dB."""

    bank: Bank
    snr_min: float
    snr_max: float
    vary: bool = False
    rate: int = 48000

    def varied(self, b: int, n: int, gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
        """Stretches at drawn speeds and spectral tilts (the CPU step's ``vary``)."""
        speed = 2.0 ** _uniform(b, -cpu_noise.VARY_OCTAVES, cpu_noise.VARY_OCTAVES, like, gen)
        slope = _uniform(b, -cpu_noise.VARY_TILT_DB, cpu_noise.VARY_TILT_DB, like, gen)
        noise = self.bank.stretches(b, n, gen, speed)
        size = noisegen.fft_size(n)  # zero-padded as on the CPU
        gains = cpu_noise.tilt_gains(torch.fft.rfftfreq(size, 1.0 / self.rate, device=noise.device)[None, :], slope[:, None])
        return torch.fft.irfft(torch.fft.rfft(noise, size, dim=1) * gains, size, dim=1)[:, :n]

    def apply(self, batch: Batch, mask: torch.Tensor, gen: torch.Generator) -> None:
        b, n = batch.degraded.shape
        snr = _uniform(b, self.snr_min, self.snr_max, mask, gen)
        noise = self.varied(b, n, gen, mask) if self.vary else self.bank.stretches(b, n, gen)
        signal_power = batch.degraded.square().mean(dim=1).clamp(min=SILENT_POWER)
        noise_power = noise.square().mean(dim=1)
        scale = torch.sqrt(signal_power / noise_power.clamp(min=1e-20) / 10.0 ** (snr / 10.0))
        scale = torch.where(mask & (noise_power > 0), scale, torch.zeros_like(scale))
        batch.degraded = batch.degraded + scale[:, None] * noise


def _fft_convolve_aligned(x: torch.Tensor, rir: torch.Tensor, direct: torch.Tensor) -> torch.Tensor:
    """``x`` ``[B, N]`` convolved with ``rir`` ``[B, T]``, shifted so tap ``direct[b]`` lands at lag 0."""
    n, taps = x.shape[1], rir.shape[1]
    size = 1 << math.ceil(math.log2(n + taps))
    full = torch.fft.irfft(torch.fft.rfft(x, size) * torch.fft.rfft(rir, size), size)
    index = direct[:, None] + torch.arange(n, device=x.device)[None, :]
    return torch.gather(full, 1, index)


@dataclass
class Rir(DeviceStep):
    """Reverberation from ``bank``, optionally at a direct-to-reverberant ratio in ``drr`` dB; the target keeps
    the direct sound, or with ``early`` > 0 s also the reflections within ``early`` of it (as
    :func:`~rt_enhance.training.degrade.base.early_part`)."""

    bank: RirBank
    rate: int
    drr: tuple[float, float] | None = None
    early: float = 0.0

    def kept(self, rir: torch.Tensor, near: torch.Tensor, direct: torch.Tensor) -> torch.Tensor:
        """The part of each response ``[B, T]`` the target goes through."""
        if self.early <= 0:
            return rir * near
        offset = torch.arange(rir.shape[1], device=rir.device)[None, :] - direct[:, None]
        end = int(self.early * self.rate)
        taper = min(int(cpu.EARLY_TAPER_SECONDS * self.rate), end)
        fade = 0.5 * (1.0 + torch.cos(torch.pi * (offset - (end - taper)).clamp(min=0).to(rir.dtype) / max(taper, 1)))
        weight = torch.where(offset <= end - taper, torch.ones_like(fade), fade)
        inside = (offset >= -int(cpu.DIRECT_SECONDS * self.rate)) & (offset <= end)
        return torch.where(inside, rir * weight, torch.zeros_like(rir))

    def response(self, batch: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(rir [B, T], near [B, T] bool: the direct part, direct [B])`` for random responses."""
        pick = torch.randint(self.bank.rirs.shape[0], (batch,), device=self.bank.rirs.device, generator=gen)
        rir, direct = self.bank.rirs[pick], self.bank.direct[pick]
        taps = torch.arange(rir.shape[1], device=rir.device)[None, :]
        near = (taps - direct[:, None]).abs() <= int(cpu.DIRECT_SECONDS * self.rate)
        if self.drr is not None:
            direct_energy = (rir * near).square().sum(dim=1)
            tail_energy = (rir * ~near).square().sum(dim=1)
            wanted = _uniform(batch, *self.drr, rir, gen)
            scale = torch.sqrt(direct_energy / tail_energy.clamp(min=1e-30) * 10.0 ** (-wanted / 10.0))
            scale = torch.where(tail_energy > 0, scale, torch.ones_like(scale))
            rir = torch.where(near, rir, rir * scale[:, None])
        return rir, near, direct

    def apply(self, batch: Batch, mask: torch.Tensor, gen: torch.Generator) -> None:
        rir, near, direct = self.response(mask.shape[0], gen)
        wet = _fft_convolve_aligned(batch.degraded, rir, direct)
        dry = _fft_convolve_aligned(batch.target, self.kept(rir, near, direct), direct)
        batch.degraded, batch.target = _where(mask, wet, batch.degraded), _where(mask, dry, batch.target)


def chebyshev(order: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The Chebyshev polynomial ``T_order(x)`` for ``x >= 0`` (``cosh`` form above 1)."""
    inside = torch.cos(order * torch.acos(x.clamp(max=1.0)))
    outside = torch.cosh(order * torch.acosh(x.clamp(min=1.0)))
    return torch.where(x <= 1.0, inside, outside)


def zero_phase_response(hz: torch.Tensor, kind: torch.Tensor, order: torch.Tensor, rate: int, size: int) -> torch.Tensor:
    """``|H|^2`` ``[B, size // 2 + 1]`` of low-pass filters run forwards and backwards: per item a cutoff
    ``hz``, ``kind`` (1 Chebyshev I with 0.05 dB ripple, 0 Butterworth) and ``order``, as scipy designs
    them (bilinear transform with the cutoff prewarped)."""
    freqs = torch.fft.rfftfreq(size, 1.0 / rate).to(hz.device)[None, :].clamp(max=0.49999 * rate)
    omega = torch.tan(math.pi * freqs / rate) / torch.tan(math.pi * hz[:, None] / rate)
    order = order[:, None].to(omega.dtype)
    butter = 1.0 / (1.0 + omega.pow(2 * order))
    ripple = 10.0 ** (0.05 / 10.0) - 1.0
    cheby = 1.0 / (1.0 + ripple * chebyshev(order, omega).square())
    return torch.where(kind[:, None] == 1, cheby, butter)


def _filter(x: torch.Tensor, response: torch.Tensor, size: int) -> torch.Tensor:
    return torch.fft.irfft(torch.fft.rfft(x, size) * response, size)[:, : x.shape[1]]


@dataclass
class Lowpass(DeviceStep):
    """A low-pass of the degraded signal: fixed (``lowpass``) or drawn per item (``bandlimit``)."""

    rate: int
    low: float
    high: float
    kind: int | None = None  # None: drawn (cheby1 or butter), as bandlimit does
    order: int | None = None  # None: drawn in 4..12

    def apply(self, batch: Batch, mask: torch.Tensor, gen: torch.Generator) -> None:
        b, n = batch.degraded.shape
        device = mask.device
        hz = torch.exp(_uniform(b, math.log(self.low), math.log(self.high), mask, gen))
        kind = torch.randint(2, (b,), device=device, generator=gen) if self.kind is None else torch.full((b,), self.kind, device=device)
        order = (
            torch.randint(4, 13, (b,), device=device, generator=gen) if self.order is None else torch.full((b,), self.order, device=device)
        )
        run = mask & (hz < 0.49 * self.rate)
        size = 1 << math.ceil(math.log2(n))
        low = _filter(batch.degraded, zero_phase_response(hz.clamp(max=0.49 * self.rate), kind, order, self.rate, size), size)
        batch.degraded = _where(run, low, batch.degraded)


# ---------------------------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class DevicePipeline:
    """The device steps of one ``--preprocessing`` string; ``context`` is the CPU pipeline's."""

    steps: tuple[DeviceStep, ...]
    context: int

    def __call__(self, clean: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Degrade ``clean`` ``[B, N]``: returns ``(degraded, target)`` ``[B, N]`` float32."""
        batch = Batch(clean.clone(), clean, torch.ones(clean.shape[0], dtype=torch.bool, device=clean.device))
        for step in self.steps:
            step.apply(batch, batch.active.clone(), gen)
        return batch.degraded, batch.target


@dataclass
class Sources:
    """What the device steps read: a bank per ``noise DIR`` folder, a response bank per ``rir DIR``
    folder, and a function that makes the synthetic-noise bank for a set of kinds."""

    noise: dict[str, Bank]
    rirs: dict[str, RirBank]
    synth: Callable[[tuple[str, ...]], Bank]


#: The steps with no sources and no inner step; each function gets an instance of its key's class.
_SIMPLE: dict[type[cpu.Step], Callable[[Any, int], DeviceStep]] = {
    cpu.Identity: lambda s, rate: Identity(s.p),
    cpu.Gain: lambda s, rate: Gain(s.db_min, s.db_max),
    cpu.Clip: lambda s, rate: Clip(s.level),
    cpu.Quantize: lambda s, rate: Quantize(s.bits),
    cpu.Bandlimit: lambda s, rate: Lowpass(rate, s.low, s.high),
    cpu.Lowpass: lambda s, rate: Lowpass(rate, s.hz, s.hz, int(s.kind == "cheby1"), s.order),
}


def _check(step: cpu.Step) -> None:
    if isinstance(step, (cpu.Maybe, cpu.Both)):
        _check(step.inner)
    elif type(step) not in _SIMPLE and not isinstance(step, (cpu.Noise, cpu.RirFiles)):
        raise Unsupported(f"'{step.name}' has no device version")


def device_step(step: cpu.Step, rate: int, sources: Sources) -> DeviceStep:
    """The device version of one CPU step; :class:`Unsupported` when there is none."""
    _check(step)
    if isinstance(step, cpu.Maybe):
        return Maybe(step.p, device_step(step.inner, rate, sources))
    if isinstance(step, cpu.Both):
        return Both(device_step(step.inner, rate, sources))
    if type(step) in _SIMPLE:
        return _SIMPLE[type(step)](step, rate)
    if isinstance(step, cpu.Noise):
        bank = sources.synth(step.kinds) if step.files is None else sources.noise[step.files.folder]
        return Noise(bank, step.snr_min, step.snr_max, step.vary, rate)
    assert isinstance(step, cpu.RirFiles)  # the one kind _check lets through besides those above
    return Rir(sources.rirs[step.files.folder], rate, step.drr, step.early)


def device_pipeline(pipeline: cpu.Pipeline, rate: int, sources: Sources) -> DevicePipeline:
    """The whole pipeline on the device; :class:`Unsupported` names the first step that cannot run there."""
    steps = tuple(device_step(step, rate, sources) for step in pipeline.steps)
    return DevicePipeline(steps, pipeline.context(rate))


def unsupported(pipeline: cpu.Pipeline) -> str | None:
    """Why ``pipeline`` cannot run on the device (its first step without a device version), or None."""
    try:
        for step in pipeline.steps:
            _check(step)
    except Unsupported as exc:
        return str(exc)
    return None
