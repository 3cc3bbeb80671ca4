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
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from rt_enhance.realtime import geometry as geo
from rt_enhance.realtime import kernels, limits
from rt_enhance.realtime.errors import first_line
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

    def __init__(self) -> None:
        n_bins = int(np.ceil(np.log(1e8) / np.log(self.BIN_RATIO))) + 2
        self._hist = np.zeros(n_bins, np.int64)
        self._recent = np.zeros(self.RECENT, np.float64)
        self.batches = 0
        self.hops = 0
        self.total_ms = 0.0
        self.max_ms = 0.0
        self.model_seconds = 0.0

    def add(self, seconds: float, model_seconds: float, hops: int) -> None:
        per_hop = 1000.0 * seconds / max(hops, 1)
        index = int(np.log(max(per_hop, self.LOW_MS) / self.LOW_MS) / np.log(self.BIN_RATIO)) + 1
        self._hist[min(index, self._hist.shape[0] - 1)] += 1
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
        rank = np.searchsorted(np.cumsum(self._hist), q / 100.0 * self.batches, side="left")
        return min(self.LOW_MS * self.BIN_RATIO ** max(rank - 0.5, 0), self.max_ms)

    def per_hop_ms(self) -> np.ndarray:
        """The most recent (up to 65536) per-hop times in ms, oldest first, float64."""
        n = min(self.batches, self.RECENT)
        return np.roll(self._recent, -self.batches)[-n:] if self.batches > self.RECENT else self._recent[:n].copy()


class Streamer:
    """Overlapped-window enhancement of a ``[channels, samples]`` float32 stream."""

    def __init__(self, processor: Processor, geometry: Geometry, channels: int, *, strength: float = 1.0) -> None:
        self.processor = processor
        self.mix = DryWetMix(channels, strength)  # set ``mix.strength`` (0..1) while streaming
        self.geometry = geometry
        self.channels = channels
        self._fade = kernels.fade_in_weights(geometry.crossfade)
        self.timer = HopTimer()
        self.dry_hops = 0  # hops run without the model to catch up (live deadline fallback)
        self.bad_hops = 0  # hops whose model output was NaN/Inf and played dry instead
        # A block of any size is cut into pieces so that one model call sees at most about
        # MAX_CALL_SAMPLES values (at least one hop or window per channel).
        per_hop = channels * (geometry.hop if geometry.stateful else geometry.window)
        self.max_block = geometry.hop * max(1, limits.MAX_CALL_SAMPLES // per_hop)
        if not geometry.stateful:  # the only kernel the Streamer runs; the live engine warms the rest
            kernels.warm_up_overlap()  # compile before any stream starts, never inside a callback
        self.reset()

    def prepare(self, hops: int) -> None:
        """Bind the model for calls of ``hops`` hops: the live engine binds 1, file mode its block
        (a streaming model's processor then keeps a session and buffers for that shape, see
        ``StatefulOnnxProcessor.prepare``). Calls of other sizes still work; only their speed differs."""
        prepare = getattr(self.processor, "prepare", None)
        if self.geometry.stateful and prepare is not None:
            prepare(self.channels, hops * self.geometry.hop)

    def reset(self) -> None:
        """Forget all history: the next sample fed is sample 0 of a new stream."""
        g = self.geometry
        # Windowed models re-read window - hop past samples each hop; streaming models keep
        # their context in their own state instead.
        self._keep = 0 if g.stateful else g.window - g.hop
        self._context = np.zeros((self.channels, self._keep), np.float32)
        if g.stateful:
            self.processor.reset(self.channels)
        self._tail = np.zeros((self.channels, g.crossfade), np.float32)
        self._to_drop = g.lookahead  # the first kept samples belong to negative positions
        self._recent = np.zeros((self.channels, g.lookahead), np.float32)  # dry input, lookahead behind
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
        buf = np.concatenate([self._context, block], axis=1)
        g = self.geometry
        hops = (buf.shape[1] - self._keep) // g.hop
        if hops <= 0:
            self._context = buf
            return np.zeros((self.channels, 0), np.float32)
        out = self._step(buf, hops) if g.stateful else self._process(buf, hops, dry)
        self._context = buf[:, hops * g.hop :]
        return self._emit(out)

    def _step(self, buf: np.ndarray, hops: int) -> np.ndarray:
        """Streaming model: all complete hops in one call (the same result as one call per hop).

        ``dry`` does not apply: a streaming model must see every sample to keep its state
        consistent, so a late hop is still computed (the live callback has played it dry).
        """
        start = time.perf_counter()
        chunk = np.ascontiguousarray(buf[:, : hops * self.geometry.hop])
        out = self._guarded(self.processor.step, chunk)
        seconds = time.perf_counter() - start
        self.timer.add(seconds, seconds, hops)
        dry = np.concatenate([self._recent, chunk], axis=1)
        self._recent = dry[:, dry.shape[1] - self.geometry.lookahead :]
        if not np.isfinite(out).all():
            # A broken state would poison every later hop: restart the model, play this chunk dry.
            self._count_bad(hops)
            self.processor.reset(self.channels)
            out = dry[:, : chunk.shape[1]]
        return out

    def _guarded(self, call, x: np.ndarray) -> np.ndarray:
        """Run the model; if it raises mid-stream, return NaNs so the hops play dry like a NaN output."""
        try:
            return call(x)
        except Exception as exc:  # onnxruntime raises several private types; the stream must go on
            if self.bad_hops == 0:
                logger.error("the model failed (%s); playing dry", first_line(exc, 200))
            return np.full(x.shape, np.nan, np.float32)

    def _count_bad(self, hops: int) -> None:
        if self.bad_hops == 0:
            logger.warning("the model produced NaN or infinite samples; those hops play dry (counted in the report)")
        self.bad_hops += hops

    def _process(self, buf: np.ndarray, hops: int, dry: bool) -> np.ndarray:
        g, c = self.geometry, self.channels
        start = time.perf_counter()
        windows = sliding_window_view(buf, g.window, axis=1)[:, : hops * g.hop : g.hop]  # [C, hops, W]
        windows = np.ascontiguousarray(windows.transpose(1, 0, 2))  # [hops, C, W]
        model_start = time.perf_counter()
        if dry or getattr(self.processor, "is_identity", False):
            y = windows
            self.dry_hops += hops if dry else 0
        else:
            y = self._guarded(self.processor.run, windows.reshape(hops * c, g.window)).reshape(hops, c, g.window)
            bad = ~np.isfinite(y).all(axis=(1, 2))
            if bad.any():
                self._count_bad(int(bad.sum()))
                y[bad] = windows[bad]
        model_seconds = time.perf_counter() - model_start
        out = np.empty((c, hops * g.hop), np.float32)
        kernels.overlap_hops_nb(np.ascontiguousarray(y, np.float32), self._tail, self._fade, out, g.kept_start, g.hop)
        self.timer.add(time.perf_counter() - start, model_seconds, hops)
        return out

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


def build_streamer(processor: Processor, channels: int, *, preset: str | None = None, hop: str | None = None,
                   lookahead: str | None = None, crossfade: str | None = None, strength: float = 1.0) -> Streamer:
    """A :class:`Streamer` whose geometry comes from the model's metadata and the user's flags
    (a ``--latency`` preset and ``--hop``/``--lookahead``/``--crossfade``, samples or ``"5ms"``)."""
    info = processor.info
    if info.kind == "stateful":
        g = geo.resolve_stateful(
            sample_rate=info.sample_rate, receptive_field=info.window, default_hop=info.hop,
            lookahead=info.lookahead, stride=info.total_stride, preset=preset, hop=hop, lookahead_flag=lookahead,
        )
    else:
        g = geo.resolve(
            sample_rate=info.sample_rate, window=info.window, default_hop=info.hop, default_lookahead=info.lookahead,
            default_crossfade=info.crossfade, preset=preset, hop=hop, lookahead=lookahead, crossfade=crossfade,
        )
    return Streamer(processor, g, channels, strength=strength)
