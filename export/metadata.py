"""The metadata an exported model carries (the contract in :mod:`rt_enhance.realtime.metadata`).

Required: sample rate, window, default hop / lookahead / crossfade. Also written: kind, task,
family and constructor arguments, params, MACs per second, receptive field, total stride,
project version, checkpoint sha256, and (when the checkpoint's ``meta`` has them) the training
summary, metrics, name and description.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from rt_enhance.export.errors import ExportError
from rt_enhance.model.base import AudioModel
from rt_enhance.realtime.metadata import TASKS, ModelInfo, to_props

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineDefaults:
    """The geometry written as the engine's defaults (its presets may override hop/lookahead/crossfade)."""

    sample_rate: int
    window: int
    hop: int
    lookahead: int
    crossfade: int

    def check(self) -> None:
        """Raise :class:`ExportError` for a geometry the engine cannot run."""
        if min(self.sample_rate, self.window, self.hop) <= 0 or min(self.lookahead, self.crossfade) < 0:
            raise ExportError("sample rate, window and hop must be positive; lookahead and crossfade not negative")
        if self.crossfade > self.lookahead:
            raise ExportError(f"crossfade {self.crossfade} must not exceed lookahead {self.lookahead}")
        if self.hop + self.lookahead > self.window:
            raise ExportError(f"hop {self.hop} + lookahead {self.lookahead} must fit in the window {self.window}")


def package_version() -> str:
    """The installed rt-enhance version, or ``unknown`` when not installed as a distribution."""
    try:
        return importlib.metadata.version("rt-enhance")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_info(
    model: AudioModel,
    geometry: EngineDefaults,
    *,
    task: str,
    meta: dict[str, Any] | None = None,
    checkpoint_sha256: str | None = None,
) -> ModelInfo:
    """The :class:`ModelInfo` describing ``model`` exported with ``geometry``."""
    geometry.check()
    if task not in TASKS:
        raise ExportError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    figures = model.describe(geometry.window)
    extra = common_extra(model, figures, task)
    extra["total_stride"] = str(figures["total_stride"])
    extra.update(_optional(meta or {}, checkpoint_sha256))
    return ModelInfo(
        sample_rate=geometry.sample_rate,
        window=geometry.window,
        hop=geometry.hop,
        lookahead=geometry.lookahead,
        crossfade=geometry.crossfade,
        kind="windowed",
        extra=extra,
    )


def _optional(meta: dict[str, Any], checkpoint_sha256: str | None) -> dict[str, str]:
    extra = {}
    if checkpoint_sha256:
        extra["checkpoint_sha256"] = checkpoint_sha256
    for key in ("training", "metrics"):
        if meta.get(key):
            extra[key] = json.dumps(meta[key], sort_keys=True, default=str)
    for key in ("name", "description"):
        if meta.get(key):
            extra[key] = str(meta[key])
    return extra


def attach(proto: onnx.ModelProto, props: dict[str, str]) -> None:
    """Replace ``proto``'s metadata_props with ``props`` (e.g. ``to_props(info)``)."""
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def info_props(info: ModelInfo, **more: str) -> dict[str, str]:
    """``to_props(info)`` plus ``more`` keys (e.g. ``precision`` for variants)."""
    return {**to_props(info), **more}


def common_extra(model, figures: dict, task: str) -> dict[str, str]:
    """The metadata every exported model carries: task, family, constructor arguments, cost, version."""
    return {
        "task": task,
        "family": str(figures["family"]),
        "model_args": json.dumps(model.init_kwargs, sort_keys=True),
        "params": str(figures["params"]),
        "macs_per_second": str(figures["macs_per_second"]),
        "receptive_field": str(figures["receptive_field"]),
        "version": package_version(),
    }
