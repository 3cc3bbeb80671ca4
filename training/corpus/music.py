"""Music for the corpus: music21's bundled scores -> MIDI (written here) -> FluidSynth renders at 48 kHz.

Scores: music21 installs its corpus offline with the package. Only collections of composers dead for more than a
century and of traditional tunes are used (``COLLECTIONS``); the Essen folk songs are left out (non-commercial
licence), as are the 20th-century composers. Note that music21 says some *encodings* in its corpus carry their own
restrictions (some non-commercial); see docs/corpus.md.

A clip: a piece (by collection group, then uniformly), a stretch of it, a tempo (its metronome mark, or 60-132 qpm,
times 0.8-1.25, with a slow random drift per bar), a transposition of -2..+2 semitones, velocities per part
(45-110, a slow phrase swell, per-note jitter, melody a little louder), a legato factor, and an arrangement:

- ``solo``: every part on one keyboard-like instrument (piano, organ, harpsichord, harp, guitar, marimba, ...);
- ``family``: every part from one family (strings, winds, brass, ...), chosen by the part's register;
- ``ensemble``: every part from any family, by register.

Rendering shells out to ``fluidsynth`` (Debian ``fluidsynth`` + ``fluid-soundfont-gm``) with reverb and chorus off:
the clean target is dry. The stereo render is averaged to mono.

Held-out rule: a piece (a corpus file) belongs to exactly one split by a stable hash of its corpus path
(CRC-32, 1 in 10 to ``test``).

Parsing a score costs 0.1-20 s; the note events of every parsed file are cached as JSON under the corpus's
``cache/music21`` folder, so a piece is parsed once per corpus.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import shutil
import struct
import subprocess
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from rt_enhance.realtime.errors import RtEnhanceError
from rt_enhance.realtime.fileio import atomic_write_text

logger = logging.getLogger(__name__)

#: Collection groups and their share of the clips.
COLLECTIONS = {
    "bach": (("bach",), 0.25),
    "renaissance": (("palestrina", "monteverdi", "josquin", "trecento", "ciconia", "luca", "lusitano"), 0.15),
    "classical": (
        (
            "beethoven",
            "mozart",
            "haydn",
            "schubert",
            "schumann_robert",
            "schumann_clara",
            "chopin",
            "corelli",
            "cpebach",
            "handel",
            "verdi",
            "weber",
            "joplin",
        ),
        0.3,
    ),
    "folk": (("ryansMammoth", "oneills1850", "airdsAirs"), 0.3),
}
SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn", ".abc")
#: Compressed or plain score files above this size parse too slowly (Beethoven's late quartets: 20 s).
MAX_SCORE_BYTES = {".mxl": 150_000, ".xml": 2_000_000, ".musicxml": 2_000_000, ".krn": 400_000, ".abc": 400_000}
TEST_MODULUS = 10
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2")
TICKS = 480  # per quarter note
CALL_TIMEOUT = 300

#: GM programs (0-based): name, family, lowest and highest MIDI note it plays well.
PROGRAMS = {
    0: ("acoustic grand piano", "keys", 21, 108),
    1: ("bright piano", "keys", 21, 108),
    2: ("electric grand", "keys", 21, 108),
    4: ("electric piano 1", "keys", 28, 103),
    5: ("electric piano 2", "keys", 28, 103),
    6: ("harpsichord", "keys", 29, 89),
    16: ("drawbar organ", "organ", 24, 96),
    19: ("church organ", "organ", 21, 108),
    20: ("reed organ", "organ", 36, 96),
    21: ("accordion", "organ", 41, 89),
    24: ("nylon guitar", "guitar", 40, 84),
    25: ("steel guitar", "guitar", 40, 84),
    26: ("jazz guitar", "guitar", 40, 84),
    27: ("clean electric guitar", "guitar", 40, 86),
    40: ("violin", "strings", 55, 103),
    41: ("viola", "strings", 48, 91),
    42: ("cello", "strings", 36, 76),
    43: ("contrabass", "strings", 28, 67),
    48: ("string ensemble", "strings", 28, 96),
    45: ("pizzicato strings", "plucked", 28, 96),
    46: ("harp", "plucked", 24, 103),
    105: ("banjo", "plucked", 48, 84),
    107: ("koto", "plucked", 48, 91),
    8: ("celesta", "mallets", 60, 108),
    11: ("vibraphone", "mallets", 53, 89),
    12: ("marimba", "mallets", 45, 96),
    13: ("xylophone", "mallets", 65, 108),
    14: ("tubular bells", "mallets", 60, 77),
    68: ("oboe", "winds", 58, 91),
    69: ("english horn", "winds", 52, 81),
    70: ("bassoon", "winds", 34, 75),
    71: ("clarinet", "winds", 50, 94),
    73: ("flute", "winds", 60, 96),
    72: ("piccolo", "winds", 74, 108),
    74: ("recorder", "winds", 60, 96),
    56: ("trumpet", "brass", 54, 86),
    57: ("trombone", "brass", 40, 77),
    58: ("tuba", "brass", 28, 58),
    60: ("french horn", "brass", 34, 77),
    61: ("brass section", "brass", 36, 84),
}
SOLO_PROGRAMS = (0, 0, 0, 1, 2, 4, 5, 6, 16, 19, 20, 21, 24, 25, 46, 12, 11)
ARRANGEMENTS = (("solo", 0.4), ("family", 0.35), ("ensemble", 0.25))


class MusicError(RtEnhanceError, RuntimeError):
    """A score, the synthesiser or the soundfont is unusable; the message names it."""


# ---------------------------------------------------------------------------------------------------------------
# Pieces and their split
# ---------------------------------------------------------------------------------------------------------------


def piece_split(path: str) -> str:
    """``train`` or ``test`` for a corpus-relative score path; stable across machines."""
    return "test" if zlib.crc32(path.encode()) % TEST_MODULUS == 0 else "train"


def _corpus_root() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


@functools.lru_cache(maxsize=1)
def all_pieces() -> dict[str, tuple[str, ...]]:
    """Usable score paths (relative to music21's corpus, sorted) by collection group."""
    root = _corpus_root()
    out = {}
    for group, (folders, _) in COLLECTIONS.items():
        found = []
        for folder in folders:
            for path in (root / folder).rglob("*"):
                if path.suffix in SCORE_SUFFIXES and path.stat().st_size <= MAX_SCORE_BYTES[path.suffix]:
                    found.append(path.relative_to(root).as_posix())
        out[group] = tuple(sorted(found))
    return out


@functools.lru_cache(maxsize=2)
def pieces(split: str) -> dict[str, tuple[str, ...]]:
    """The pieces of ``split`` by collection group (groups with none are left out)."""
    out = {g: tuple(p for p in ps if piece_split(p) == split) for g, ps in all_pieces().items()}
    return {g: ps for g, ps in out.items() if ps}


def draw_piece(split: str, rng: np.random.Generator) -> str:
    """A random piece of ``split``: a collection group by COLLECTIONS' shares, then a file uniformly."""
    available = pieces(split)
    if not available:
        raise MusicError("music21's corpus has no usable scores (pip install music21)")
    groups = sorted(available)
    weights = np.array([COLLECTIONS[g][1] for g in groups])
    group = groups[int(rng.choice(len(groups), p=weights / weights.sum()))]
    return available[group][int(rng.integers(len(available[group])))]


# ---------------------------------------------------------------------------------------------------------------
# Scores -> note events (cached)
# ---------------------------------------------------------------------------------------------------------------

#: A note: (onset in quarter notes, duration in quarter notes, MIDI pitch).
Note = tuple[float, float, int]


def _part_notes(part) -> list[Note]:
    """The part's notes with tied notes merged (music21's stripTies is 20x slower on quartets)."""
    notes: list[list] = []
    open_ties: dict[int, int] = {}  # MIDI pitch -> index of the note its tie started
    for element in part.flatten().notes:
        onset, duration = float(element.offset), max(float(element.quarterLength), 0.125)
        for component in getattr(element, "notes", None) or [element]:
            midi, tie = int(component.pitch.midi), getattr(component.tie, "type", None)
            if tie in ("continue", "stop") and midi in open_ties:
                held = notes[open_ties[midi]]
                held[1] = max(held[1], onset + duration - held[0])
                if tie == "stop":
                    del open_ties[midi]
                continue
            if tie == "start":
                open_ties[midi] = len(notes)
            notes.append([onset, duration, midi])
    return sorted((round(on, 4), round(dur, 4), p) for on, dur, p in notes)


def _score_events(score) -> dict:
    parts = [n for n in (_part_notes(p) for p in score.parts) if n] if score.parts else []
    if not parts:
        parts = [n for n in [_part_notes(score)] if n]
    marks = [float(m.getQuarterBPM() or 0) for m in score.recurse().getElementsByClass("MetronomeMark")]
    marks = [m for m in marks if 30 <= m <= 240]
    return {"parts": parts, "qpm": marks[0] if marks else None}


def parse_score(path: str) -> list[dict]:
    """Every score in corpus file ``path`` (an ABC file may hold many) as ``{"parts": [[Note...]...], "qpm"}``."""
    from music21 import converter, stream

    try:
        with warnings.catch_warnings():  # music21 warns about many harmless encoding details
            warnings.simplefilter("ignore")  # no pickles in music21's temp folder: the corpus caches JSON itself
            parsed = converter.parseFile(str(_corpus_root() / path), forceSource=True, storePickle=False)
    except Exception as err:  # music21 raises many exception types for a bad file
        raise MusicError(f"music21 cannot parse {path}: {err}") from err
    scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    return [s for s in (_score_events(sc) for sc in scores) if s["parts"]]


def cached_score(path: str, cache: Path | None) -> list[dict]:
    """:func:`parse_score` through a JSON cache file under ``cache`` (none when ``cache`` is None)."""
    if cache is None:
        return parse_score(path)
    file = cache / (path.replace("/", "__") + ".json")
    if file.exists():
        return json.loads(file.read_text(encoding="utf-8"))
    scores = parse_score(path)
    atomic_write_text(file, json.dumps(scores))
    return scores


# ---------------------------------------------------------------------------------------------------------------
# Performance: segment, tempo, arrangement, velocities
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Performance:
    """What one clip plays: part notes (quarter-note times, relative to the clip start), programs and velocity
    bases per part, tempo per bar (qpm), transposition, legato."""

    parts: list[list[Note]]
    programs: list[int]
    velocities: list[int]
    tempi: list[float]
    transpose: int
    legato: float
    start: float
    arrangement: str

    def describe(self) -> dict:
        """JSON summary for the manifest."""
        return {
            "arrangement": self.arrangement,
            "instruments": [PROGRAMS[p][0] for p in self.programs],
            "programs": self.programs,
            "velocities": self.velocities,
            "start_quarter": self.start,
            "qpm_mean": round(float(np.mean(self.tempi)), 2),
            "transpose": self.transpose,
            "legato": round(self.legato, 3),
        }


def _segment(parts: list[list[Note]], start: float, length: float) -> list[list[Note]]:
    out = []
    for notes in parts:
        kept = [(on - start, min(dur, start + length - on), p) for on, dur, p in notes if start <= on < start + length]
        if kept:
            out.append(kept)
    return out


def _fits(program: int, notes: list[Note], transpose: int) -> bool:
    _, _, low, high = PROGRAMS[program]
    pitches = [p + transpose for _, _, p in notes]
    return low <= min(pitches) and max(pitches) <= high


def _pick_program(candidates: list[int], notes: list[Note], transpose: int, rng: np.random.Generator) -> int:
    fitting = [p for p in candidates if _fits(p, notes, transpose)]
    pool = fitting or [p for p in PROGRAMS if _fits(p, notes, transpose)] or [0]
    return int(pool[int(rng.integers(len(pool)))])


def _arrange(parts: list[list[Note]], transpose: int, rng: np.random.Generator) -> tuple[str, list[int]]:
    names = [a for a, _ in ARRANGEMENTS]
    arrangement = names[int(rng.choice(len(names), p=[w for _, w in ARRANGEMENTS]))]
    if arrangement == "solo":
        program = _pick_program(list(SOLO_PROGRAMS), [n for ns in parts for n in ns], transpose, rng)
        return arrangement, [program] * len(parts)
    if arrangement == "family":
        families = sorted({f for _, f, _, _ in PROGRAMS.values()} - {"keys"})
        family = families[int(rng.integers(len(families)))]
        candidates = [p for p, (_, f, _, _) in PROGRAMS.items() if f == family]
        return arrangement, [_pick_program(candidates, ns, transpose, rng) for ns in parts]
    return arrangement, [_pick_program(list(PROGRAMS), ns, transpose, rng) for ns in parts]


def perform(score: dict, seconds: float, rng: np.random.Generator) -> Performance:
    """A ``seconds``-long performance of a random stretch of ``score``."""
    qpm = (score["qpm"] or float(rng.uniform(60, 132))) * float(rng.uniform(0.8, 1.25))
    qpm = float(np.clip(qpm, 40, 200))
    length = seconds * qpm / 60
    end = max(on + dur for notes in score["parts"] for on, dur, _ in notes)
    start = float(np.floor(rng.uniform(0, max(end - length, 0)))) if end > length else 0.0
    parts = _segment(score["parts"], start, length)
    if not parts:
        raise MusicError("empty stretch of score")
    transpose = int(rng.integers(-2, 3))
    arrangement, programs = _arrange(parts, transpose, rng)
    bars = int(math.ceil(length / 4)) + 1
    tempi = list(qpm * np.exp(np.cumsum(rng.normal(0, 0.015, bars))))
    velocities = [int(rng.integers(45, 111)) for _ in parts]
    return Performance(parts, programs, velocities, tempi, transpose, float(rng.uniform(0.8, 1.0)), start, arrangement)


# ---------------------------------------------------------------------------------------------------------------
# MIDI (Standard MIDI File, format 1) written directly
# ---------------------------------------------------------------------------------------------------------------


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _track(events: list[tuple[int, int, bytes]]) -> bytes:
    """``events`` (tick, order, message) -> an MTrk chunk; ``order`` sorts same-tick events (offs first)."""
    body, now = bytearray(), 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        body += _varlen(tick - now) + message
        now = tick
    body += b"\x00\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def _tempo_track(tempi: list[float]) -> bytes:
    events = [(i * 4 * TICKS, 0, b"\xff\x51\x03" + int(round(60e6 / q)).to_bytes(3, "big")) for i, q in enumerate(tempi)]
    return _track(events)


def _channel(index: int) -> int:
    return index if index < 9 else index + 1  # channel 10 (index 9) is percussion


def _part_track(
    notes: list[Note], index: int, program: int, velocity: int, perf: Performance, rng: np.random.Generator, melody: bool
) -> bytes:
    ch = _channel(index)
    events = [(0, 0, bytes([0xC0 | ch, program]))]
    phase, period = rng.uniform(0, 2 * math.pi), rng.uniform(4, 16)
    for on, dur, pitch in notes:
        swell = 12 * math.sin(2 * math.pi * on / period + phase)
        vel = int(np.clip(velocity + swell + rng.normal(0, 6) + (8 if melody else 0), 20, 127))
        key = int(np.clip(pitch + perf.transpose, 0, 127))
        start, stop = int(round(on * TICKS)), int(round((on + max(dur * perf.legato, 0.05)) * TICKS))
        events += [(start, 2, bytes([0x90 | ch, key, vel])), (max(stop, start + 1), 1, bytes([0x80 | ch, key, 0]))]
    return _track(events)


def midi_bytes(perf: Performance, rng: np.random.Generator) -> bytes:
    """The performance as a format-1 Standard MIDI File (tempo track + one track per part, at most 15 parts)."""
    parts = perf.parts[:15]
    tops = [max(p for _, _, p in notes) for notes in parts]
    melody = int(np.argmax(tops))
    tracks = [_tempo_track(perf.tempi)] + [
        _part_track(notes, i, perf.programs[i], perf.velocities[i], perf, rng, i == melody) for i, notes in enumerate(parts)
    ]
    header = b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), TICKS)
    return header + b"".join(tracks)


# ---------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------


def soundfont() -> Path | None:
    """The General MIDI soundfont to render with (FluidR3 first), or None."""
    for path in SOUNDFONTS:
        if Path(path).exists():
            return Path(path).resolve()
    return None


def has_music21() -> bool:
    """Whether music21 (and so its corpus) is installed."""
    try:
        import music21  # noqa: F401
    except ImportError:
        return False
    return True


def missing() -> str | None:
    """Why music cannot be rendered here (one line naming what to install), or None."""
    if not has_music21():
        return "music: music21 is not installed (pip install music21)"
    if shutil.which("fluidsynth") is None:
        return "music: fluidsynth not found (apt-get install fluidsynth fluid-soundfont-gm)"
    if soundfont() is None:
        return "music: no General MIDI soundfont (apt-get install fluid-soundfont-gm)"
    return None


@functools.lru_cache(maxsize=1)
def version() -> str:
    """Tool versions for the manifest."""
    sf2 = soundfont()
    if missing() or sf2 is None:
        return "missing"
    from importlib.metadata import version as dist_version

    out = subprocess.run(["fluidsynth", "--version"], capture_output=True, text=True, timeout=30).stdout
    fluid = next((ln.strip() for ln in out.splitlines() if "version" in ln.lower()), "fluidsynth unknown")
    return f"music21 {dist_version('music21')}; {fluid}; {sf2.name} ({sf2.stat().st_size} bytes)"


def render(midi: bytes, rate: int) -> np.ndarray:
    """FluidSynth render of ``midi`` at ``rate``, dry (no reverb or chorus), mono float64 ``[n]``."""
    reason = missing()
    if reason:
        raise MusicError(reason)
    with tempfile.TemporaryDirectory(prefix="rt-music-") as tmp:
        mid, wav = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        mid.write_bytes(midi)
        cmd = [
            "fluidsynth",
            "-n",
            "-i",
            "-q",
            "-R",
            "0",
            "-C",
            "0",
            "-g",
            "0.4",
            "-r",
            str(rate),
            "-o",
            "synth.cpu-cores=1",
            "-O",
            "float",
            "-T",
            "wav",
            "-F",
            str(wav),
            str(soundfont()),
            str(mid),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=CALL_TIMEOUT)
        if out.returncode != 0 or not wav.exists():
            raise MusicError(f"fluidsynth failed (exit {out.returncode}): {out.stderr.strip()[-300:]}")
        audio, file_rate = sf.read(str(wav), dtype="float64", always_2d=True)
    if file_rate != rate:
        raise MusicError(f"fluidsynth wrote {file_rate} Hz instead of {rate} Hz")
    return audio.mean(axis=1)
