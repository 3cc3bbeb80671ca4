"""The streaming core: blocks of any size in, enhanced blocks out, offline-exact.

:class:`Streamer` has the ``feed(block) -> block`` / ``flush()`` / ``reset()`` trio. It is
synchronous and knows nothing of devices or threads; the live engine drives it from a worker
thread and file mode drives it directly, so file mode proves what live mode does.

The output stream is *aligned*: output sample ``m`` is the enhanced version of input sample ``m``.
``feed`` returns every output sample that the input so far determines (possibly none), and
``flush`` returns the rest, so concatenating all outputs always gives the same signal, whatever
the block sizes. The lag between input and output inside ``feed`` is at most
``geometry.latency`` (hop + lookahead) samples.
"""

from __future__ import annotations

import logging
import math
from array import array

import numpy as np

from rt_enhance.realtime import kinds, limits
from rt_enhance.realtime.geometry import Geometry
from rt_enhance.realtime.processor import Processor
from rt_enhance.realtime.strength import DryWetMix

logger = logging.getLogger(__name__)


class HopTimer:
    """Wall time per hop (model + crossfade) in constant memory, for the report.

    Every processed batch adds its time per hop to a log-spaced histogram (1% wide bins from 1 us
    to 100 s), so percentiles over an hour-long run cost a few kilobytes; the most recent values
    are also kept in a fixed ring (:meth:`per_hop_ms`).
    """

    BIN_RATIO = 1.01
    LOW_MS = 1e-3
    RECENT = 1 << 16
    _LOG_RATIO = math.log(BIN_RATIO)

    def __init__(self) -> None:
        n_bins = int(np.ceil(np.log(1e8) / np.log(self.BIN_RATIO))) + 2
        # arrays of the standard library: an item update costs ~50 ns where a numpy scalar store costs ~1 us,
        # and this runs once per hop (every 2.5 ms with the monitor preset); the queries view them as numpy
        self._hist = array("q", bytes(8 * n_bins))
        self._recent = array("d", bytes(8 * self.RECENT))
        self.batches = 0
        self.hops = 0
        self.total_ms = 0.0
        self.max_ms = 0.0
        self.model_seconds = 0.0

    def add(self, seconds: float, model_seconds: float, hops: int) -> None:
        per_hop = 1000.0 * seconds / max(hops, 1)
        index = int(math.log(max(per_hop, self.LOW_MS) / self.LOW_MS) / self._LOG_RATIO) + 1  # math: a per-hop cost
        self._hist[min(index, len(self._hist) - 1)] += 1
        self._recent[self.batches % self.RECENT] = per_hop
        self.batches += 1
        self.hops += hops
        self.total_ms += 1000.0 * seconds
        self.max_ms = max(self.max_ms, per_hop)
        self.model_seconds += model_seconds

    def percentile_ms(self, q: float) -> float:
        """The q-th percentile (0-100) of the per-hop time, within 1%."""
        if self.batches == 0:
            return float("nan")
        rank = np.searchsorted(np.cumsum(np.frombuffer(self._hist, np.int64)), q / 100.0 * self.batches, side="left")
        return min(self.LOW_MS * self.BIN_RATIO ** max(rank - 0.5, 0), self.max_ms)

    def per_hop_ms(self) -> np.ndarray:
        """The most recent (up to 65536) per-hop times in ms, oldest first, float64."""
        n = min(self.batches, self.RECENT)
        recent = np.frombuffer(self._recent, np.float64)
        return np.roll(recent, -self.batches)[-n:] if self.batches > self.RECENT else recent[:n].copy()


class Streamer:
    """Enhancement of a ``[channels, samples]`` float32 stream, hop by hop, through the adapter of
    the model's kind (:mod:`rt_enhance.realtime.kinds`: windows and crossfades, or a stateful step)."""

    def __init__(self, processor: Processor, geometry: Geometry, channels: int, *, strength: float = 1.0) -> None:
        self.processor = processor
        self.mix = DryWetMix(channels, strength)  # set ``mix.strength`` (0..1) while streaming
        self.geometry = geometry
        self.channels = channels
        self.timer = HopTimer()
        self.calls = kinds.ModelCalls(self.timer)
        self.model = kinds.kind_of(geometry).adapter(processor, geometry, channels, self.calls)
        # A block of any size is cut into pieces so that one model call sees at most about
        # MAX_CALL_SAMPLES values (at least one hop or window per channel).
        per_hop = channels * (geometry.hop + self.model.context)
        self.max_block = geometry.hop * max(1, limits.MAX_CALL_SAMPLES // per_hop)
        self.reset()

    @property
    def dry_hops(self) -> int:
        """Hops run without the model to catch up (live deadline fallback)."""
        return self.calls.dry_hops

    @property
    def bad_hops(self) -> int:
        """Hops whose model output was NaN/Inf (or whose call raised) and played dry instead."""
        return self.calls.bad_hops

    def prepare(self, hops: int) -> None:
        """Bind the model for calls of ``hops`` hops: the live engine binds 1, file mode its block
        (a streaming model's processor then keeps a session and buffers for that shape, see
        ``StatefulOnnxProcessor.prepare``). Calls of other sizes still work; only their speed differs."""
        self.model.prepare(hops)

    def reset(self) -> None:
        """Forget all history: the next sample fed is sample 0 of a new stream."""
        g = self.geometry
        self.model.reset()
        self._context = np.zeros((self.channels, self.model.context), np.float32)
        self._to_drop = g.lookahead  # the first kept samples belong to negative positions
        self.mix.reset()
        self.samples_in = 0
        self.samples_out = 0

    @property
    def latency(self) -> int:
        return self.geometry.latency

    def feed(self, block: np.ndarray, *, dry: bool = False) -> np.ndarray:
        """Enhance float32 ``[channels, n]``; return the newly determined aligned output ``[channels, m]``.

        ``dry=True`` skips the model for the hops this block completes: their output is the
        input itself, joined to its neighbours by the usual crossfade (the live engine's deadline
        fallback; the stream's timing is unchanged).
        """
        block = np.asarray(block, np.float32)
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise ValueError(f"expected a [{self.channels}, n] block, got {block.shape}")
        if block.shape[1] > self.max_block:
            step = self.max_block
            parts = [self._feed(block[:, i : i + step], dry) for i in range(0, block.shape[1], step)]
            return np.concatenate(parts, axis=1)
        return self._feed(block, dry)

    def _feed(self, block: np.ndarray, dry: bool) -> np.ndarray:
        """:meth:`feed` for a block of at most ``max_block`` samples (one bounded model call)."""
        self.samples_in += block.shape[1]
        self.mix.push(block)
        buf = np.concatenate([self._context, block], axis=1) if self._context.shape[1] else block
        g = self.geometry
        hops = (buf.shape[1] - self.model.context) // g.hop
        if hops <= 0:
            self._context = buf.copy() if buf is block else buf  # never keep a view of the caller's array
            return np.zeros((self.channels, 0), np.float32)
        out = self.model.process(buf, hops, dry)
        rest = buf[:, hops * g.hop :]
        self._context = rest.copy() if buf is block else rest
        return self._emit(out)

    def _emit(self, out: np.ndarray) -> np.ndarray:
        if self._to_drop:
            cut = min(self._to_drop, out.shape[1])
            out = out[:, cut:]
            self._to_drop -= cut
        self.samples_out += out.shape[1]
        return self.mix(out)

    def flush(self) -> np.ndarray:
        """Return the output still owed for the input fed so far, then reset."""
        owed = self.samples_in - self.samples_out
        g = self.geometry
        out = self.feed(np.zeros((self.channels, g.lookahead + g.hop), np.float32))[:, :owed]
        self.reset()
        return out


def build_streamer(
    processor: Processor,
    channels: int,
    *,
    preset: str | None = None,
    hop: str | None = None,
    lookahead: str | None = None,
    crossfade: str | None = None,
    strength: float = 1.0,
) -> Streamer:
    """A :class:`Streamer` whose geometry comes from the model's metadata and the user's flags
    (a ``--latency`` preset and ``--hop``/``--lookahead``/``--crossfade``, samples or ``"5ms"``)."""
    g = kinds.resolve_geometry(processor.info, preset=preset, hop=hop, lookahead=lookahead, crossfade=crossfade)
    return Streamer(processor, g, channels, strength=strength)
