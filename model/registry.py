"""The model classes a checkpoint or an export may name. Nothing outside this table is ever built
from a stored class name."""

from __future__ import annotations

import ast
import logging
from typing import Any

from rt_enhance.model.autoencoder import Autoencoder
from rt_enhance.model.base import AudioModel
from rt_enhance.model.causal import CausalUNet
from rt_enhance.model.discriminator import Discriminator
from rt_enhance.model.generator import Generator
from rt_enhance.model.multidisc import MultiDiscriminator
from rt_enhance.model.spectral import SpectralUNet
from rt_enhance.realtime.errors import RtEnhanceError

logger = logging.getLogger(__name__)

MODEL_CLASSES: dict[str, type[AudioModel]] = {
    "Generator": Generator,
    "Discriminator": Discriminator,
    "MultiDiscriminator": MultiDiscriminator,
    "Autoencoder": Autoencoder,
    "CausalUNet": CausalUNet,
    "SpectralUNet": SpectralUNet,
}


class UnknownModelError(RtEnhanceError, ValueError):
    """A class name or constructor arguments that do not build a model; one line for the user."""


def class_name(model: AudioModel) -> str:
    """The registry name of ``model``'s class; raise :class:`UnknownModelError` if it is not registered."""
    name = type(model).__name__
    if MODEL_CLASSES.get(name) is not type(model):
        raise UnknownModelError(f"{name} is not a registered model class ({', '.join(MODEL_CLASSES)})")
    return name


def build_model(name: str, kwargs: dict[str, Any]) -> AudioModel:
    """Instantiate the registered class ``name`` with ``kwargs``."""
    cls = MODEL_CLASSES.get(name)
    if cls is None:
        raise UnknownModelError(f"unknown model class {name!r}; known: {', '.join(MODEL_CLASSES)}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise UnknownModelError(f"cannot build {name} from {kwargs}: {exc}") from None


def parse_vary(text: str) -> dict[str, Any]:
    """Constructor arguments to change, as the ``--vary`` options take them: ``'channels=[4,4] gru_hidden=8'`` ->
    ``{"channels": [4, 4], "gru_hidden": 8}`` (each value a Python literal); a ValueError names a malformed pair."""
    out: dict[str, Any] = {}
    for part in text.split():
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ValueError(f"--vary takes NAME=VALUE pairs separated by spaces (e.g. 'hop=120 frame=480'); got {part!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ValueError(f"--vary {key}: {value!r} is not a number, string or list") from None
    return out
