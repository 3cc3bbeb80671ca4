"""Self-describing, atomic checkpoints.

A checkpoint is a ``torch.save`` of one dict, loadable with ``torch.load(weights_only=True)``::

    {"format_version": 1, "class": "Generator", "kwargs": {...}, "state": state_dict, **extra}

``class`` is a name from :data:`rt_enhance.model.registry.MODEL_CLASSES` (never a pickled class),
``kwargs`` the constructor arguments in plain types. ``extra`` is the caller's: training stores
optimizer state, step counters and a ``meta`` dict there. Keys of ``meta`` the exporter reads:
``sample_rate``, ``window``, ``hop``, ``lookahead``, ``crossfade``, ``task``, ``name``,
``description``, ``training`` (dict), ``metrics`` (dict).

Writes go to a temporary file in the same folder, then ``os.replace``: a crash never leaves a
half-written checkpoint under the final name.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from rt_enhance.model.base import AudioModel
from rt_enhance.model.registry import UnknownModelError, build_model, class_name
from rt_enhance.realtime.errors import RtEnhanceError, first_line
from rt_enhance.realtime.fileio import atomic_write

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
RESERVED_KEYS = ("format_version", "class", "kwargs", "state")
_SCALARS = (str, int, float, bool, type(None), torch.dtype)  # exact types: numpy scalars subclass float


class CheckpointError(RtEnhanceError, ValueError):
    """A checkpoint that cannot be written or read; the message is one line for the user."""


def save_checkpoint(path: str | os.PathLike, model: AudioModel, *, extra: dict[str, Any] | None = None) -> None:
    """Write ``model`` (class name, constructor kwargs, state) and ``extra`` atomically to ``path``.

    ``extra`` must hold only plain types (dict, list, tuple, str, int, float, bool, None, tensors),
    so the file loads with ``weights_only=True``; anything else raises :class:`CheckpointError`.
    """
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(RESERVED_KEYS))
    if clash:
        raise CheckpointError(f"extra keys {clash} are reserved for the checkpoint format")
    _check_plain(extra, "extra")
    _check_plain(model.init_kwargs, "kwargs")
    payload = {
        "format_version": FORMAT_VERSION,
        "class": class_name(model),
        "kwargs": dict(model.init_kwargs),
        "state": model.state_dict(),
        **extra,
    }
    _atomic_save(payload, Path(path))


def load_checkpoint(path: str | os.PathLike, *, map_location: str = "cpu") -> tuple[AudioModel, dict[str, Any]]:
    """Rebuild the model stored at ``path`` (in eval mode) and return it with the checkpoint's extra keys."""
    payload = _read(Path(path), map_location)
    try:
        model = build_model(payload["class"], payload["kwargs"])
    except UnknownModelError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    try:
        model.load_state_dict(payload["state"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match {payload['class']}{payload['kwargs']}: {first_line(exc)}") from None
    model.eval()
    extra = {k: v for k, v in payload.items() if k not in RESERVED_KEYS}
    return model, extra


def read_payload(path: str | os.PathLike, *, map_location: str = "cpu") -> dict[str, Any]:
    """The checkpoint's dict as stored, checked for the format's keys (no model built)."""
    return _read(Path(path), map_location)


def write_payload(payload: dict[str, Any], path: str | os.PathLike) -> None:
    """Write a checkpoint dict (as :func:`read_payload` returns it) atomically to ``path``."""
    _atomic_save(payload, Path(path))


def _read(path: Path, map_location: str) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable rt-enhance checkpoint ({_reason(exc)})") from None
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(f"{path} is not an rt-enhance checkpoint (no format_version)")
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format_version {payload['format_version']!r}; this version of rt-enhance reads {FORMAT_VERSION}"
        )
    missing = [k for k in RESERVED_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"{path} is missing checkpoint keys {missing}")
    return payload


def _reason(exc: Exception) -> str:
    """The useful line of a torch.load error (the weights-only unpickler's verdict when there is one)."""
    text = str(exc)
    found = re.search(r"WeightsUnpickler error:\s*(.+?)(?: was not an allowed|\n|$)", text)
    if found:
        return f"{found.group(1).strip()}; checkpoints hold only plain types"
    return first_line(exc)


def _atomic_save(payload: dict[str, Any], path: Path) -> None:
    atomic_write(path, lambda f: torch.save(payload, f))
    logger.info("saved checkpoint %s", path)


def _check_plain(value: Any, where: str) -> None:
    """Raise :class:`CheckpointError` naming the first value ``weights_only`` loading would refuse."""
    if type(value) in (dict, OrderedDict):
        for key, item in value.items():
            if type(key) not in (str, int):
                raise CheckpointError(f"{where}: key {key!r} is a {type(key).__name__}; use str or int keys")
            _check_plain(item, f"{where}[{key!r}]")
    elif type(value) in (list, tuple, torch.Size):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif type(value) not in _SCALARS and not isinstance(value, torch.Tensor):
        raise CheckpointError(
            f"{where} is a {type(value).__module__}.{type(value).__name__}; checkpoints hold only plain types "
            "(dict, list, str, int, float, bool, None, tensors)"
        )
