"""File mode: the same streaming chain as live, as fast as the CPU allows."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from rt_enhance.realtime import kinds
from rt_enhance.realtime.audio_io import FileSink, FileSource
from rt_enhance.realtime.chain import Chain
from rt_enhance.realtime.geometry import Geometry
from rt_enhance.realtime.streamer import Streamer

logger = logging.getLogger(__name__)

BLOCK_HOPS = kinds.FILE_BLOCK_HOPS  # hops per read: a windowed model's windows go to the model as one batch


@dataclass
class OfflineResult:
    frames: int
    rate: int
    seconds: float
    delay_samples: int
    compensated: bool


# Tasks that restore what a low rate removed: file to file, their output is written at the model's rate.
RESTORING_TASKS = ("bandwidth_extension", "joint")


def output_rate(source_rate: int, model_rate: int | None, task: str | None, wanted: int | None = None) -> int:
    """The rate a file-to-file output is written at: ``wanted`` (``--rate``), else the model's when it restores
    bandwidth and the source's rate is lower (a 16 kHz file through `music` comes out at 48 kHz, with room for
    the restored top), else the source's."""
    if wanted:
        return wanted
    if task in RESTORING_TASKS and model_rate is not None and model_rate > source_rate:
        return model_rate
    return source_rate


def enhance_file(
    source: FileSource,
    sinks: list[FileSink],
    streamer: Streamer,
    *,
    compensate: bool = True,
    progress=None,
    rate_out: int | None = None,
) -> OfflineResult:
    """Enhance ``source`` into every sink, at ``rate_out`` (default: the source's rate). Aligned
    sample for sample unless ``compensate`` is False, in which case the output starts with the
    engine's latency in silence, as a live recording would, and is that much longer (nothing is cut)."""
    rate_out = rate_out or source.rate
    chain = Chain(streamer, source.rate, rate_out)
    delay = 0 if compensate else round(streamer.latency * rate_out / streamer.geometry.sample_rate)
    _write(sinks, np.zeros((source.channels, delay), np.float32))
    g = streamer.geometry
    hops = block_hops(g, streamer.processor)
    streamer.prepare(hops)
    blocksize = max(1, round(hops * g.hop * source.rate / g.sample_rate))
    start = time.perf_counter()
    for block in source.blocks(blocksize):
        _write(sinks, chain.feed(block))
        if progress is not None:
            progress(source.read, source.frames)
    _write(sinks, chain.finish())
    return OfflineResult(source.frames, rate_out, time.perf_counter() - start, delay, compensate)


def block_hops(g: Geometry, processor=None) -> int:
    """Hops per model call in file mode, as the model's kind asks (``Kind.file_hops``) of ``processor``."""
    return kinds.kind_of(g).file_hops(g, processor)


def _write(sinks: list[FileSink], block: np.ndarray) -> None:
    for sink in sinks:
        sink.write(block)
