"""The project's one room simulator, for the corpus's rooms and the ``rir simulate`` step: pyroomacoustics
shoebox rooms with a diffuse, frequency-dependent tail.

A room is drawn over a wide range of sizes (a 2 x 2 m booth to a 24 x 18 m hall) and an RT60 in 0.2-1.0 s (the
corpus's range; any range in [0.1, 3] s works). Its absorption comes from Sabine's formula (rooms that cannot reach
the RT60 are redrawn). Source and microphone are at least 0.4 m from the walls and 0.3 m apart.

Reflections up to order ``ISM_ORDER`` come from the image-source method. Beyond that a diffuse tail replaces the
exact but slow high orders: Gaussian noise in three bands (below 500 Hz, 500 Hz-4 kHz, above 4 kHz) decaying at
1.0-1.25x, 1x and 0.5-0.8x the RT60 (air and wall absorption shorten the highs), its level matched to the last
10 ms of the image-source part. The stored RT60 is the Schroeder estimate of the result (T30), recorded next to
the drawn target.

Storage: the response starts ``DIRECT_INDEX`` samples before its direct-path peak (the fractional-delay filter's
pre-ringing is kept), scaled so that the direct-path peak is ``DIRECT_LEVEL``; positions are redrawn until the
direct path is the strongest tap, so ``argmax(|rir|)`` finds it (which is how ``rir DIR`` in the degradation
pipeline aligns). The corpus writes ``direct_index`` to the manifest and to a ``.json`` sidecar.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import signal

from rt_enhance.realtime.errors import RtEnhanceError

logger = logging.getLogger(__name__)

ISM_ORDER = 8
#: Samples kept before the direct-path peak.
DIRECT_INDEX = 32
#: Amplitude of the direct-path peak in the stored response.
DIRECT_LEVEL = 0.5
#: Tail bands: (low edge Hz, high edge Hz, RT60 factor range).
TAIL_BANDS = ((0.0, 500.0, (1.0, 1.25)), (500.0, 4000.0, (1.0, 1.0)), (4000.0, None, (0.5, 0.8)))
SOUND_SPEED = 343.0
#: Median ratio of the measured (Schroeder T30) to the Sabine RT60 of :func:`simulate`; the Sabine target is the
#: wanted RT60 divided by it, so the measured RT60s span the wanted range.
SABINE_BIAS = 0.81


class RoomError(RtEnhanceError, RuntimeError):
    """No valid room could be drawn for the requested RT60."""


@dataclass(frozen=True)
class Room:
    """A shoebox room: ``dims`` (m), target ``rt60`` (s), ``source`` and ``mic`` positions (m), the Sabine
    ``absorption`` (energy) and the image-source ``order`` that reaches the RT60."""

    dims: tuple[float, float, float]
    rt60: float
    source: tuple[float, float, float]
    mic: tuple[float, float, float]
    absorption: float
    order: int

    @property
    def distance(self) -> float:
        """Source-microphone distance in m."""
        return float(np.linalg.norm(np.subtract(self.source, self.mic)))

    def to_json(self) -> dict:
        """Plain-JSON description (rounded)."""
        d = asdict(self)
        d["dims"] = [round(v, 3) for v in self.dims]
        d["source"] = [round(v, 3) for v in self.source]
        d["mic"] = [round(v, 3) for v in self.mic]
        d["distance"] = round(self.distance, 3)
        return d


def _dims(rng: np.random.Generator) -> np.ndarray:
    """Length >= width, log-uniform from a booth to a hall; height grows with the floor area."""
    length = math.exp(rng.uniform(math.log(2.0), math.log(24.0)))
    width = math.exp(rng.uniform(math.log(2.0), math.log(max(2.0, min(length, 18.0)) + 1e-9)))
    height = rng.uniform(2.2, 2.8 + 0.15 * math.sqrt(length * width))
    return np.array([length, width, min(height, 8.0)])


def _point(xyz: np.ndarray) -> tuple[float, float, float]:
    """A point or size ``[3]`` as three plain floats (x, y, z in m)."""
    return float(xyz[0]), float(xyz[1]), float(xyz[2])


def _positions(dims: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Source (mouth or instrument height) and microphone >= 0.4 m from the walls and >= 0.3 m apart."""
    low, high = np.full(3, 0.4), dims - 0.4
    for _ in range(100):
        source = rng.uniform(low, high)
        source[2] = min(rng.uniform(1.0, 2.0), high[2])
        mic = rng.uniform(low, high)
        mic[2] = min(rng.uniform(0.7, 2.2), high[2])
        if np.linalg.norm(source - mic) >= 0.3:
            return source, mic
    raise RoomError(f"no source/microphone positions in a room of {dims}")


def draw_room(rt60: float, rng: np.random.Generator) -> Room:
    """A random room whose Sabine absorption gives ``rt60`` s, with random positions."""
    import pyroomacoustics as pra

    for _ in range(100):
        dims = _dims(rng)
        try:
            absorption, order = pra.inverse_sabine(rt60, dims)
        except ValueError:  # the room is too large (or too small) for this RT60
            continue
        if not 0.0 < absorption < 1.0:
            continue
        source, mic = _positions(dims, rng)
        return Room(_point(dims), float(rt60), _point(source), _point(mic), float(absorption), int(order))
    raise RoomError(f"found no room with RT60 {rt60:.2f} s")


def _ism(room: Room, order: int, rate: int) -> np.ndarray:
    """Image-source response ``[taps]`` up to ``order`` (pyroomacoustics, fractional-delay taps)."""
    import pyroomacoustics as pra

    shoebox = pra.ShoeBox(list(room.dims), fs=rate, materials=pra.Material(room.absorption), max_order=order)
    shoebox.add_source(list(room.source))
    shoebox.add_microphone(list(room.mic))
    shoebox.compute_rir()
    return np.asarray(shoebox.rir[0][0], dtype=np.float64)


def _band(noise: np.ndarray, low: float, high: float | None, rate: int) -> np.ndarray:
    if low <= 0:
        sos = signal.butter(4, high, btype="lowpass", fs=rate, output="sos")
    elif high is None:
        sos = signal.butter(4, low, btype="highpass", fs=rate, output="sos")
    else:
        sos = signal.butter(2, [low, high], btype="bandpass", fs=rate, output="sos")
    return signal.sosfiltfilt(sos, noise)


def diffuse_tail(length: int, rt60: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise ``[length]`` decaying 60 dB in about ``rt60`` s, faster in the highs (TAIL_BANDS); the
    first 10 ms have unit RMS."""
    noise = rng.standard_normal(length)
    t = np.arange(length) / rate
    out = np.zeros(length)
    for low, high, (f_low, f_high) in TAIL_BANDS:
        band_rt60 = rt60 * rng.uniform(f_low, f_high)
        out += _band(noise, low, high, rate) * np.exp(-3 * math.log(10) * t / band_rt60)
    head = out[: max(1, rate // 100)]
    return out / max(math.sqrt(float(np.mean(head**2))), 1e-12)


def _hybrid(room: Room, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Image sources up to ISM_ORDER, then the diffuse tail; ``[taps]`` from time 0 (not yet aligned)."""
    rir = _ism(room, min(room.order, ISM_ORDER), rate)
    if room.order <= ISM_ORDER:
        return rir
    cut = min(int(ISM_ORDER * min(room.dims) / SOUND_SPEED * rate), len(rir))
    level = math.sqrt(float(np.mean(rir[max(cut - rate // 100, 0) : cut] ** 2)))
    tail = diffuse_tail(int(math.ceil(1.3 * room.rt60 * rate)), room.rt60, rate, rng)
    return np.concatenate([rir[:cut], level * tail])


def _aligned(rir: np.ndarray, direct: int) -> np.ndarray | None:
    """``rir`` starting DIRECT_INDEX taps before ``direct``, direct peak scaled to DIRECT_LEVEL; None when a
    later tap outweighs the direct path."""
    start = max(direct - DIRECT_INDEX, 0)
    out = rir[start:] * (DIRECT_LEVEL / rir[direct])
    peak = direct - start
    if np.max(np.abs(np.delete(out, peak))) >= 0.9 * DIRECT_LEVEL:
        return None
    return np.concatenate([np.zeros(DIRECT_INDEX - peak), out])


def measure_rt60(rir: np.ndarray, rate: int) -> float | None:
    """Schroeder-integral RT60 estimate (T30 extrapolated) in s, or None when the decay is too short to fit."""
    import pyroomacoustics as pra

    try:
        value = float(pra.experimental.measure_rt60(rir, fs=rate, decay_db=30))
    except (ValueError, IndexError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) else None


def simulate(rt60: float, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, Room]:
    """A room response ``[taps]`` for ``rt60`` s at ``rate``, aligned as described in the module docstring, and its
    room. Positions (then rooms) are redrawn while a reflection outweighs the direct path."""
    for _ in range(20):
        room = draw_room(rt60, rng)
        for _ in range(5):
            direct = int(np.argmax(np.abs(_ism(room, 0, rate))))
            out = _aligned(_hybrid(room, rate, rng), direct)
            if out is not None:
                return out, room
            source, mic = _positions(np.array(room.dims), rng)
            room = Room(room.dims, room.rt60, _point(source), _point(mic), room.absorption, room.order)
    raise RoomError(f"no room with a dominant direct path for RT60 {rt60:.2f} s")
