"""The live engine in simulated time: callback and worker interleaved by a clock, not threads.

The same kernels, ring buffers, delay and worker code as a real stream, driven block by block
with no device and no wall-clock waiting, so hours of live operation, stalls and worker outages
can be replayed deterministically (tests and benchmarks). A worker that runs after every callback
is a worker that always keeps up; ``stall`` takes it away for a while.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from rt_enhance.realtime.chain import Chain
from rt_enhance.realtime.live import LiveEngine

logger = logging.getLogger(__name__)

Signal = Callable[[int, int], np.ndarray]  # (first sample, frames) -> float32 [frames, channels]
Observer = Callable[[int, np.ndarray, np.ndarray], None]  # (block index, indata, outdata)


def simulate_duplex(
    engine: LiveEngine,
    signal: Signal,
    *,
    blocks: int,
    block: int,
    stall: tuple[int, int] | None = None,
    observe: Observer | None = None,
) -> None:
    """Run ``blocks`` duplex callbacks of ``block`` frames; the worker is absent for block
    indices in ``stall`` = (first, end)."""
    engine.callbacks.first_block(block)
    chain = Chain(engine.streamer, engine.rate, engine.rate)
    out = np.zeros((block, engine.output_channels), np.float32)
    read = 0
    for i in range(blocks):
        indata = signal(i * block, block)
        engine.callbacks.duplex(indata, out, block, None, None)
        if stall is None or not stall[0] <= i < stall[1]:
            read = engine.worker.capture_step(chain, read)
        if observe is not None:
            observe(i, indata, out)
