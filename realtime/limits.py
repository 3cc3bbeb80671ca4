"""Sane bounds on everything a file, a model's metadata or a flag can make large.

One table, checked in one place: a value outside it is refused with one line before any
memory or thread is spent on it (a metadata ``sample_rate`` of 10^12, a 1 Hz WAV, a
``window`` of 10^9, ``--threads 2000``, ``--hop 9999999840``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from rt_enhance.realtime.errors import RtEnhanceError

logger = logging.getLogger(__name__)

MAX_CALL_SAMPLES = 1 << 22  # float32 samples the model sees in one call (16 MB), beyond one window


def max_threads() -> int:
    """More onnxruntime threads than CPU cores only slows a model down."""
    return max(os.cpu_count() or 1, 1)


# name -> (lowest, highest, unit); the highest may be a function of the machine.
BOUNDS: dict[str, tuple[int, int | Callable[[], int], str]] = {
    "sample rate": (1000, 768_000, " Hz"),
    "channels": (1, 64, ""),
    "window": (1, 1 << 20, " samples"),
    "hop": (1, 1 << 18, " samples"),
    "lookahead": (0, 1 << 20, " samples"),
    "crossfade": (0, 1 << 20, " samples"),
    "total stride": (1, 1 << 18, ""),
    "state size": (0, 1 << 24, " values"),
    "blocksize": (0, 1 << 16, " samples"),
    "threads": (1, max_threads, ""),
}


class LimitError(RtEnhanceError, ValueError):
    """A value outside :data:`BOUNDS`; the message is one line (without the thing it belongs to)."""


def bounds(what: str) -> tuple[int, int, str]:
    low, high, unit = BOUNDS[what]
    return low, high() if callable(high) else high, unit


def check(what: str, value: int, name: str | None = None) -> int:
    """``value`` if it lies within the bounds of ``what``; else :class:`LimitError` naming
    ``name`` (e.g. ``--threads``, default ``what``) and the allowed range."""
    low, high, unit = bounds(what)
    if not low <= value <= high:
        why = " (the CPU cores of this machine)" if what == "threads" else ""
        raise LimitError(f"{name or what} {value}{unit} is out of range: use {low} to {high}{unit}{why}")
    return value
