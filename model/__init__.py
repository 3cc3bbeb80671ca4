"""rt-enhance model package: the U-Net generator family, its discriminator and autoencoder,
named sizes and self-describing checkpoints (torch; used by training/ and export/ only)."""

from rt_enhance.model.autoencoder import Autoencoder
from rt_enhance.model.base import AudioModel, GeometryError
from rt_enhance.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from rt_enhance.model.discriminator import Discriminator
from rt_enhance.model.generator import Generator
from rt_enhance.model.registry import MODEL_CLASSES, UnknownModelError, build_model
from rt_enhance.model.sizes import SIZES, NamedSize, build_size, get_size

__all__ = [
    "AudioModel",
    "Autoencoder",
    "CheckpointError",
    "Discriminator",
    "Generator",
    "GeometryError",
    "MODEL_CLASSES",
    "NamedSize",
    "SIZES",
    "UnknownModelError",
    "build_model",
    "build_size",
    "get_size",
    "load_checkpoint",
    "save_checkpoint",
]
