"""The models of a run, built from plain arguments: the generator (windowed U-Net or the streaming
causal U-Net), its discriminator and autoencoder, and the ``meta`` a checkpoint carries for rt-export.
"""

from __future__ import annotations

import inspect
import logging
import math
from typing import Any

from rt_enhance.model import AudioModel, Autoencoder, Discriminator, build_model, get_size
from rt_enhance.model.base import StreamingModel
from rt_enhance.model.multidisc import MultiDiscriminator
from rt_enhance.model.registry import UnknownModelError
from rt_enhance.model.sizes import NamedSize, default_hop
from rt_enhance.realtime.errors import RtEnhanceError
from rt_enhance.training.degrade import Pipeline

logger = logging.getLogger(__name__)


class ModelSetupError(RtEnhanceError, ValueError):
    """Model options that cannot build a model; one line for the user."""


ARCH_FAMILY = {"windowed": "Generator", "causal": "CausalUNet", "spectral": "SpectralUNet"}


def generator_kwargs(
    *, size: str, depth: int, dropout: float, rate: int, model_args: dict[str, Any], arch: str = "windowed"
) -> dict[str, Any]:
    """Constructor arguments: a named size's (else ``depth``), ``dropout``, ``sample_rate``, then ``model_args``.

    A streaming size (``stream-*``) needs ``arch="causal"``; the windowed sizes build either family.
    """
    if size:
        try:
            named = get_size(size)
        except KeyError as exc:
            raise ModelSetupError(exc.args[0]) from None
        wanted = {family: a for a, family in ARCH_FAMILY.items()}.get(named.family, "windowed")
        if named.family != "Generator" and arch != wanted:
            raise ModelSetupError(f"size {size!r} is a {named.family}; add --arch {wanted}")
        if arch == "spectral" and named.family != "SpectralUNet":
            raise ModelSetupError(f"--arch spectral needs a spectral size (spec-*), not {size!r}")
        base = dict(named.kwargs)
    else:
        base = {"depth": depth}
    return {**base, "dropout": dropout, "sample_rate": rate, **model_args}


def build_generator(arch: str, kwargs: dict[str, Any]) -> AudioModel:
    """The registered class of ``arch``'s family (:data:`ARCH_FAMILY`) built from ``kwargs``."""
    try:
        return build_model(ARCH_FAMILY[arch], kwargs)
    except UnknownModelError as exc:
        raise ModelSetupError(str(exc)) from None


def lookahead_of(model: AudioModel) -> int:
    """Samples by which the model's output lags the clean signal (0 for windowed models)."""
    return int(model.lookahead) if isinstance(model, StreamingModel) else 0


def _accepted(cls: type[AudioModel], kwargs: dict[str, Any]) -> dict[str, Any]:
    params = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in kwargs.items() if k in params}


def build_discriminator(generator: AudioModel, *, window: int, conditional: bool) -> Discriminator:
    """A discriminator shaped like the generator (same channels and kernels), for ``window``-sample inputs."""
    kwargs = _accepted(Discriminator, dict(generator.init_kwargs))
    kwargs.update(window=window, conditional=conditional, sample_rate=generator.sample_rate)
    depth = kwargs.get("depth", 4)
    while depth > 1 and window % 2**depth:
        depth -= 1
    kwargs["depth"] = depth
    try:
        return Discriminator(**kwargs)
    except ValueError as exc:
        raise ModelSetupError(f"cannot build the discriminator: {exc}") from None


#: Either discriminator ``--disc`` builds; both have ``discriminator_loss`` and ``generator_loss``.
AnyDiscriminator = Discriminator | MultiDiscriminator
MULTI_FFTS = (512, 1024, 2048)  # the resolution discriminators' FFT sizes at 48 kHz


def build_adversary(generator: AudioModel, *, kind: str, window: int, conditional: bool) -> AnyDiscriminator:
    """The discriminator ``--disc kind`` asks for: ``unet`` (:func:`build_discriminator`) or ``mpd-mrd``
    (HiFi-GAN's periods and UnivNet's resolutions; the resolutions' FFT sizes, 512 to 2048 at 48 kHz, scale
    with the generator's rate, and those longer than the training window are left out)."""
    if kind != "mpd-mrd":
        return build_discriminator(generator, window=window, conditional=conditional)
    scale = generator.sample_rate / 48000
    ffts = [n for n in (2 ** round(math.log2(base * scale)) for base in MULTI_FFTS) if n <= window]
    if not ffts:
        raise ModelSetupError(f"--disc mpd-mrd needs windows of at least {2 ** round(math.log2(MULTI_FFTS[0] * scale))} samples")
    return MultiDiscriminator(ffts=ffts, conditional=conditional, sample_rate=generator.sample_rate)


def build_autoencoder(generator: AudioModel) -> Autoencoder:
    """An autoencoder with the generator's channels and kernels (no skips), without dropout."""
    kwargs = _accepted(Autoencoder, dict(generator.init_kwargs))
    kwargs.update(dropout=0.0, sample_rate=generator.sample_rate)
    return Autoencoder(**kwargs)


def task_of(pipeline: Pipeline) -> str:
    """The exported task: what the degradation pipeline teaches the model to undo (each step's ``TASK``)."""
    tasks = {s.TASK for s in pipeline.steps if s.TASK is not None}
    if len(tasks) > 1:
        return "joint"
    return tasks.pop() if tasks else "denoise"


def engine_defaults(model: AudioModel, *, rate: int, window: int, size: NamedSize | None = None) -> dict[str, int]:
    """Default hop / lookahead / crossfade for the engine: 10 ms / 10 ms / 5 ms, shrunk to fit the window.
    A streaming model keeps its own lookahead, and its hop is :func:`~rt_enhance.model.sizes.default_hop`
    (its named ``size``'s, else its step of at least 2 ms), the hop ``rt-export --init`` gives it."""
    hop = max(1, round(rate * 0.010))
    if isinstance(model, StreamingModel):
        return {"hop": default_hop(model, size), "lookahead": lookahead_of(model), "crossfade": 0}
    if 2 * hop > window:
        hop = max(1, window // 4)
    return {"hop": hop, "lookahead": hop, "crossfade": hop // 2}


def build_meta(
    model: AudioModel,
    *,
    name: str,
    rate: int,
    window: int,
    task: str,
    description: str,
    training: dict[str, Any],
    metrics: dict[str, Any],
    size: str = "",
) -> dict[str, Any]:
    """The checkpoint ``meta`` rt-export reads (plain types only); ``size`` is the run's named size, if any."""
    named = get_size(size) if size else None
    return {
        "sample_rate": int(rate),
        "window": int(window),
        **engine_defaults(model, rate=rate, window=window, size=named),
        "task": task,
        "name": name,
        "description": description,
        "training": training,
        "metrics": metrics,
    }
