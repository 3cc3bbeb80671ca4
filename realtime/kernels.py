"""Sample-moving kernels of the engine: numba versions and plain-numpy references.

Every kernel exists twice: ``*_nb`` is compiled with ``@njit(cache=True, nogil=True)`` and
is what the engine runs; ``*_np`` is the readable numpy reference the tests compare it with.
:func:`warm_up` compiles (or loads from cache) every numba kernel before a stream starts,
so nothing is ever JIT-compiled inside an audio callback.

numba itself is imported only when a kernel is first needed (importing it and loading the
cached machine code costs about a second): ``rt-enhance --help`` and file mode with a streaming
model, which needs no kernel, never pay it. The ``njit`` below is numba's, deferred.

Conventions: rings are float32 ``[channels, N]`` with N a power of two (index ``& (N - 1)``);
device blocks are float32 ``[frames, channels]`` as PortAudio delivers them.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)


class _Deferred:
    """A kernel not yet handed to numba; the first call (or :func:`warm_up`) hands over all of them."""

    def __init__(self, fn, options: dict) -> None:
        self.fn, self.options = fn, options
        self.__name__, self.__doc__ = fn.__name__, fn.__doc__

    def __call__(self, *args):
        _bind_all()
        return globals()[self.__name__](*args)


def njit(**options):
    """numba's ``njit(**options)``, applied when a kernel is first needed (see the module docstring)."""
    return lambda fn: _Deferred(fn, options)


def _bind_all() -> None:
    """Replace every deferred kernel in this module by its numba dispatcher (compiled lazily by
    numba on the first call of each signature, from its on-disk cache when there is one).
    All at once, so a kernel that calls another finds a dispatcher under the callee's name."""
    deferred = {name: k for name, k in globals().items() if isinstance(k, _Deferred)}
    if not deferred:
        return
    import numba

    for name, k in deferred.items():
        globals()[name] = numba.njit(**k.options)(k.fn)


# Indices into the int64 state array shared by the audio callback and the worker.
IN_COUNT = 0  # device input samples received so far (duplex/capture) or positions played (playback)
DELAY = 1  # D: output position = input position - D
WATERMARK = 2  # worker has written enhanced samples for aligned positions < WATERMARK
MISSED = 3  # output samples the callback played dry because the worker was late
MISS_EVENTS = 4  # times the callback switched from enhanced to dry
SOURCE = 5  # per-callback state: 1 if the last sample played was enhanced
OVERRUN = 6  # capture: samples dropped because the worker fell a whole ring behind
END = 7  # playback: positions from here on are past the end of the file (silence, not misses)
STATE_SIZE = 8

# Indices into the float64 state array (per channel, after the first slots).
DECLICK_DECAY = 0  # per-sample multiplier of the declick offset
LIMIT_KNEE = 1  # soft limiter knee (<= 0 disables the limiter)
FSTATE_HEAD = 2  # then: [last_out[c] for c], [offset[c] for c]


def fade_in_weights(length: int) -> np.ndarray:
    """Raised-cosine fade-in of ``length`` samples, float32 ``[length]``.

    ``w[i] + w[length - 1 - i] == 1``, and the fade-out paired with it is ``1 - w``, so the
    two weights of a crossfade sum to one at every sample.
    """
    if length <= 0:
        return np.zeros(0, np.float32)
    t = (np.arange(length, dtype=np.float64) + 0.5) / length
    return (np.sin(0.5 * np.pi * t) ** 2).astype(np.float32)


# ----------------------------------------------------------------------------- overlap / crossfade


def overlap_hops_np(y: np.ndarray, tail: np.ndarray, fade: np.ndarray, out: np.ndarray, start: int, hop: int) -> None:
    """Reference: keep ``hop`` samples of each window output and crossfade the joins.

    y: float32 ``[hops, channels, window]`` model outputs, oldest first.
    tail: float32 ``[channels, X]`` the previous window's samples just after its kept region;
        updated in place with the last window's.
    fade: float32 ``[X]`` fade-in weights of the new window.
    out: float32 ``[channels, hops * hop]`` receives the kept, crossfaded samples.
    start: index in the window of the first kept sample (window - lookahead - hop).
    """
    xf = fade.shape[0]
    for k in range(y.shape[0]):
        kept = y[k, :, start : start + hop].copy()
        kept[:, :xf] = tail * (1.0 - fade) + kept[:, :xf] * fade
        out[:, k * hop : (k + 1) * hop] = kept
        tail[:] = y[k, :, start + hop : start + hop + xf]


@njit(cache=True, nogil=True)
def overlap_hops_nb(y, tail, fade, out, start, hop):  # pragma: no cover - compiled
    hops, channels, _ = y.shape
    xf = fade.shape[0]
    for k in range(hops):
        base = k * hop
        for c in range(channels):
            for i in range(xf):
                w = fade[i]
                out[c, base + i] = tail[c, i] * (1.0 - w) + y[k, c, start + i] * w
            for i in range(xf, hop):
                out[c, base + i] = y[k, c, start + i]
            for i in range(xf):
                tail[c, i] = y[k, c, start + hop + i]


# ----------------------------------------------------------------------------- rings


def ring_write_np(ring: np.ndarray, pos: int, block: np.ndarray) -> None:
    """Reference: write ``block`` float32 ``[channels, n]`` into ``ring`` at absolute ``pos``."""
    size = ring.shape[1]
    idx = (pos + np.arange(block.shape[1])) & (size - 1)
    ring[:, idx] = block


@njit(cache=True, nogil=True)
def ring_write_nb(ring, pos, block):  # pragma: no cover - compiled
    mask = ring.shape[1] - 1
    for c in range(block.shape[0]):
        for i in range(block.shape[1]):
            ring[c, (pos + i) & mask] = block[c, i]


def ring_read_np(ring: np.ndarray, pos: int, out: np.ndarray) -> None:
    """Reference: read ``out.shape[1]`` samples at absolute ``pos`` into ``out`` ``[channels, n]``."""
    size = ring.shape[1]
    idx = (pos + np.arange(out.shape[1])) & (size - 1)
    out[:] = ring[:, idx]


@njit(cache=True, nogil=True)
def ring_read_nb(ring, pos, out):  # pragma: no cover - compiled
    mask = ring.shape[1] - 1
    for c in range(out.shape[0]):
        for i in range(out.shape[1]):
            out[c, i] = ring[c, (pos + i) & mask]


# ----------------------------------------------------------------------------- callbacks


LIMIT_CEILING = 0.99  # -0.09 dBFS: the soft limiter's output never goes beyond this


@njit(cache=True, nogil=True)
def _soft_limit(x, knee):  # pragma: no cover - compiled
    """Identity below ``knee``; above it a tanh curve that approaches LIMIT_CEILING (< 1)."""
    if knee <= 0.0:
        return x
    a = abs(x)
    if a <= knee:
        return x
    room = LIMIT_CEILING - knee
    y = knee + room * np.tanh((a - knee) / room)
    return y if x > 0 else -y


@njit(cache=True, nogil=True)
def _emit(value, before, is_enh, c, channels, st, fst):  # pragma: no cover - compiled
    """Declick a change of source (enhanced <-> dry), then soft-limit; returns the sample.

    ``before`` is the new source's sample one position earlier. At a switch the new source is
    offset to meet the old one there (``last - before``, the gap between the two signals, not
    between consecutive samples, so a transient that lands on the switch is kept), and the
    offset decays to nothing over the declick time.
    """
    last = fst[FSTATE_HEAD + c]
    offset = fst[FSTATE_HEAD + channels + c]
    if is_enh != st[SOURCE]:
        offset = last - before
    offset *= fst[DECLICK_DECAY]
    raw = value + offset
    fst[FSTATE_HEAD + c] = raw
    fst[FSTATE_HEAD + channels + c] = offset
    return _soft_limit(raw, fst[LIMIT_KNEE])


@njit(cache=True, nogil=True)
def play_from_rings_nb(outdata, in_ring, out_ring, first, st, fst):  # pragma: no cover - compiled
    """Fill ``outdata`` ``[frames, channels]`` for aligned positions ``first, first + 1, ...``.

    A position the worker has written (below WATERMARK) plays enhanced; any other plays the dry
    input at the same position (so the delay never changes), with a declick at each switch.
    Negative positions (before the stream's delay has elapsed) play silence.
    """
    frames, channels = outdata.shape
    ring_channels = out_ring.shape[0]
    mask = out_ring.shape[1] - 1
    wm = st[WATERMARK]
    for i in range(frames):
        q = first + i
        if q < 0:
            for c in range(channels):
                outdata[i, c] = 0.0
            continue
        is_enh = 1 if q < wm else 0
        if is_enh == 0:
            st[MISSED] += 1
            if st[SOURCE] == 1:
                st[MISS_EVENTS] += 1
        src = out_ring if is_enh == 1 else in_ring
        for c in range(channels):
            r = c % ring_channels  # a mono stream feeds every output channel
            before = src[r, (q - 1) & mask] if q > 0 else 0.0
            outdata[i, c] = _emit(src[r, q & mask], before, is_enh, c, channels, st, fst)
        st[SOURCE] = is_enh


@njit(cache=True, nogil=True)
def duplex_callback_nb(indata, outdata, in_ring, out_ring, st, fst):  # pragma: no cover - compiled
    """The whole duplex audio callback: store input, play output D samples behind it."""
    pos = st[IN_COUNT]
    mask = in_ring.shape[1] - 1
    frames = indata.shape[0]
    for i in range(frames):
        for c in range(in_ring.shape[0]):
            in_ring[c, (pos + i) & mask] = indata[i, c]
    play_from_rings_nb(outdata, in_ring, out_ring, pos - st[DELAY], st, fst)
    st[IN_COUNT] = pos + frames


@njit(cache=True, nogil=True)
def capture_callback_nb(indata, in_ring, st):  # pragma: no cover - compiled
    """Input-only audio callback: store input in the ring."""
    pos = st[IN_COUNT]
    mask = in_ring.shape[1] - 1
    frames, channels = indata.shape
    for i in range(frames):
        for c in range(channels):
            in_ring[c, (pos + i) & mask] = indata[i, c]
    st[IN_COUNT] = pos + frames


@njit(cache=True, nogil=True)
def playback_callback_nb(outdata, out_ring, st, fst):  # pragma: no cover - compiled
    """Output-only audio callback (file source): play what the worker wrote, else silence.

    A position the worker has not written yet is a deadline miss (counted like the duplex
    callback's); positions past the end of the file (``END``) are not."""
    pos = st[IN_COUNT]
    frames, channels = outdata.shape
    mask = out_ring.shape[1] - 1
    wm = st[WATERMARK]
    for i in range(frames):
        q = pos + i
        ready = q < wm
        if not ready and q < st[END]:
            st[MISSED] += 1
            if st[SOURCE] == 1:
                st[MISS_EVENTS] += 1
        st[SOURCE] = 1 if ready else 0
        for c in range(channels):
            v = out_ring[c % out_ring.shape[0], q & mask] if ready else 0.0
            outdata[i, c] = _soft_limit(v, fst[LIMIT_KNEE])
    st[IN_COUNT] = pos + frames


def new_state(channels: int, *, delay: int = 0, declick_samples: int = 48, limit_knee: float = 0.0):
    """Fresh int64 ``[STATE_SIZE]`` and float64 ``[2 + 2 * channels]`` callback state arrays."""
    st = np.zeros(STATE_SIZE, np.int64)
    st[DELAY] = delay
    st[SOURCE] = 1
    st[END] = np.iinfo(np.int64).max
    fst = np.zeros(FSTATE_HEAD + 2 * channels, np.float64)
    # The offset decays to 1/1000 (-60 dB) over declick_samples.
    fst[DECLICK_DECAY] = 10.0 ** (-3.0 / max(declick_samples, 1))
    fst[LIMIT_KNEE] = limit_knee
    return st, fst


def warm_up_overlap() -> None:
    """Compile (or load from numba's cache) the one kernel a windowed model's Streamer needs."""
    f32 = np.float32
    overlap_hops_nb(np.zeros((1, 2, 16), f32), np.zeros((2, 2), f32), fade_in_weights(2), np.zeros((2, 8), f32), 4, 8)


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel with the engine's dtypes."""
    f32 = np.float32
    ring = np.zeros((2, 64), f32)
    block_cn = np.zeros((2, 8), f32)
    block_nc = np.zeros((8, 2), f32)
    st, fst = new_state(2, delay=4, limit_knee=0.9)
    ring_write_nb(ring, 3, block_cn)
    ring_read_nb(ring, 3, block_cn)
    warm_up_overlap()
    duplex_callback_nb(block_nc, block_nc.copy(), ring, ring.copy(), st, fst)
    capture_callback_nb(block_nc, ring, st)
    playback_callback_nb(block_nc.copy(), ring, st, fst)
    logger.debug("numba kernels ready")
