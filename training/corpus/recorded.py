"""Real recordings for the corpus: recorded voices and noises found inside Debian packages.

``rt-data build`` adds them beside the synthetic kinds (``--only recorded``; docs/corpus.md lists
every package, its licence and what it holds)::

    DIR/voices/{train,val,test}/<source>-<speaker>-<n>.wav     real voices, 48 kHz mono PCM_24
    DIR/realnoise/{train,val,test}/<source>-<group>-<n>.wav    real noises and babble of real voices
    DIR/recorded.json                                          every file: source, speaker, split, licence

Packages are fetched with ``apt-get download`` (no root needed) and unpacked with ``dpkg-deb -x``
into ``DIR/cache/debs`` once; a rebuild reuses them. Splits are by speaker or sound family, never
by file (:data:`SPLITS`); a speaker recorded in two packages (Allison Smith reads English and
Spanish for Asterisk) is one group. Short clips of one speaker (letters, syllables, prompts) are
joined with 0.15-0.4 s of silence into utterances of about ``UTTERANCE_SECONDS``, which is what the
training windows and the test items need.

Babble: 4-7 voices of the same split, each at its own level, summed into ``realnoise`` files, so
that the competing-talker noise a model meets in training is made of real voices, and the test
babble of voices training never heard.

The sources reserved for independent evaluation (alsa-utils' voices, the audio inside
pyannote.audio, pysptk and amfm_decompy, wesnoth-1.16-music, and three music21 pieces) are never
read here: :func:`unpack` refuses the reserved packages by name (:data:`RESERVED_PACKAGES`), for
these sources and for the real music of ``realmusic.py``, which shares this module's fetching,
levelling and manifest (``recorded.json`` holds one part per builder, :data:`PARTS`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from rt_enhance.realtime.errors import RtEnhanceError
from rt_enhance.realtime.fileio import atomic_write_text, replacing

logger = logging.getLogger(__name__)

UTTERANCE_SECONDS = 8.0
VOICE_HIGHPASS_HZ = 50.0
#: How each part of ``recorded.json`` makes its files, stored with it: a part built by an older recipe is built again
#: whole (raise a part's number when what it writes changes). ``recorded`` 2 (session 21): each voice clip without its
#: DC offset and high-passed at VOICE_HIGHPASS_HZ, where 1 kept the offsets, whose steps at the clips' cuts (and
#: thumps) held over 10 % of the energy of a third of klettres' validation files: what a model rightly removes, the
#: metrics counted as damage to the voice.
RECIPES: dict[str, int] = {"recorded": 2, "realmusic": 1}
BABBLE_SECONDS = 12.0
PEAK = 0.97
SPLIT_NAMES = ("train", "val", "test")


class RecordedError(RtEnhanceError, RuntimeError):
    """A package could not be fetched or unpacked; one line naming it and what to do."""


@dataclass(frozen=True)
class Source:
    """One Debian package: which of its files are used, how they group into speakers, its licence."""

    package: str
    kind: str  # "voices" or "realnoise"
    pattern: str  # regular expression on the path inside the package
    group: Callable[[str], str]  # path inside the package -> speaker or sound family
    licence: str
    note: str
    members: tuple[str, ...] = ()  # tar wildcards to unpack (a large package: only the part read); () = all
    unique: bool = False  # a file whose bytes an earlier one (by group, then path) already holds is left out
    min_rate: int = 0  # files stored at a lower sample rate are left out (a narrow-band voice among wide ones)

    @property
    def key(self) -> str:
        """``package:kind``, as :func:`build` records which sources a corpus holds."""
        return f"{self.package}:{self.kind}"


def _nth(index: int) -> Callable[[str], str]:
    return lambda rel: rel.split("/")[index]


def _asterisk_group(rel: str) -> str:
    voice = rel.split("/")[4]  # usr/share/asterisk/sounds/en_US_f_Allison/...
    return voice.rsplit("_", 1)[-1].lower()  # the speaker: "allison" reads en_US and es_MX


def _sonic_family(rel: str) -> str:
    return Path(rel).name.split("_")[0]  # ambi, bd, drum, elec, guit, loop, misc, perc, sn, tabla, vinyl


def _hedgewars_family(rel: str) -> str:
    return re.sub(r"[0-9]+$", "", Path(rel).stem).lower() or "misc"


def _sound_family(rel: str) -> str:
    """``crash3.ogg`` and ``crash.ogg`` -> ``crash``; ``waterfall_loop_2.ogg`` -> ``waterfall-loop``."""
    return re.sub(r"[-_ ]*[0-9]+$", "", Path(rel).stem).replace("_", "-").lower() or "misc"


SOURCES: tuple[Source, ...] = (
    Source(
        "klettres-data",
        "voices",
        r"usr/share/klettres/[^/]+/(alpha|syllab)/.*\.ogg$",
        _nth(3),
        "GPL-2+",
        "letters and syllables read by one speaker per language, 44.1 kHz",
    ),
    Source(
        "hedgewars-data",
        "voices",
        r"Data/Sounds/voices/[^/]+/.*\.ogg$",
        lambda r: r.split("/")[-2],
        "GFDL-1.3",
        "acted voice packs (one speaker each), 44.1/48 kHz",
    ),
    Source(
        "fillets-ng-data-nl",
        "voices",
        r"sound/.*/nl/.*\.ogg$",
        lambda r: "nl",
        "GPL-2",
        "acted Dutch dialogue, 22.05 kHz (content below ~10 kHz)",
    ),
    Source(
        "fillets-ng-data-cs",
        "voices",
        r"sound/.*/cs/.*\.ogg$",
        lambda r: "cs",
        "GPL-2",
        "acted Czech dialogue, 22.05 kHz (content below ~10 kHz)",
    ),
    *(
        Source(
            f"asterisk-core-sounds-{lang}-g722",
            "voices",
            r"usr/share/asterisk/sounds/[^/]+/.*\.g722$",
            _asterisk_group,
            licence,
            "telephone prompts by one professional speaker, G.722 at 16 kHz",
        )
        for lang, licence in (
            ("en", "CC-BY-SA-3.0"),
            ("es", "CC-BY-SA-3.0"),
            ("fr", "CC-BY-SA-3.0"),
            ("it", "CC-BY-3.0"),
            ("ru", "CC-BY-3.0"),
        )
    ),
    Source(
        "hedgewars-data",
        "realnoise",
        r"Data/Sounds/[^/]+\.ogg$",
        _hedgewars_family,
        "GFDL-1.3 (Droplet*: CC-BY-SA-3.0)",
        "game sound effects: explosions, impacts, machines, water",
    ),
    Source(
        "sonic-pi-samples",
        "realnoise",
        r"usr/share/sonic-pi/samples/.*\.flac$",
        _sonic_family,
        "CC0 / MIT (per sample, see the package's copyright)",
        "ambiences, drums, percussion, vinyl, loops",
    ),
    Source(
        "supertuxkart-data",
        "realnoise",
        r"usr/share/games/supertuxkart/data/sfx/[^/]+\.ogg$",
        _sound_family,
        "CC0, public domain, CC-BY-3.0, CC-BY-SA-3.0/4.0, GPL-2(+) or zlib per file (the package's copyright file)",
        "game sounds recorded or made from recordings: rain, river, waterfall, thunder, birds, engines, crowd, "
        "radio static, crashes, machines (all training: the test and validation noises stay as they were)",
        members=("./usr/share/games/supertuxkart/data/sfx/*",),
    ),
    Source(
        "lincity-ng-data",
        "realnoise",
        r"usr/share/games/lincity-ng/sounds/[^/]+\.wav$",
        _sound_family,
        "GPL-2+ (the sound effects dual-licensed CC-BY-SA-2.0; Debian uses the GPL)",
        "a city's sounds: traffic, trains, industry, mines, farms, a sports crowd, a market, fire, water, "
        "construction, windmills (all training, as supertuxkart's)",
        members=("./usr/share/games/lincity-ng/sounds/*",),
    ),
    Source(
        "megaglest-data",
        "realnoise",
        r"usr/share/games/megaglest/(tilesets/[^/]+/sounds|data/core/water_sounds|techs/megapack/commondata/sounds)/"
        r"(?![^/]*_(ack|select|die)[0-9]*\.)[^/]+\.(ogg|wav)$",
        _sound_family,
        "CC-BY-SA-3.0",
        "outdoor ambiences (rain, wind, day and night, birds, wolves, farm animals), water, and battle and work "
        "sounds (weapons, hooves, hammering, building); the units' spoken acknowledgements and death cries are "
        "left out (voices are not noise here), and each repeated recording is kept once (all training)",
        members=(
            "./usr/share/games/megaglest/tilesets/*/sounds/*",
            "./usr/share/games/megaglest/data/core/water_sounds/*",
            "./usr/share/games/megaglest/techs/megapack/commondata/sounds/*",
        ),
        unique=True,
    ),
    Source(
        "ktuberling-data",
        "voices",
        r"usr/share/ktuberling/sounds/[^/]+/[^/]+\.(ogg|opus|wav)$",
        _nth(4),
        "GPL-2+",
        "the names of a picture game's objects, one speaker per language (16 languages), 22.05-48 kHz; the 8 kHz "
        "recordings and the Serbian scripts' repeats are left out (all training, as the noises added since session 9)",
        members=("./usr/share/ktuberling/sounds/*",),
        unique=True,
        min_rate=22050,
    ),
)
#: The sources of the first builds, before :func:`build` recorded which it holds: a corpus without that record
#: holds these, and a rebuild adds only the sources after them.
FIRST_SOURCES = tuple(s.key for s in SOURCES[:11])  # the voices, hedgewars' effects and sonic-pi's samples

#: Held-out groups (everything else is ``train``). Speakers are named per source: ``package:group``.
SPLITS: dict[str, str] = {
    **{f"asterisk:{s}": "test" for s in ("allison",)},
    "asterisk:june": "val",
    **{f"klettres-data:{lang}": "test" for lang in ("de", "fr", "ru", "pt_BR")},
    **{f"klettres-data:{lang}": "val" for lang in ("it", "nl")},
    **{f"hedgewars-data:{pack}": "test" for pack in ("British", "Mobster", "Default_uk")},
    **{f"hedgewars-data:{pack}": "val" for pack in ("Pirate", "Singer")},
    **{f"sonic-pi-samples:{family}": "test" for family in ("ambi", "vinyl", "misc")},
    **{f"sonic-pi-samples:{family}": "val" for family in ("elec",)},
}


def group_key(source: Source, group: str) -> str:
    prefix = "asterisk" if source.package.startswith("asterisk-") else source.package
    return f"{prefix}:{group}"


def split_of(key: str) -> str:
    """The split of a speaker or sound family (``package:group``); hedgewars effects by name hash."""
    if key in SPLITS:
        return SPLITS[key]
    if key.startswith("hedgewars-data:") and key.split(":", 1)[1][:1].islower():  # effect families
        return ("train", "train", "train", "train", "train", "train", "train", "val", "test", "test")[zlib.crc32(key.encode()) % 10]
    return "train"


# ----------------------------------------------------------------------------- fetching packages


#: Debian packages reserved for independent evaluation: never fetched, unpacked or read here (the other
#: reserved sources, the audio inside pyannote.audio, pysptk and amfm_decompy and three music21 pieces, are
#: not Debian packages and no source here reads them).
RESERVED_PACKAGES = re.compile(r"^(alsa-utils|wesnoth(-[0-9.]+)?-music|.*(pyannote|pysptk|amfm).*)$")


def refuse_reserved(package: str) -> None:
    """:class:`RecordedError` if ``package`` is reserved for evaluation (:data:`RESERVED_PACKAGES`)."""
    if RESERVED_PACKAGES.match(package):
        raise RecordedError(
            f"{package} is reserved for independent evaluation and is never used for training; remove it from the corpus sources"
        )


def unpack(package: str, cache: Path, members: tuple[str, ...] = ()) -> Path:
    """The package's files under ``cache/<package>`` (downloaded and unpacked on first use).

    ``members``: only the paths matching these ``tar`` wildcards (``./usr/share/.../music/*``) are
    unpacked, which keeps a large game-data package's cache to the part that is read; an unpacked
    package serves any later request for a subset of it, and a request for another part unpacks both."""
    refuse_reserved(package)
    target = cache / package
    marker = target / ".complete"
    if marker.is_file():
        unpacked = marker.read_text().splitlines()[1:]
        if _covers(unpacked, members):
            return target
        if members and unpacked:  # keep what another source unpacked from the same package (its music, say)
            members = tuple(dict.fromkeys((*unpacked, *members)))
    for tool in ("apt-get", "dpkg-deb", "tar"):
        if shutil.which(tool) is None:
            raise RecordedError(
                f"{tool} not found: the recorded sources come from Debian packages (skip them with --only speech,music,noise,rir)"
            )
    deb = _download(package, cache / "debs")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    if members:
        _extract_members(deb, target, members)
    else:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True, capture_output=True)
    marker.write_text("\n".join((deb.name, *members)))
    return target


def _covers(unpacked: list[str], wanted: tuple[str, ...]) -> bool:
    """Whether an unpacking of ``unpacked`` members (none: the whole package) holds ``wanted``."""
    return not unpacked or (bool(wanted) and set(wanted) <= set(unpacked))


def _download(package: str, debs: Path) -> Path:
    """``debs/<package>_*.deb``, fetched with ``apt-get download`` unless it is there."""
    debs.mkdir(parents=True, exist_ok=True)
    for stale in debs.glob(f"{package}_*.deb"):
        if not stale.is_file():  # a link whose file is gone (a cache shared from a cleaned folder): fetch again
            stale.unlink()
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        run = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True, text=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
        if run.returncode or not found:
            last = (run.stderr.strip().splitlines() or ["no .deb written"])[-1]
            raise RecordedError(f"apt-get download {package} failed ({last}); run 'apt-get update' first")
    return found[-1]


def _extract_members(deb: Path, target: Path, members: tuple[str, ...]) -> None:
    """Unpack only ``members`` (tar wildcards) of ``deb`` into ``target``."""
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    assert tar.stdout is not None  # stdout=PIPE
    run = subprocess.run(["tar", "-x", "-C", str(target), "--wildcards", *members], stdin=tar.stdout, capture_output=True, text=True)
    tar.stdout.close()
    if tar.wait() or run.returncode:
        raise RecordedError(
            f"unpacking {', '.join(members)} from {deb.name} failed ({(run.stderr.strip().splitlines() or ['dpkg-deb failed'])[-1]})"
        )


def source_files(source: Source, root: Path) -> dict[str, list[Path]]:
    """The source's audio files by ``package:group`` key, sorted (without repeated recordings where the
    source is ``unique``: a game that ships the same ambience with each of its maps)."""
    groups = files_by(root, source.pattern, lambda rel: group_key(source, source.group(rel)))
    if source.min_rate:
        wide = {k: [f for f in files if sf.info(str(f)).samplerate >= source.min_rate] for k, files in groups.items()}
        groups = {k: files for k, files in wide.items() if files}
    if not source.unique:
        return groups
    seen: set[str] = set()
    kept: dict[str, list[Path]] = {}
    for key, files in sorted(groups.items()):
        for path in files:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                kept.setdefault(key, []).append(path)
    return kept


def files_by(root: Path, pattern: str, key: Callable[[str], str]) -> dict[str, list[Path]]:
    """The files under ``root`` whose path relative to it matches ``pattern`` (a regex searched in the posix path),
    sorted, under ``key(relative path)``."""
    found = re.compile(pattern)
    groups: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and found.search(rel):
            groups.setdefault(key(rel), []).append(path)
    return groups


# ----------------------------------------------------------------------------- audio


def read_mono(path: Path, rate: int) -> np.ndarray:
    """A file as float64 mono ``[n]`` at ``rate`` (G.722 prompts decoded with the ``g722`` package)."""
    if path.suffix == ".g722":
        import G722  # the corpus extra's G.722 decoder (public domain)

        native, x = 16000, np.asarray(G722.G722(16000, 64000).decode(path.read_bytes()), dtype=np.float64) / 32768
    else:
        x, native = sf.read(str(path), dtype="float64", always_2d=True)
        x = x.mean(axis=1)
    return soxr.resample(x, native, rate) if native != rate else x


def without_rumble(x: np.ndarray, rate: int) -> np.ndarray:
    """``x`` without its DC offset and below VOICE_HIGHPASS_HZ (4th-order Butterworth, both ways: no phase change),
    for voices: no voice has energy there, and joining clips with an offset between silences makes steps."""
    from scipy import signal  # the train extra's, as the noise textures'

    x = x - x.mean() if len(x) else x
    if len(x) < 64:  # shorter than the filter's padding: the offset alone
        return x
    return signal.sosfiltfilt(signal.butter(4, VOICE_HIGHPASS_HZ, "highpass", fs=rate, output="sos"), x)


def trim(x: np.ndarray, rate: int, floor_db: float = -50.0) -> np.ndarray:
    """``x`` without its leading and trailing stretches quieter than ``floor_db`` below its loudest 10 ms."""
    hop = max(1, rate // 100)
    frames = len(x) // hop
    if frames < 2:
        return x
    level = np.sqrt(np.mean(x[: frames * hop].reshape(frames, hop) ** 2, axis=1) + 1e-20)
    active = np.flatnonzero(level > level.max() * 10 ** (floor_db / 20))
    return x[active[0] * hop : (active[-1] + 1) * hop]


def utterances(clips: list[np.ndarray], rate: int, rng: np.random.Generator, seconds: float = UTTERANCE_SECONDS) -> list[np.ndarray]:
    """Clips ``[n]`` joined in order with 0.15-0.4 s of silence into pieces of about ``seconds``."""
    out, current, length = [], [], 0
    for clip in clips:
        gap = np.zeros(int(rng.uniform(0.15, 0.4) * rate))
        current += [gap, clip]
        length += len(gap) + len(clip)
        if length >= seconds * rate:
            out.append(np.concatenate(current + [gap]))
            current, length = [], 0
    if current and length >= 0.3 * seconds * rate:
        out.append(np.concatenate(current + [np.zeros(int(0.2 * rate))]))
    return out


def level(x: np.ndarray, rng: np.random.Generator, low_db: float, high_db: float) -> np.ndarray:
    """``x`` at an RMS drawn in ``low_db..high_db`` dBFS, with its peak at most :data:`PEAK`."""
    rms = np.sqrt(np.mean(x**2) + 1e-20)
    y = x * 10 ** (rng.uniform(low_db, high_db) / 20) / rms
    peak = np.max(np.abs(y)) if len(y) else 0.0
    return y * (PEAK / peak) if peak > PEAK else y


def bandwidth_hz(x: np.ndarray, rate: int) -> float:
    """The frequency below which 99.9 % of ``x``'s energy lies (where a low-pass or a codec cut it)."""
    spectrum = np.abs(np.fft.rfft(x[: 20 * rate])) ** 2
    cumulative = np.cumsum(spectrum) / max(spectrum.sum(), 1e-30)
    return float(np.searchsorted(cumulative, 0.999) * rate / (2 * (len(spectrum) - 1)))


# ----------------------------------------------------------------------------- building


def write_wav(path: Path, x: np.ndarray, rate: int) -> None:
    """``x`` ``[n]`` as a mono PCM_24 WAV, written to a temporary file and renamed into place."""
    with replacing(path) as tmp:
        sf.write(str(tmp), x.astype(np.float32), rate, subtype="PCM_24", format="WAV")


def build_group(source: Source, key: str, files: list[Path], out: Path, rate: int) -> list[dict]:
    """One speaker's or family's files written as utterances; returns their manifest entries."""
    split = split_of(key)
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    clean = (lambda x: without_rumble(x, rate)) if source.kind == "voices" else (lambda x: x)
    clips = [c for c in (trim(clean(read_mono(f, rate)), rate) for f in files) if len(c) > 0.05 * rate]
    if source.kind == "voices":
        pieces = utterances(clips, rate, rng)
    else:  # noises: each recording on its own (a clip shorter than 1 s is looped by the pipeline)
        pieces = clips
    folder = out / source.kind / split
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9]+", "-", key.split(":", 1)[1]).strip("-")
    stem = f"{source.package.replace('-data', '').replace('asterisk-core-sounds-', 'asterisk-')}-{name}"
    entries = []
    for index, piece in enumerate(pieces):
        piece = level(piece, rng, -30.0, -18.0) if source.kind == "voices" else level(piece, rng, -32.0, -20.0)
        path = folder / f"{stem}-{index:04d}.wav"
        write_wav(path, piece, rate)
        entries.append(
            {
                "file": path.relative_to(out).as_posix(),
                "kind": source.kind,
                "split": split,
                "source": source.package,
                "group": key,
                "licence": source.licence,
                "duration": round(len(piece) / rate, 3),
                "bandwidth_hz": round(bandwidth_hz(piece, rate)),
            }
        )
    return entries


def build_babble(out: Path, split: str, rate: int, count: int) -> list[dict]:
    """``count`` files of 4-7 real voices of ``split`` talking at once (each at its own level)."""
    voices = sorted((out / "voices" / split).glob("*.wav"))
    if len(voices) < 4:
        return []
    folder = out / "realnoise" / split
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([zlib.crc32(b"babble"), SPLIT_NAMES.index(split)])
    n = int(BABBLE_SECONDS * rate)
    entries = []
    for index in range(count):
        mix = np.zeros(n)
        talkers = rng.choice(len(voices), size=min(len(voices), int(rng.integers(4, 8))), replace=False)
        for t in talkers:
            x, _ = sf.read(str(voices[t]), dtype="float64")
            x = np.tile(x, -(-n // len(x)))[:n]
            mix += np.roll(x, int(rng.integers(n))) * 10 ** (rng.uniform(-6, 0) / 20)
        path = folder / f"babble-real-{index:04d}.wav"
        write_wav(path, level(mix, rng, -28.0, -22.0), rate)
        entries.append(
            {
                "file": path.relative_to(out).as_posix(),
                "kind": "realnoise",
                "split": split,
                "source": "babble of recorded voices",
                "group": f"babble:{split}",
                "licence": "as its voices",
                "duration": BABBLE_SECONDS,
                "talkers": [voices[t].name for t in talkers],
            }
        )
    return entries


#: The parts of ``recorded.json``, each built on its own (``rt-data build --only recorded|realmusic``), and the
#: kinds of file each one writes.
PARTS: dict[str, tuple[str, ...]] = {"recorded": ("voices", "realnoise"), "realmusic": ("realmusic",)}


def built_part(out: Path, part: str, rate: int, *, any_recipe: bool = False) -> list[dict] | None:
    """The entries of ``part`` if ``out/recorded.json`` holds a finished build of it at ``rate`` by its recipe in
    :data:`RECIPES` (or by any, ``any_recipe``), else None.

    A manifest written before the parts existed holds the ``recorded`` part only."""
    manifest = out / "recorded.json"
    if not manifest.is_file():
        return None
    doc = json.loads(manifest.read_text())
    if doc.get("rate") != rate or part not in doc.get("parts", ["recorded"]):
        return None
    if not any_recipe and _recipe(doc, part) != RECIPES[part]:
        return None
    return [e for e in doc["files"] if e["kind"] in PARTS[part]]


def _recipe(doc: dict, part: str) -> int:
    """The recipe that built ``part`` of a ``recorded.json`` document; before recipes were stored per part, the
    ``recorded`` part's stood as ``voice_recipe`` (session 21), and a part without one was built by recipe 1."""
    legacy = doc.get("voice_recipe", 1) if part == "recorded" else 1
    return int(doc.get("recipes", {}).get(part, legacy))


def save_part(out: Path, part: str, rate: int, entries: list[dict], sources: list[str] | None = None) -> None:
    """Write ``part``'s entries, made by its recipe, into ``out/recorded.json``, keeping the other parts built at the
    same rate; ``sources`` (the ``recorded`` part's): the sources it now holds."""
    manifest = out / "recorded.json"
    doc = json.loads(manifest.read_text()) if manifest.is_file() else {}
    kept, parts, recipes = [], [part], {part: RECIPES[part]}
    if doc.get("rate") == rate:
        parts = [p for p in doc.get("parts", ["recorded"]) if p != part] + [part]
        kept = [e for e in doc["files"] if e["kind"] not in PARTS[part]]
        recipes = {**{p: _recipe(doc, p) for p in parts}, part: RECIPES[part]}
    new = {"rate": rate, "parts": parts, "recipes": recipes, "files": kept + entries}
    held = sources if sources is not None else doc.get("sources") if doc.get("rate") == rate else None
    if held is not None:
        new["sources"] = held
    atomic_write_text(manifest, json.dumps(new, indent=1))


def build(out: Path, *, rate: int = 48000, cache: Path | None = None, babble: int = 40) -> list[dict]:
    """Fetch, unpack and write every source into ``out``; ``out/recorded.json`` lists the files.

    A finished build (its part of ``recorded.json`` present at the same rate and by its recipe in :data:`RECIPES`) is
    kept as it is; sources added to :data:`SOURCES` since are built and appended (the babble, made of the voices, stays as it was).
    A build of an older recipe is built again whole, and the files it no longer writes are removed."""
    cache = cache or out / "cache" / "debs"
    done = built_part(out, "recorded", rate)
    previous = built_part(out, "recorded", rate, any_recipe=True) or []
    if done is None and previous:
        logger.info("recorded sources: built by an older recipe; building them again")
    if done is not None:
        held = _held_sources(out)
        missing = [source for source in SOURCES if source.key not in held]
        # a source built again replaces its entries; a manifest that lists a file twice (a corpus grown before
        # session 10 rebuilt hedgewars' and sonic-pi's noises and appended them again) lists it once
        kept = list({e["file"]: e for e in done}.values())
        if not missing:
            if len(kept) != len(done):
                save_part(out, "recorded", rate, kept, sources=[s.key for s in SOURCES])
            logger.info("recorded sources: already built (%s)", out / "recorded.json")
            return kept
        added = _build_sources(missing, out, rate, cache)
        rewritten = {e["file"] for e in added}
        entries = [e for e in kept if e["file"] not in rewritten] + added
        save_part(out, "recorded", rate, entries, sources=[s.key for s in SOURCES])
        return entries
    entries = _build_sources(list(SOURCES), out, rate, cache)
    for split in SPLIT_NAMES:
        share = {"train": 0.8, "val": 0.1, "test": 0.1}[split]
        entries += build_babble(out, split, rate, max(4, int(babble * share)))
    remove_stale(out, previous, entries)
    save_part(out, "recorded", rate, entries, sources=[s.key for s in SOURCES])
    return entries


def remove_stale(out: Path, before: list[dict], after: list[dict]) -> None:
    """Delete the files of ``before`` that a build again no longer writes (a speaker's clips trimmed anew make fewer
    utterances): training and the test sets read the folders, not the manifest."""
    written = {e["file"] for e in after}
    stale = [e["file"] for e in before if e["file"] not in written]
    for name in stale:
        (out / name).unlink(missing_ok=True)
    if stale:
        logger.info("%d file(s) of the earlier build no longer written, removed", len(stale))


def _build_sources(sources: list[Source], out: Path, rate: int, cache: Path) -> list[dict]:
    entries: list[dict] = []
    for source in sources:
        root = unpack(source.package, cache, source.members)
        for key, files in source_files(source, root).items():
            entries += build_group(source, key, files, out, rate)
        logger.info("recorded: %s (%s) done, %d files so far", source.package, source.kind, len(entries))
    return entries


def _held_sources(out: Path) -> set[str]:
    """The sources the ``recorded`` part of ``out/recorded.json`` was built from."""
    doc = json.loads((out / "recorded.json").read_text())
    return set(doc.get("sources", FIRST_SOURCES))


def summary(entries: list[dict]) -> str:
    """Minutes and files per kind and split, one line each."""
    rows: dict[tuple[str, str], tuple[float, int]] = {}
    for e in entries:
        minutes, count = rows.get((e["kind"], e["split"]), (0.0, 0))
        rows[(e["kind"], e["split"])] = (minutes + e["duration"] / 60, count + 1)
    return "\n".join(f"{kind}/{split}: {count} files, {minutes:.1f} min" for (kind, split), (minutes, count) in sorted(rows.items()))
