"""Upsampling baselines for bandwidth extension: what a model must beat.

Both take the low-rate signal ``[n]`` at ``low_rate`` and return ``[round(n * high_rate / low_rate)]`` float32
at ``high_rate``, aligned with it (sample k of the output is at time k / high_rate).
"""

from __future__ import annotations

import logging

import numpy as np
import soxr
from scipy.interpolate import CubicSpline

logger = logging.getLogger(__name__)


def _output_length(n: int, low_rate: int, high_rate: int) -> int:
    if low_rate <= 0 or high_rate <= 0:
        raise ValueError(f"rates must be positive, got {low_rate} and {high_rate}")
    return int(round(n * high_rate / low_rate))


def spline_upsample(x: np.ndarray, low_rate: int, high_rate: int) -> np.ndarray:
    """Cubic-spline interpolation through the low-rate samples (the baseline of Kuleshov et al. 2017, who used
    scipy's ``splrep``/``splev`` on the decimated signal). Past the last sample the spline is extrapolated."""
    x = np.asarray(x, dtype=np.float64)
    length = _output_length(len(x), low_rate, high_rate)
    if len(x) < 2:
        return np.resize(x, length).astype(np.float32)
    spline = CubicSpline(np.arange(len(x)) / low_rate, x)
    return spline(np.arange(length) / high_rate).astype(np.float32)


def sinc_upsample(x: np.ndarray, low_rate: int, high_rate: int) -> np.ndarray:
    """Band-limited (windowed-sinc) resampling with soxr's very-high-quality linear-phase filter."""
    x = np.asarray(x, dtype=np.float64)
    length = _output_length(len(x), low_rate, high_rate)
    y = soxr.resample(x, low_rate, high_rate, quality="VHQ")
    return np.pad(y, (0, max(0, length - len(y))))[:length].astype(np.float32)
