"""One corpus file at a time: what to make (``plan_*``: cheap, deterministic parameters) and making it (``render``).

An :class:`Item` is a file to be: its kind, split, index, item seed and JSON parameters. Planning draws the
parameters from ``default_rng([seed, kind code, item seed, 0])``; rendering draws everything else (Piper's noise,
a noise texture's samples, a performance's velocities, a room's positions) from ``[..., 1]``. So an item's file
depends only on the user's seed, its kind, its split and its index, never on the order the pool runs things in.

Item seeds: train item ``i`` has seed ``i``, test item ``i`` has seed ``TEST_SEED_OFFSET + i``: the two ranges
never meet, so no noise or room seed of the test set is ever used in training.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from rt_enhance.training.corpus import music, noise_textures, texts, tts
from rt_enhance.training.degrade import rooms

logger = logging.getLogger(__name__)

KIND_CODES = {"speech": 1, "music": 2, "noise": 3, "rir": 4}
TEST_SEED_OFFSET = 1_000_000
VAL_SEED_OFFSET = 2_000_000
#: Stored clean and noise files never peak above this (about -0.26 dBFS).
PEAK_MAX = 0.97

#: Share of speech items per engine, by split (a voice is then drawn uniformly among the engine's voices).
SPEECH_ENGINES = {
    "train": {"piper": 0.35, "festival": 0.2, "flite": 0.2, "espeak": 0.25},
    "test": {"festival": 0.3, "flite": 0.3, "espeak": 0.4},
}
#: Engines babble talkers are drawn from (fast ones; Piper's joe is one voice and slow).
BABBLE_ENGINES = {"espeak": 0.5, "flite": 0.3, "festival": 0.2}
NOISE_KINDS = {
    "white": 0.04,
    "tpdf": 0.02,
    "pink": 0.08,
    "brown": 0.05,
    "hum": 0.07,
    "clicks": 0.05,
    "babble": 0.05,
    "keyboard": 0.08,
    "fan": 0.09,
    "rain": 0.07,
    "traffic": 0.08,
    "wind": 0.06,
    "buzz": 0.05,
    "crackle": 0.04,
    "tts_babble": 0.08,
    "mixture": 0.09,
}


@dataclass(frozen=True)
class Item:
    """One file to build: ``kind``, ``split``, ``index``, item ``seed``, JSON ``params``, planned seconds and the
    engines or tools it ``needs``."""

    kind: str
    split: str
    index: int
    seed: int
    params: dict = field(hash=False)
    planned_seconds: float = 0.0
    needs: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """Path relative to the corpus root, e.g. ``speech/train/speech-train-000012.wav``."""
        return f"{self.kind}/{self.split}/{self.kind}-{self.split}-{self.index:06d}.wav"

    def key(self, rate: int, tools: dict[str, str], recipe_version: int) -> str:
        """Cache key: changes when the parameters, the rate, the recipe or a needed tool's version change."""
        payload = {"params": self.params, "rate": rate, "recipe": recipe_version, "tools": {t: tools.get(t, "") for t in self.needs}}
        return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def item_seed(split: str, index: int) -> int:
    """The item seed: ``index`` for train, ``TEST_SEED_OFFSET + index`` for test, ``VAL_SEED_OFFSET + index`` for val."""
    return index + {"test": TEST_SEED_OFFSET, "val": VAL_SEED_OFFSET}.get(split, 0)


def item_rng(seed: int, kind: str, split: str, index: int, stage: int) -> np.random.Generator:
    """The generator of one item's planning (``stage`` 0) or rendering (1)."""
    return np.random.default_rng([seed, KIND_CODES[kind], item_seed(split, index), stage])


def _choice(weights: dict[str, float], rng: np.random.Generator) -> str:
    names = sorted(weights)
    p = np.array([weights[n] for n in names])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


# ---------------------------------------------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------------------------------------------


def _talk(split: str, engines: dict[str, float], seconds: float, rng: np.random.Generator) -> dict:
    """A voice, a text of about ``seconds`` and a prosody, all of ``split``."""
    engine = _choice(engines, rng)
    pool = tts.voices(split, engine)
    voice = pool[int(rng.integers(len(pool)))]
    rate = _log_uniform(rng, 0.8, 1.25)
    return {
        "voice": voice.id,
        "speaker": voice.speaker,
        "engine": voice.engine,
        "text": texts.paragraph(texts.vocabulary(split), rng, seconds * rate),
        "rate": round(rate, 4),
        "pitch": round(float(rng.uniform(-3, 3)), 3),
        "expressiveness": round(float(rng.uniform(0.6, 1.3)), 3),
        "warp": round(float(rng.uniform(0.95, 1.05)), 4),
    }


def plan_speech(split: str, rng: np.random.Generator, seconds_range: tuple[float, float]) -> tuple[dict, float]:
    """Parameters of one clean speech file and its planned duration."""
    seconds = float(rng.uniform(*seconds_range))
    params = _talk(split, SPEECH_ENGINES[split], seconds, rng)
    params.update(
        rms_dbfs=round(float(rng.uniform(-35, -15)), 2),
        pads=[round(float(rng.uniform(0.05, 0.3)), 3), round(float(rng.uniform(0.05, 0.3)), 3)],
    )
    return params, seconds


def plan_music(split: str, rng: np.random.Generator, seconds_range: tuple[float, float]) -> tuple[dict, float]:
    """Parameters of one music render and its planned duration."""
    seconds = float(rng.uniform(*seconds_range))
    params: dict[str, Any] = {
        "seconds": round(seconds, 3),
        "rms_dbfs": round(float(rng.uniform(-30, -14)), 2),
        "score_pick": int(rng.integers(1 << 31)),
    }
    params["piece"] = music.draw_piece(split, rng) if music.has_music21() else None  # None: skipped, see needs()
    return params, seconds


def plan_noise(split: str, rng: np.random.Generator, seconds_range: tuple[float, float]) -> tuple[dict, float]:
    """Parameters of one noise clip and its duration."""
    seconds = round(float(rng.uniform(*seconds_range)), 3)
    kind = _choice(NOISE_KINDS, rng)
    params: dict = {"noise": kind, "seconds": seconds, "rms_dbfs": round(float(rng.uniform(-30, -20)), 2)}
    if kind == "tts_babble":  # the validation split's talkers are training voices (TTS has no validation voices)
        talkers = "train" if split == "val" else split
        params["talkers"] = [_talk(talkers, BABBLE_ENGINES, 8.0, rng) for _ in range(int(rng.integers(3, 9)))]
    if kind == "mixture":
        kinds = sorted(noise_textures.KINDS)
        picks = rng.choice(len(kinds), size=int(rng.integers(2, 4)), replace=False)
        params["parts"] = [kinds[int(i)] for i in sorted(picks)]
        params["gains_db"] = [round(float(rng.uniform(-10, 0)), 2) for _ in params["parts"]]
    return params, seconds


def plan_rir(split: str, rng: np.random.Generator, rt60_range: tuple[float, float]) -> tuple[dict, float]:
    """Parameters of one room: the wanted (measured) RT60 and the Sabine target that reaches it."""
    rt60 = float(rng.uniform(*rt60_range))
    return {"rt60": round(rt60, 4), "sabine_rt60": round(rt60 / rooms.SABINE_BIAS, 4)}, 0.0


def needs(kind: str, params: dict) -> tuple[str, ...]:
    """The engines or tools an item needs (names as in the manifest's ``tools``)."""
    if kind == "speech":
        return (params["engine"],)
    if kind == "music":
        return ("music",)
    if kind == "rir":
        return ("pyroomacoustics",)
    return tuple(sorted({t["engine"] for t in params.get("talkers", [])}))


PLANNERS = {"speech": plan_speech, "music": plan_music, "noise": plan_noise, "rir": plan_rir}


def plan_item(kind: str, split: str, index: int, seed: int, ranges: dict[str, tuple[float, float]]) -> Item:
    """Item ``index`` of ``kind`` in ``split``; ``ranges`` gives each kind's seconds (or RT60) range."""
    params, seconds = PLANNERS[kind](split, item_rng(seed, kind, split, index, 0), ranges[kind])
    return Item(kind, split, index, item_seed(split, index), params, seconds, needs(kind, params))


# ---------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------


def active_span(x: np.ndarray, rate: int, floor_db: float = -50.0) -> tuple[int, int]:
    """First and one-past-last sample of the 10 ms frames within ``floor_db`` of the loudest frame."""
    frame = max(1, rate // 100)
    count = max(1, len(x) // frame)
    energy = np.sqrt(np.mean(np.square(x[: count * frame]).reshape(count, -1), axis=1) + 1e-30)
    active = np.flatnonzero(20 * np.log10(energy / energy.max()) > floor_db)
    if active.size == 0:
        return 0, len(x)
    return int(active[0] * frame), int(min(len(x), (active[-1] + 1) * frame))


def set_level(x: np.ndarray, rms_dbfs: float) -> np.ndarray:
    """``x`` scaled to ``rms_dbfs`` RMS, then down to PEAK_MAX if it would peak above it."""
    rms = math.sqrt(float(np.mean(np.square(x)))) if x.size else 0.0
    if rms == 0.0:
        raise ValueError("silent audio")
    y = x * (10 ** (rms_dbfs / 20) / rms)
    peak = float(np.max(np.abs(y)))
    return y * (PEAK_MAX / peak) if peak > PEAK_MAX else y


def _speak(talk: dict, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """One talk rendered at ``rate`` (warped: the native rate is read as ``native * warp``); audio and bandwidth."""
    voice = tts.voice_by_id(talk["voice"])
    prosody = tts.Prosody(talk["rate"], talk["pitch"], talk["expressiveness"])
    audio, native = tts.synthesize(talk["text"], voice, prosody, rng)
    source_rate = native * talk["warp"]
    return soxr.resample(audio, source_rate, rate), min(source_rate, rate) / 2


def render_speech(params: dict, rate: int, rng: np.random.Generator, cache: Path) -> tuple[np.ndarray, dict]:
    """Clean speech ``[n]``: trimmed to its active span, padded with ``pads`` seconds of silence, levelled."""
    audio, bandwidth = _speak(params, rate, rng)
    start, stop = active_span(audio, rate)
    lead, tail = (np.zeros(int(p * rate)) for p in params["pads"])
    audio = np.concatenate([lead, audio[start:stop], tail])
    return set_level(audio, params["rms_dbfs"]), {"bandwidth_hz": round(bandwidth, 1)}


def render_music(params: dict, rate: int, rng: np.random.Generator, cache: Path) -> tuple[np.ndarray, dict]:
    """A dry FluidSynth render ``[n]`` of a stretch of the piece; the release tail is kept up to -60 dB."""
    scores = music.cached_score(params["piece"], cache / "music21")
    perf = music.perform(scores[params["score_pick"] % len(scores)], params["seconds"], rng)
    audio = music.render(music.midi_bytes(perf, rng), rate)
    start, stop = active_span(audio, rate, floor_db=-60.0)
    audio = audio[max(0, start - rate // 100) : stop]
    fade = min(len(audio), rate // 20)
    audio[len(audio) - fade :] *= np.linspace(1, 0, fade)
    return set_level(audio, params["rms_dbfs"]), {**perf.describe(), "bandwidth_hz": rate / 2}


def render_noise(params: dict, rate: int, rng: np.random.Generator, cache: Path) -> tuple[np.ndarray, dict]:
    """A noise clip ``[n]`` of the planned kind and length, levelled."""
    n = int(round(params["seconds"] * rate))
    kind, info = params["noise"], {"bandwidth_hz": rate / 2}
    if kind == "tts_babble":
        talkers = [_speak(t, rate, rng) for t in params["talkers"]]
        audio = noise_textures.talker_babble([a for a, _ in talkers], n, rng, rate)
        info["bandwidth_hz"] = round(max(b for _, b in talkers), 1)
    elif kind == "mixture":
        audio = noise_textures.mixture(params["parts"], params["gains_db"], n, rate, rng)
    else:
        audio = noise_textures.generate(kind, n, rate, rng)
    return set_level(audio, params["rms_dbfs"]), info


def render_rir(params: dict, rate: int, rng: np.random.Generator, cache: Path) -> tuple[np.ndarray, dict]:
    """A room response ``[taps]`` (direct-path peak at rooms.DIRECT_INDEX, level rooms.DIRECT_LEVEL)."""
    rir, room = rooms.simulate(params["sabine_rt60"], rate, rng)
    measured = rooms.measure_rt60(rir, rate)
    return rir, {
        "room": room.to_json(),
        "direct_index": rooms.DIRECT_INDEX,
        "direct_level": rooms.DIRECT_LEVEL,
        "rt60_measured": None if measured is None else round(measured, 4),
    }


RENDERERS = {"speech": render_speech, "music": render_music, "noise": render_noise, "rir": render_rir}


def render(item: Item, seed: int, rate: int, cache: Path) -> tuple[np.ndarray, dict]:
    """The item's audio (float64 ``[n]`` at ``rate``) and what rendering decided (JSON)."""
    rng = item_rng(seed, item.kind, item.split, item.index, 1)
    return RENDERERS[item.kind](item.params, rate, rng, cache)
