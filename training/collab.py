"""Collaborative sampling (Liu et al., "Collaborative Sampling in Generative Adversarial Networks",
AAAI 2020), offline only: never exported, never run live.

After training the discriminator is *shaped*: trained further on clean windows vs windows the
refinement below produces, so its gradient points from generated towards clean audio. At evaluation
each window is *refined*: the generator runs up to its bottleneck, the bottleneck activation ``h``
takes at most ``steps`` normalised gradient steps that raise the discriminator's "clean" logit
(``h <- h - rate * rms(h) * g / rms(g)``, ``g = d(-log D(G_rest(h)))/dh``, per window; a window the
discriminator already accepts stops moving), and the rest of the generator (decoder with the
encoder's skips, plus the input) runs on the refined activation.

Only the windowed :class:`~rt_enhance.model.Generator` can be split this way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from rt_enhance.model import Discriminator, Generator
from rt_enhance.realtime.errors import RtEnhanceError
from rt_enhance.realtime.metadata import ModelInfo

logger = logging.getLogger(__name__)

#: Where the networks run: a torch device or its name.
Device = torch.device | str


class CollabError(RtEnhanceError, ValueError):
    """Collaborative sampling cannot run with this model; one line for the user."""


@dataclass(frozen=True)
class CollabSettings:
    """Refinement: at most ``steps`` steps of relative size ``rate`` (a conditional discriminator also sees
    the degraded input)."""

    steps: int = 10
    rate: float = 0.05


def check_generator(generator: object) -> Generator:
    if type(generator) is not Generator:
        raise CollabError(f"collaborative sampling needs the windowed Generator, not {type(generator).__name__}")
    return generator


def encode(generator: Generator, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The generator up to its bottleneck: ``x`` ``[B, 1, W]`` -> (bottleneck activation, skips)."""
    skips, h = [], x
    for down in generator.downs:
        h = down(h)
        skips.append(h)
    return generator.bottleneck(h), skips


def decode(generator: Generator, h: torch.Tensor, skips: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The rest of the generator: ``decode(*encode(x), x) == generator(x)``; ``[B, 1, W]``."""
    for up, skip in zip(reversed(generator.ups), reversed(skips)):
        h = torch.cat([up(h), skip], dim=1)
    return x + generator.final(h)


def _rms(t: torch.Tensor) -> torch.Tensor:
    return t.pow(2).mean(dim=tuple(range(1, t.dim())), keepdim=True).sqrt()


def refine(generator: Generator, disc: Discriminator, x: torch.Tensor, settings: CollabSettings) -> tuple[torch.Tensor, int]:
    """Refined enhancement of ``x`` ``[B, 1, W]`` and the number of steps taken (<= ``settings.steps``).

    Both networks must be in eval mode; their weights are not changed.
    """
    cond = x if disc.conditional else None
    with torch.no_grad():
        h0, skips = encode(generator, x)
    scale, h, taken = _rms(h0), h0.clone(), 0
    for _ in range(settings.steps):
        h.requires_grad_(True)
        logits = disc.logits(decode(generator, h, skips, x), cond)
        active = (logits.detach() <= 0).to(h.dtype).view(-1, *([1] * (h.dim() - 1)))
        if not active.any():
            break
        loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="sum")
        (grad,) = torch.autograd.grad(loss, h)
        h = (h - settings.rate * scale * active * grad / (_rms(grad) + 1e-12)).detach()
        taken += 1
    with torch.no_grad():
        return decode(generator, h.detach(), skips, x), taken


def train_discriminator(
    generator: Generator, disc: Discriminator, batches: Iterable, *, count: int, lr: float, device: Device, settings: CollabSettings | None
) -> dict[str, float]:
    """``count`` mini-batches ``(degraded, clean)`` of discriminator training on clean vs generated windows
    (refined ones when ``settings`` is given: the shaping). Returns the final D(real) and D(fake) means."""
    opt = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.999))
    generator.eval().requires_grad_(False)
    stats = {"d_real": float("nan"), "d_fake": float("nan")}
    for i, (x, clean) in enumerate(batches):
        if i >= count:
            break
        x, clean = x.to(device), clean.to(device)
        fake = _fake(generator, disc, x, settings)
        disc.train().requires_grad_(True)
        cond = x if disc.conditional else None
        loss, stats = disc.discriminator_loss(clean, fake, cond)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    disc.eval()
    return stats


def _fake(generator: Generator, disc: Discriminator, x: torch.Tensor, settings: CollabSettings | None) -> torch.Tensor:
    if settings is None:
        with torch.no_grad():
            return generator(x)
    disc.eval()
    return refine(generator, disc, x, settings)[0]


def shape(
    generator: Generator,
    disc: Discriminator,
    batches: Iterable,
    *,
    count: int,
    lr: float,
    device: Device,
    settings: CollabSettings,
    fresh: bool,
) -> dict[str, float]:
    """Discriminator shaping; a ``fresh`` discriminator (no GAN training) first learns clean vs plain output."""
    check_generator(generator)
    disc.to(device)
    if fresh:
        warm = train_discriminator(generator, disc, batches, count=count, lr=lr, device=device, settings=None)
        logger.info("collab: fresh discriminator trained, D(clean) %.3f, D(enhanced) %.3f", warm["d_real"], warm["d_fake"])
    stats = train_discriminator(generator, disc, batches, count=count, lr=lr, device=device, settings=settings)
    logger.info("collab: discriminator shaped, D(clean) %.3f, D(refined) %.3f", stats["d_real"], stats["d_fake"])
    return stats


class CollabProcessor:
    """A processor for the engine's ``Streamer``: windows ``[n, W]`` -> refined enhancements ``[n, W]``."""

    native_rate = True
    is_identity = False

    def __init__(
        self,
        info: ModelInfo,
        generator: Generator,
        disc: Discriminator,
        settings: CollabSettings,
        *,
        device: Device = "cpu",
        batch: int = 64,
    ) -> None:
        self.info, self.generator, self.disc = info, check_generator(generator).eval(), disc.eval()
        self.settings, self.device, self.batch = settings, device, batch
        self.steps: list[int] = []

    def run(self, windows: np.ndarray) -> np.ndarray:
        out = np.empty_like(windows, dtype=np.float32)
        for start in range(0, len(windows), self.batch):
            x = torch.from_numpy(np.ascontiguousarray(windows[start : start + self.batch], np.float32))
            y, taken = refine(self.generator, self.disc, x[:, None].to(self.device), self.settings)
            out[start : start + len(x)] = y[:, 0].cpu().numpy()
            self.steps.append(taken)
        return out
