"""Real produced music for the corpus: band recordings and game soundtracks found inside Debian packages.

``rt-data build`` adds it beside the FluidSynth renders (``--only realmusic``; docs/corpus.md lists every
package, its licence and what it holds)::

    DIR/realmusic/{train,val,test}/<package>-<recording>-<n>.wav   excerpts of ~10 s, 48 kHz mono PCM_24
    DIR/recorded.json                                              its ``realmusic`` entries beside the voices

Packages are fetched and cached as the recorded voices are (:func:`recorded.unpack`, only the music
folders unpacked). A *recording* is one file, or the stems of one song summed (Frets on Fire ships a
song as ``song.ogg`` plus ``guitar.ogg``); a *piece* groups the recordings that share music (an
``_enhanced`` or ``_fast`` version, a remix, a map variant), and the split is by piece, never by
excerpt (:data:`SPLITS`): the test split holds whole pieces that training never hears.

Each recording gives at most :data:`MAX_EXCERPTS` excerpts of :data:`EXCERPT_SECONDS`, spread over it,
channels averaged, levelled like the music renders (-30..-14 dBFS RMS, peak at most 0.97). Excerpts more
than 30 dB below the recording's loudest are dropped (silent intros and tails), and a recording whose
content, over all its excerpts, stops below :data:`MIN_BANDWIDTH_HZ` (a low encoder cut-off, a 32 kHz
file) is left out: the point of this kind is real content up to 16-20 kHz. Every excerpt records its
own ``bandwidth_hz`` and ``hf_db`` (:func:`bandwidth`; a quiet or dark passage of a full-band recording
has less).

The sources reserved for independent evaluation (``wesnoth-1.16-music`` among them) are refused by
:func:`recorded.unpack`.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from rt_enhance.training.corpus import recorded

logger = logging.getLogger(__name__)

EXCERPT_SECONDS = 10.0
MIN_SECONDS = 5.0  # a recording shorter than this is left out; one up to EXCERPT_SECONDS is one excerpt
MAX_EXCERPTS = 12  # per recording: two minutes, so long soundtracks do not crowd out the rest
MIN_BANDWIDTH_HZ = 16000.0
QUIET_DB = 30.0  # excerpts this far below the recording's loudest are dropped
BAND_HZ = 250.0
FLOOR_DB = -50.0  # bandwidth: the highest band within this of the 1-4 kHz band's level


@dataclass(frozen=True)
class MusicSource:
    """One Debian package of music: which files, how they form recordings and pieces, its licence."""

    package: str
    pattern: str  # regular expression on the path inside the package
    members: str  # tar wildcard of the folder to unpack
    licence: str
    note: str
    piece: Callable[[str], str] = lambda rel: Path(rel).stem  # recording name -> piece
    stems: bool = False  # files of one folder are the stems of one recording (summed)

    def recording(self, rel: str) -> str:
        """The recording a file belongs to: its folder for stems, else its name."""
        return rel.split("/")[-2] if self.stems else Path(rel).stem


def _strip(pattern: str) -> Callable[[str], str]:
    return lambda name: re.sub(pattern, "", name)


def _supertux_piece(name: str) -> str:
    """SuperTux keeps variants of a theme under related names (``forest``, ``forest2``, ``forestmap``,
    ``new_forest_map``, ``forest-sprint``; ``cave_old``; ``airship_remix``; the ``voc-`` suite): one piece."""
    name = name.lower()
    if name.startswith("voc-"):
        return "voc"
    name = re.sub(r"([_-](old|remix|map|sprint|cave))+$", "", re.sub(r"^new_", "", name))
    return re.sub(r"_?\d+$", "", re.sub(r"_?map$", "", name))


_FOF = "usr/share/games/fretsonfire/data/songs/[^/]+/[^/]+/(song|guitar|rhythm|drums)\\.ogg$"

SOURCES: tuple[MusicSource, ...] = (
    MusicSource(
        "fretsonfire-songs-muldjord",
        _FOF,
        "./usr/share/games/fretsonfire/data/songs/*",
        "CC-BY-SA-3.0",
        "4 songs by the metal band Muldjord, backing and guitar stems, 44.1 kHz Vorbis",
        stems=True,
    ),
    MusicSource(
        "fretsonfire-songs-sectoid",
        _FOF,
        "./usr/share/games/fretsonfire/data/songs/*",
        "Expat (MIT) terms in its copyright file",
        "4 rock songs by Sectoid, backing and guitar stems",
        stems=True,
    ),
    MusicSource(
        "warzone2100-music",
        r"usr/share/games/warzone2100/music/.*\.opus$",
        "./usr/share/games/warzone2100/music/*",
        "CC-BY-SA-3.0+ or GPL-2+ (LupusMechanicus' albums); GPL-2+ (original soundtrack, Martin Severn)",
        "three soundtrack albums, 48 kHz Opus",
        piece=_strip(r"_enhanced$"),
    ),
    MusicSource(
        "supertux-data",
        r"usr/share/games/supertux2/music/.*\.ogg$",
        "./usr/share/games/supertux2/music/*",
        "GPL-2+ (Debian copyright, data/music/*)",
        "SuperTux's level and world-map music, 44.1/48 kHz Vorbis",
        piece=_supertux_piece,
    ),
    MusicSource(
        "supertuxkart-data",
        r"usr/share/games/supertuxkart/data/music/[^/]+\.ogg$",
        "./usr/share/games/supertuxkart/data/music/*",
        "CC-BY-SA-3.0, CC-BY-SA-4.0 or GPL per file (its copyright file)",
        "SuperTuxKart's race and menu music, 32/44.1/48 kHz Vorbis",
        piece=_strip(r"_(fast|f)$"),
    ),
    MusicSource(
        "freedroidrpg-data",
        r"usr/share/freedroidrpg/data/sound/music/[^/]+\.ogg$",
        "./usr/share/freedroidrpg/data/sound/music/*",
        "GPL-2+",
        "FreedroidRPG's soundtrack, 44.1 kHz Vorbis",
    ),
    MusicSource(
        "extremetuxracer-data",
        r"usr/share/games/etr/music/[^/]+\.ogg$",
        "./usr/share/games/etr/music/*",
        "GPL-2+",
        "Extreme Tux Racer's music by four composers, 44.1/48 kHz Vorbis",
    ),
    MusicSource(
        "lincity-ng-data",
        r"usr/share/games/lincity-ng/music/.*\.ogg$",
        "./usr/share/games/lincity-ng/music/*",
        "GPL-2+",
        "three tracks (pronobozo, Robert van Herk), 44.1 kHz Vorbis",
    ),
    MusicSource(
        "xmoto-data",
        r"usr/share/games/xmoto/Textures/Musics/[^/]+\.ogg$",
        "./usr/share/games/xmoto/Textures/Musics/*",
        "GPL-2+",
        "X-Moto's music, 44.1 kHz Vorbis",
    ),
)

#: Held-out pieces (``package:piece``; everything else is ``train``): whole pieces of several packages and
#: styles, the Warzone 2100 original soundtrack's composer only in val and test.
SPLITS: dict[str, str] = {
    **dict.fromkeys(
        (
            "fretsonfire-songs-muldjord:armygeddon",
            "fretsonfire-songs-sectoid:Escape from chaosland",
            "warzone2100-music:track1",
            "warzone2100-music:track2",
            "warzone2100-music:track22",
            "supertux-data:chipdisko",
            "supertux-data:christmas_theme",
            "supertux-data:treeboss",
            "supertuxkart-data:Penguin_Party",
            "supertuxkart-data:kart_grand_prix",
            "supertuxkart-data:egypt",
            "freedroidrpg-data:ImperialArmy",
            "freedroidrpg-data:Suspicion",
            "extremetuxracer-data:freezingpoint",
        ),
        "test",
    ),
    **dict.fromkeys(
        (
            "fretsonfire-songs-muldjord:mutilated_mime",
            "fretsonfire-songs-sectoid:War of freedom",
            "warzone2100-music:track3",
            "warzone2100-music:track24",
            "supertux-data:wisphunt",
            "supertux-data:salcon",
            "supertuxkart-data:garden",
            "supertuxkart-data:subsea",
            "freedroidrpg-data:Hyperbattle",
            "extremetuxracer-data:credits1-cp",
            "xmoto-data:foxrun",
        ),
        "val",
    ),
}


def split_of(key: str) -> str:
    """The split of a piece (``package:piece``)."""
    return SPLITS.get(key, "train")


def recordings(source: MusicSource, root: Path) -> dict[str, list[Path]]:
    """The source's recordings (name -> its files, stems together), sorted."""
    return recorded.files_by(root, source.pattern, source.recording)


# ----------------------------------------------------------------------------- audio


def bandwidth(x: np.ndarray, rate: int) -> tuple[float, float]:
    """``(bandwidth_hz, hf_db)`` of ``x`` ``[n]``: the top of the highest 250 Hz band whose mean power lies
    within :data:`FLOOR_DB` of the 1-4 kHz band's (where an encoder's low-pass or a low sample rate cut the
    content), and the power of 16-20 kHz relative to 1-4 kHz in dB (how bright the top octave is).

    Relative to the mids, not to the total, because music's energy sits in the bass: an excerpt whose
    99.9 % of energy lies below 12 kHz can still carry cymbals to 20 kHz."""
    from scipy import signal

    freqs, power = signal.welch(x, rate, nperseg=4096)
    edges = np.arange(0.0, rate / 2, BAND_HZ)
    bands = np.array([power[(freqs >= a) & (freqs < a + BAND_HZ)].mean() for a in edges]) + 1e-30
    mid = power[(freqs >= 1000) & (freqs < 4000)].mean() + 1e-30
    top = power[(freqs >= 16000) & (freqs < 20000)].mean() + 1e-30 if rate >= 40000 else 1e-30
    above = np.flatnonzero(10 * np.log10(bands / mid) > FLOOR_DB)
    return (float(edges[above[-1]] + BAND_HZ) if len(above) else 0.0), float(10 * np.log10(top / mid))


def excerpt_starts(frames: int, rate: int) -> list[int]:
    """Where the excerpts of a recording of ``frames`` start: back to back and centred when at most
    :data:`MAX_EXCERPTS` fit, else that many spread evenly from its start to its end."""
    length = int(EXCERPT_SECONDS * rate)
    if frames < MIN_SECONDS * rate:
        return []
    count = max(1, frames // length)
    if count <= MAX_EXCERPTS:
        first = max(0, (frames - count * length) // 2)
        return [first + k * length for k in range(count)]
    return [int(round(k * (frames - length) / (MAX_EXCERPTS - 1))) for k in range(MAX_EXCERPTS)]


def read_excerpt(files: list[Path], start: int, frames: int) -> np.ndarray:
    """float64 mono ``[frames]`` (shorter at a file's end) of ``files`` summed (stems), channels averaged."""
    parts = [sf.read(str(f), start=start, frames=frames, dtype="float64", always_2d=True)[0].mean(axis=1) for f in files]
    n = max(len(p) for p in parts)
    return np.sum([np.pad(p, (0, n - len(p))) for p in parts], axis=0)


def excerpts(files: list[Path], rate: int) -> list[tuple[float, np.ndarray]]:
    """The recording's excerpts that are not near-silent: ``(start_s, x [n] at rate)``."""
    native = sf.info(str(files[0])).samplerate
    frames = min(sf.info(str(f)).frames for f in files)
    length = int(EXCERPT_SECONDS * native)
    found = [(s / native, read_excerpt(files, s, length)) for s in excerpt_starts(frames, native)]
    if not found:
        return []
    levels = [10 * np.log10(np.mean(x**2) + 1e-20) for _, x in found]
    keep = max(levels) - QUIET_DB
    return [(t, soxr.resample(x, native, rate) if native != rate else x) for (t, x), db in zip(found, levels) if db >= keep and db > -65.0]


# ----------------------------------------------------------------------------- building


def _stem(source: MusicSource, name: str) -> str:
    package = re.sub(r"-(data|music)$", "", source.package)
    return f"{package}-{re.sub(r'[^A-Za-z0-9]+', '-', name).strip('-')}"


def build_recording(source: MusicSource, name: str, files: list[Path], out: Path, rate: int) -> list[dict]:
    """One recording's excerpts written into its piece's split; their manifest entries (none when the
    recording is too short, silent or band-limited)."""
    piece = source.piece(name)
    key = f"{source.package}:{piece}"
    found = excerpts(files, rate)
    whole = bandwidth(np.concatenate([x for _, x in found]), rate)[0] if found else 0.0
    if whole < MIN_BANDWIDTH_HZ:
        logger.info(
            "realmusic: %s:%s left out (%s)", source.package, name, f"content stops at {whole:.0f} Hz" if found else "too short or silent"
        )
        return []
    widths = [bandwidth(x, rate) for _, x in found]
    split = split_of(key)
    folder = out / "realmusic" / split
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(f"{source.package}:{name}".encode()))
    entries = []
    for index, ((start, x), (width, hf)) in enumerate(zip(found, widths)):
        path = folder / f"{_stem(source, name)}-{index:02d}.wav"
        y = recorded.level(x, rng, -30.0, -14.0)
        recorded.write_wav(path, y, rate)
        entries.append(
            {
                "file": path.relative_to(out).as_posix(),
                "kind": "realmusic",
                "split": split,
                "source": source.package,
                "group": key,
                "piece": piece,
                "recording": name,
                "licence": source.licence,
                "start_s": round(start, 3),
                "duration": round(len(y) / rate, 3),
                "bandwidth_hz": round(width),
                "hf_db": round(hf, 1),
            }
        )
    return entries


def build(out: Path, *, rate: int = 48000, cache: Path | None = None, sources: tuple[MusicSource, ...] = SOURCES) -> list[dict]:
    """Fetch, unpack and cut every source into ``out/realmusic``; its entries join ``out/recorded.json``.

    A finished build (the ``realmusic`` part of ``recorded.json`` at the same rate and recipe) is kept as it is; one of
    an older recipe is built again, and the excerpts it no longer writes are removed."""
    done = recorded.built_part(out, "realmusic", rate)
    if done is not None:
        logger.info("realmusic: already built (%s)", out / "recorded.json")
        return done
    previous = recorded.built_part(out, "realmusic", rate, any_recipe=True) or []
    cache = cache or out / "cache" / "debs"
    entries: list[dict] = []
    for source in sources:
        root = recorded.unpack(source.package, cache, (source.members,))
        for name, files in recordings(source, root).items():
            entries += build_recording(source, name, files, out, rate)
        logger.info("realmusic: %s done, %d excerpts so far", source.package, len(entries))
    recorded.remove_stale(out, previous, entries)
    recorded.save_part(out, "realmusic", rate, entries)
    return entries
