"""Per-level channel counts and kernel sizes of the U-Net family, and their checks.

The original work (Kuleshov et al.'s audio super-resolution net, as used by Billotais) gives level
``b`` (0 = outermost) ``min(2^(6+b), 512)`` channels and kernels of ``max(2^(7-b)+1, 9)`` samples:
64/128/256/512 channels and 129/65/33/17 kernels at depth 4. Small real-time variants scale the
channels by ``width`` and cap them with ``max_channels``, and clamp kernels to
``[min_kernel, max_kernel]``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

logger = logging.getLogger(__name__)

CHANNEL_QUANTUM = 8  # channels are multiples of 8: superpixel halves them, multi-scale splits by 4
DOWNSAMPLE_MODES = ("strided", "superpixel")


def level_channels(depth: int, width: float = 1.0, max_channels: int = 512) -> list[int]:
    """Channels of levels ``0 .. depth-1``: ``min(2^(6+b), 512) * width``, rounded to 8, capped."""
    channels = []
    for b in range(depth):
        scaled = min(2 ** (6 + b), 512) * width
        rounded = max(CHANNEL_QUANTUM, CHANNEL_QUANTUM * round(scaled / CHANNEL_QUANTUM))
        channels.append(min(rounded, max_channels))
    return channels


def level_kernels(depth: int, max_kernel: int = 129, min_kernel: int = 9) -> list[int]:
    """Kernel sizes of levels ``0 .. depth-1``: ``2^(7-b)+1`` clamped to ``[min_kernel, max_kernel]``."""
    return [min(max(2 ** (7 - b) + 1, min_kernel), max_kernel) for b in range(depth)]


def check_unet_args(
    *,
    depth: int,
    width: float,
    max_channels: int,
    max_kernel: int,
    min_kernel: int,
    downsample: str,
    multiscale_kernels: Sequence[int],
    dropout: float,
) -> None:
    """Raise ``ValueError`` (one line) for constructor arguments that cannot build a model."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    if max_channels < CHANNEL_QUANTUM or max_channels % CHANNEL_QUANTUM:
        raise ValueError(f"max_channels must be a positive multiple of {CHANNEL_QUANTUM}, got {max_channels}")
    for name, k in (("max_kernel", max_kernel), ("min_kernel", min_kernel)):
        if k < 1 or k % 2 == 0:
            raise ValueError(f"{name} must be a positive odd number (centred kernels), got {k}")
    if min_kernel > max_kernel:
        raise ValueError(f"min_kernel {min_kernel} is larger than max_kernel {max_kernel}")
    if downsample not in DOWNSAMPLE_MODES:
        raise ValueError(f"downsample must be one of {', '.join(DOWNSAMPLE_MODES)}, got {downsample!r}")
    if not multiscale_kernels or any(k < 1 or k % 2 == 0 for k in multiscale_kernels):
        raise ValueError(f"multiscale_kernels must be positive odd numbers, got {list(multiscale_kernels)}")
    if (CHANNEL_QUANTUM // 2) % len(multiscale_kernels):
        raise ValueError(f"multiscale_kernels: {len(multiscale_kernels)} branches; use 1, 2 or 4 (they split the channels)")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
