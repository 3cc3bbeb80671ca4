"""One engine step, timed exactly as the live worker runs it.

Per hop the live worker (``realtime/worker.py``) reads the new samples from the input ring
(``ring_read_nb``), feeds them through the :class:`Chain` / :class:`Streamer` (window, model,
crossfade) and writes the result to the output ring (``ring_write_nb``). :func:`time_steps` does
the same on a pre-filled ring, one hop at a time, and times every step with
``time.perf_counter_ns``; the model's share of each step comes from a :class:`TimedProcessor`
around the same processor, so model time and overhead are measured on the very same calls.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from rt_enhance.benchmarks.models import TimedProcessor
from rt_enhance.realtime import kernels
from rt_enhance.realtime.chain import Chain
from rt_enhance.realtime.geometry import Geometry
from rt_enhance.realtime.streamer import Streamer

logger = logging.getLogger(__name__)

RING = 1 << 16  # samples per channel of the pre-filled input ring (wraps)


@dataclass
class StepTimes:
    """Nanoseconds per measured hop: the whole step and the model's part of it, int64 ``[hops]``."""

    step_ns: np.ndarray
    model_ns: np.ndarray

    @property
    def step_ms(self) -> np.ndarray:
        return self.step_ns / 1e6

    @property
    def model_ms(self) -> np.ndarray:
        return self.model_ns / 1e6

    @property
    def overhead_ms(self) -> np.ndarray:
        return (self.step_ns - self.model_ns) / 1e6


def time_steps(timed: TimedProcessor, geometry: Geometry, *, channels: int, hops: int, warmup: int, seed: int = 0) -> StepTimes:
    """Run ``warmup + hops`` live-worker steps of one hop each; return the last ``hops`` timings."""
    streamer = Streamer(timed, geometry, channels)
    streamer.prepare(1)  # as the live engine does
    chain = Chain(streamer, geometry.sample_rate, geometry.sample_rate)
    rng = np.random.default_rng(seed)
    in_ring = (0.1 * rng.standard_normal((channels, RING))).astype(np.float32)
    out_ring = np.zeros((channels, RING), np.float32)
    step = np.zeros(hops, np.int64)
    model = np.zeros(hops, np.int64)
    read = produced = 0
    hop = geometry.hop
    for i in range(warmup + hops):
        calls = len(timed.ns)
        t0 = time.perf_counter_ns()
        chunk = np.empty((channels, hop), np.float32)
        kernels.ring_read_nb(in_ring, read, chunk)
        y = chain.feed(chunk)
        kernels.ring_write_nb(out_ring, produced, y)
        t1 = time.perf_counter_ns()
        read += hop
        produced += y.shape[1]
        if i >= warmup:
            step[i - warmup] = t1 - t0
            model[i - warmup] = sum(timed.ns[calls:])
    return StepTimes(step, model)


def time_kernels(geometry: Geometry, *, channels: int, calls: int, seed: int = 0) -> dict[tuple[str, str], np.ndarray]:
    """Milliseconds per call of each sample-moving kernel, numba and numpy, at one hop's size.

    Keys are ``(kernel, impl)`` with kernel in ``overlap_hops``, ``ring_write``, ``ring_read`` and
    impl in ``numba``, ``numpy``; values float ``[calls]``.
    """
    g = geometry
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((1, channels, g.window)).astype(np.float32)
    fade = kernels.fade_in_weights(g.crossfade)
    block = rng.standard_normal((channels, g.hop)).astype(np.float32)
    ring = np.zeros((channels, RING), np.float32)
    kernels.warm_up()
    cases = {
        ("overlap_hops", "numba"): lambda i, out, tail: kernels.overlap_hops_nb(y, tail, fade, out, g.kept_start, g.hop),
        ("overlap_hops", "numpy"): lambda i, out, tail: kernels.overlap_hops_np(y, tail, fade, out, g.kept_start, g.hop),
        ("ring_write", "numba"): lambda i, out, tail: kernels.ring_write_nb(ring, i * g.hop, block),
        ("ring_write", "numpy"): lambda i, out, tail: kernels.ring_write_np(ring, i * g.hop, block),
        ("ring_read", "numba"): lambda i, out, tail: kernels.ring_read_nb(ring, i * g.hop, out),
        ("ring_read", "numpy"): lambda i, out, tail: kernels.ring_read_np(ring, i * g.hop, out),
    }
    out = np.zeros((channels, g.hop), np.float32)
    tail = np.zeros((channels, g.crossfade), np.float32)
    result = {}
    for key, fn in cases.items():
        ns = np.zeros(calls, np.int64)
        for i in range(calls + 10):
            t0 = time.perf_counter_ns()
            fn(i, out, tail)
            if i >= 10:
                ns[i - 10] = time.perf_counter_ns() - t0
        result[key] = ns / 1e6
    return result
