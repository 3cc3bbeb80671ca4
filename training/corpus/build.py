"""``rt-data build``: the training corpus, built only from what a fresh machine installs from package registries.

::

    rt-data build --out DIR [--hours 1] [--rate 48000] [--seed 0] [--split train|test|val|all] [--workers N]
                  [--only speech,music,noise,rir,recorded,realmusic] [--test-fraction 0.1]
    rt-data summary DIR

Layout (each folder reads as a ``simple`` dataset; the split is already made, so use ``test=0,val=...``)::

    DIR/speech/{train,test}/*.wav   clean synthetic speech (Piper, espeak-ng, flite, festival), 3-20 s
    DIR/music/{train,test}/*.wav    dry FluidSynth renders of music21 scores, 6-20 s
    DIR/noise/{train,val,test}/*.wav  noise textures and TTS babble, 8-16 s
    DIR/rir/{train,val,test}/*.wav    room impulse responses (+ a .json sidecar: direct_index, room, RT60)
    DIR/manifest.json               every file: source, voice/instrument, text/piece, seeds, duration, split, ...
    DIR/cache/music21/              parsed scores (JSON), so each piece is parsed once
    DIR/{voices,realnoise}/{train,val,test}/   real voices and noises from Debian packages (recorded.py)
    DIR/realmusic/{train,val,test}/            real produced music from Debian packages (realmusic.py)
    DIR/recorded.json                          every real file: source, group, split, licence, bandwidth

Audio: 48 kHz (``--rate``) mono WAV, PCM_24; clean and noise files peak at most 0.97.

``--hours`` is the total planned duration of speech, music and noise (shares 50/30/20 %), ``--test-fraction`` of
it in the test split and as much again of noise and rooms in the validation split (``rt-bench quality --split val``
scores checkpoints on real voices of held-out speakers in these noises and rooms, never the test split's; the TTS
voices and renders have no validation split); rooms: 150 per hour (at least one per split). Building is deterministic for a seed
(see items.py) and resumable: a file whose manifest entry has the same cache key is not rebuilt, so a larger
``--hours`` only adds files, and an interrupted build continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from rt_enhance.realtime.errors import RtEnhanceError, error_line
from rt_enhance.realtime.fileio import atomic_write_text, replacing
from rt_enhance.realtime.paths import make_folder
from rt_enhance.training.corpus import music, realmusic, recorded, texts, tts

if TYPE_CHECKING:
    from rt_enhance.training.corpus.items import Item

logger = logging.getLogger(__name__)

RECIPE_VERSION = 1
KINDS = ("speech", "music", "noise", "rir")
#: Kinds taken from real recordings in Debian packages, built on their own (recorded.py, realmusic.py).
REAL_KINDS = ("recorded", "realmusic")
#: The kinds of file those write (``recorded.json`` lists them, with their measured bandwidth).
RECORDED_KINDS = tuple(kind for kinds in recorded.PARTS.values() for kind in kinds)
SPLITS = ("train", "test", "val")
#: The synthetic kinds with a validation split (what the real voices of held-out speakers are scored in).
VAL_KINDS = ("noise", "rir")
SUBTYPE = "PCM_24"
SHARES = {"speech": 0.5, "music": 0.3, "noise": 0.2}
RIRS_PER_HOUR = 150
#: Seconds between manifest saves during a build.
SAVE_EVERY = 20.0


def _items():
    """The item planner and renderer (numpy, scipy's filters): imported when a build runs, not for ``--help``."""
    from rt_enhance.training.corpus import items

    return items


class CorpusError(RtEnhanceError):
    """A user mistake (bad folder, bad argument): one line, non-zero exit."""


@dataclass(frozen=True)
class Recipe:
    """What to build: total ``hours``, sample ``rate``, ``seed``, ``splits``, ``kinds`` and the per-kind ranges."""

    hours: float = 1.0
    rate: int = 48000
    seed: int = 0
    splits: tuple[str, ...] = SPLITS
    kinds: tuple[str, ...] = KINDS
    test_fraction: float = 0.1
    ranges: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {"speech": (3.0, 15.0), "music": (6.0, 18.0), "noise": (8.0, 16.0), "rir": (0.2, 1.0)}
    )

    def budget(self, kind: str, split: str) -> float:
        """Planned seconds of ``kind`` in ``split`` (for ``rir``: the number of rooms)."""
        share = 1.0 - self.test_fraction if split == "train" else self.test_fraction
        if kind == "rir":
            return max(1.0, math.ceil(self.hours * RIRS_PER_HOUR * share))
        return self.hours * 3600.0 * SHARES[kind] * share


# ---------------------------------------------------------------------------------------------------------------
# Plan
# ---------------------------------------------------------------------------------------------------------------


def plan_kind(recipe: Recipe, kind: str, split: str) -> list[Item]:
    """Items 0, 1, ... of ``kind`` in ``split`` until their planned seconds (or count) reach the budget.

    Item ``i`` never depends on the budget, so a larger ``--hours`` plans the same items and more."""
    budget, total = recipe.budget(kind, split), 0.0
    items: list[Item] = []
    while total < budget or not items:
        item = _items().plan_item(kind, split, len(items), recipe.seed, recipe.ranges)
        items.append(item)
        total += 1.0 if kind == "rir" else item.planned_seconds
    return items


def plan(recipe: Recipe) -> list[Item]:
    """Every item of the recipe, kind by kind, split by split."""
    pairs = [(kind, split) for kind in recipe.kinds for split in recipe.splits if split != "val" or kind in VAL_KINDS]
    return [item for kind, split in pairs for item in plan_kind(recipe, kind, split)]


# ---------------------------------------------------------------------------------------------------------------
# Tools and manifest
# ---------------------------------------------------------------------------------------------------------------


def tool_versions() -> dict[str, str]:
    """Versions of every engine and tool the recipe can use (``missing`` where absent)."""
    from importlib.metadata import PackageNotFoundError, version

    def dist(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "missing"

    tools = {engine: tts.version(engine) for engine in tts.ENGINES}
    tools.update(
        music=music.version(),
        pyroomacoustics=dist("pyroomacoustics"),
        numpy=dist("numpy"),
        scipy=dist("scipy"),
        soxr=dist("soxr"),
        words=f"{texts.vocabulary('train').source}",
    )
    return tools


def missing_tools() -> dict[str, str]:
    """Engine or tool -> one line saying what to install, for those that cannot run here."""
    out = {e: r for e in tts.ENGINES if (r := tts.missing(e))}
    if reason := music.missing():
        out["music"] = reason
    try:
        import pyroomacoustics  # noqa: F401
    except ImportError:
        out["pyroomacoustics"] = "rooms: pyroomacoustics is not installed (pip install pyroomacoustics)"
    return out


def load_manifest(out: Path) -> dict:
    """The corpus's manifest, or a new empty one."""
    path = out / "manifest.json"
    if not path.exists():
        return {"files": {}}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise CorpusError(f"{path} is unreadable ({err}); move it away to rebuild the manifest") from err


def save_manifest(out: Path, manifest: dict) -> None:
    """Write the manifest atomically (temp file + rename)."""
    manifest["files"] = dict(sorted(manifest["files"].items()))
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")


def _check_compatible(manifest: dict, recipe: Recipe, out: Path) -> None:
    for key, value in (("seed", recipe.seed), ("rate", recipe.rate)):
        if key in manifest and manifest[key] != value:
            raise CorpusError(f"{out} was built with {key} {manifest[key]}, not {value}: use another --out folder")


def is_cached(item: Item, out: Path, manifest: dict, key: str) -> bool:
    """Whether the item's file exists with a manifest entry of the same cache key."""
    entry = manifest["files"].get(item.name)
    return bool(entry) and entry.get("key") == key and (out / item.name).is_file()


# ---------------------------------------------------------------------------------------------------------------
# Building one item (runs in a worker process)
# ---------------------------------------------------------------------------------------------------------------


def _write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    with replacing(path) as tmp:
        sf.write(str(tmp), audio.astype(np.float32), rate, subtype=SUBTYPE, format="WAV")


def _summary(item: Item) -> dict:
    """The manifest's headline fields for an item (the full parameters follow under ``params``)."""
    p = item.params
    if item.kind == "speech":
        return {"source": p["engine"], "voice": p["voice"], "speaker": p["speaker"], "text": p["text"]}
    if item.kind == "music":
        return {"source": "music21+fluidsynth", "piece": p["piece"]}
    if item.kind == "noise":
        return {"source": "tts_babble" if p["noise"] == "tts_babble" else "synthetic", "noise": p["noise"]}
    return {"source": "pyroomacoustics"}


def build_item(item: Item, out: str, seed: int, rate: int, key: str) -> dict:
    """Render and write one item; its manifest entry (or ``{"error": ...}`` when it failed)."""
    folder, started = Path(out), time.monotonic()
    try:
        audio, info = _items().render(item, seed, rate, folder / "cache")
        if not np.all(np.isfinite(audio)) or not np.any(audio):
            raise ValueError("rendered audio is silent or not finite")
    except Exception as err:  # one bad score or engine hiccup must not stop a long build; reported by main
        return {"error": f"{item.name}: {type(err).__name__}: {err}"}
    _write_wav(folder / item.name, audio, rate)
    if item.kind == "rir":
        sidecar = folder / item.name.replace(".wav", ".json")
        sidecar.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    rms = math.sqrt(float(np.mean(np.square(audio))))
    extra = {"instruments": info["instruments"]} if item.kind == "music" else {}
    return {
        **_summary(item),
        **extra,
        "kind": item.kind,
        "split": item.split,
        "index": item.index,
        "seed": item.seed,
        "duration": round(len(audio) / rate, 4),
        "peak": round(float(np.max(np.abs(audio))), 5),
        "rms_dbfs": round(20 * math.log10(max(rms, 1e-12)), 2),
        "params": item.params,
        "info": info,
        "key": key,
        "render_seconds": round(time.monotonic() - started, 3),
    }


# ---------------------------------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class BuildReport:
    """Counts of a build."""

    built: int = 0
    cached: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    audio_seconds: float = 0.0


def _runnable(items: list[Item], missing: dict[str, str], report: BuildReport) -> list[Item]:
    """Items whose engines are all here; one warning per missing engine with what to install."""
    out: list[Item] = []
    counts: dict[str, int] = {}
    for item in items:
        absent = [n for n in item.needs if n in missing]
        for name in absent:
            counts[name] = counts.get(name, 0) + 1
        if absent:
            report.skipped += 1
        else:
            out.append(item)
    for name, count in sorted(counts.items()):
        logger.warning("skipping %d item(s) that need %s", count, missing[name])
    return out


def _progress(total: int):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="file", disable=None, desc="rt-data build")


def _run_pool(todo: list[tuple[Item, str]], out: Path, recipe: Recipe, workers: int, manifest: dict, report: BuildReport) -> None:
    """Build ``todo`` (item, key) on ``workers`` processes, at most two items per worker in flight (so an interrupt
    waits for a few files only), saving the manifest every SAVE_EVERY seconds and on the way out."""
    queue = iter(todo)
    pending: dict[Future, Item] = {}
    bar, last_save = _progress(len(todo)), time.monotonic()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        try:
            while _top_up(pool, queue, pending, 2 * workers, out, recipe) or pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    _record(pending.pop(future), future.result(), manifest, report)
                    if bar is not None:
                        bar.update(1)
                if time.monotonic() - last_save > SAVE_EVERY:
                    save_manifest(out, manifest)
                    last_save = time.monotonic()
        except KeyboardInterrupt:
            _finish_running(pending, manifest, report)
            raise
        finally:
            if bar is not None:
                bar.close()
            save_manifest(out, manifest)


def _finish_running(pending: dict[Future, Item], manifest: dict, report: BuildReport) -> None:
    """On an interrupt: cancel the queued items, wait for the running ones and record them (a second interrupt
    abandons them; their files are rebuilt next time)."""
    running = [future for future in pending if not future.cancel()]
    if running:
        logger.warning("interrupted: finishing %d file(s) in progress (interrupt again to abandon them)", len(running))
    done, _ = wait(running)
    for future in done:
        if future.exception() is None:
            _record(pending[future], future.result(), manifest, report)


def _top_up(pool: ProcessPoolExecutor, queue, pending: dict, limit: int, out: Path, recipe: Recipe) -> bool:
    """Submit items from ``queue`` until ``limit`` are in flight; whether any was submitted."""
    submitted = False
    while len(pending) < limit:
        nxt = next(queue, None)
        if nxt is None:
            break
        item, key = nxt
        pending[pool.submit(build_item, item, str(out), recipe.seed, recipe.rate, key)] = item
        submitted = True
    return submitted


def _record(item: Item, entry: dict, manifest: dict, report: BuildReport) -> None:
    if "error" in entry:
        report.failed.append(entry["error"])
        logger.warning("failed: %s", entry["error"])
        return
    manifest["files"][item.name] = entry
    report.built += 1
    report.audio_seconds += entry["duration"] if item.kind != "rir" else 0.0
    logger.debug("built %s (%.1f s)", item.name, entry["duration"])


def build(out: Path, recipe: Recipe, workers: int = 1) -> BuildReport:
    """Build (or complete) the corpus of ``recipe`` under ``out``; returns what was done."""
    started, report = time.monotonic(), BuildReport()
    make_folder(out)
    manifest = load_manifest(out)
    _check_compatible(manifest, recipe, out)
    tools = tool_versions()
    manifest.update(
        recipe_version=RECIPE_VERSION,
        seed=recipe.seed,
        rate=recipe.rate,
        format=f"WAV {SUBTYPE} mono",
        tools=tools,
        last_build={
            "hours": recipe.hours,
            "splits": list(recipe.splits),
            "kinds": list(recipe.kinds),
            "test_fraction": recipe.test_fraction,
            "ranges": recipe.ranges,
        },
    )
    items = _runnable(plan(recipe), missing_tools(), report)
    todo = []
    for item in items:
        key = item.key(recipe.rate, tools, RECIPE_VERSION)
        if is_cached(item, out, manifest, key):
            report.cached += 1
        else:
            todo.append((item, key))
    logger.info("%d file(s) to build, %d cached, %d skipped, %d worker(s)", len(todo), report.cached, report.skipped, workers)
    _run_pool(todo, out, recipe, workers, manifest, report)
    report.seconds = time.monotonic() - started
    return report


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------


def _csv_choice(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise CorpusError(f"--{what}: unknown {', '.join(bad) or 'empty list'}; choose from {','.join(allowed)}")
    return names


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """The frozen recipe of the command line (checks ranges)."""
    if args.hours <= 0:
        raise CorpusError(f"--hours must be positive, got {args.hours}")
    if not 0.0 < args.test_fraction < 1.0:
        raise CorpusError(f"--test-fraction must lie in (0, 1), got {args.test_fraction}")
    if args.rate < 16000:
        raise CorpusError(f"--rate must be at least 16000, got {args.rate}")
    splits = SPLITS if args.split == "all" else (args.split,)
    return Recipe(
        hours=args.hours,
        rate=args.rate,
        seed=args.seed,
        splits=splits,
        kinds=_csv_choice(args.only, KINDS, "only"),
        test_fraction=args.test_fraction,
    )


def select(out: Path, kind: str, split: str, *, min_bandwidth_hz: float = 0.0) -> list[Path]:
    """Files of ``kind`` in ``split`` whose content reaches ``min_bandwidth_hz`` (the measured bandwidth: the
    manifest's ``info.bandwidth_hz`` for the synthetic kinds, ``recorded.json``'s ``bandwidth_hz`` for the
    recorded ones; a 16 kHz flite voice has 8 kHz), sorted. For bandwidth-extension targets, which must not be
    band-limited themselves."""
    manifest = load_manifest(out)["files"]
    found = [(name, e["info"].get("bandwidth_hz", 0.0)) for name, e in manifest.items() if e["kind"] == kind and e["split"] == split]
    recorded_json = out / "recorded.json"
    if kind in RECORDED_KINDS and recorded_json.is_file():
        try:
            entries = json.loads(recorded_json.read_text(encoding="utf-8"))["files"]
        except (OSError, json.JSONDecodeError, KeyError) as err:
            raise CorpusError(f"{recorded_json} is unreadable ({err}); rebuild it with rt-data build --only recorded") from err
        found += [(e["file"], e.get("bandwidth_hz") or 0.0) for e in entries if e["kind"] == kind and e["split"] == split]
    return sorted(out / name for name, width in found if width >= min_bandwidth_hz)


def link_wide(out: Path, kinds: tuple[str, ...], split: str, min_bandwidth_hz: float, into: Path) -> list[Path]:
    """Links in ``into`` to the files of ``kinds`` in ``split`` whose content reaches ``min_bandwidth_hz``
    (:func:`select`); links to anything else there are removed, so the folder is exactly the selection."""
    chosen = [path for kind in kinds for path in select(out, kind, split, min_bandwidth_hz=min_bandwidth_hz)]
    if not chosen:
        raise CorpusError(
            f"{out}: no {'/'.join(kinds)} file of the {split} split reaches {min_bandwidth_hz:.0f} Hz; build them first (rt-data build)"
        )
    into.mkdir(parents=True, exist_ok=True)
    wanted = {f"{path.parent.parent.name}-{path.name}": path.resolve() for path in chosen}
    for old in into.iterdir():
        if old.is_symlink() and old.name not in wanted:
            old.unlink()
    for name, target in wanted.items():
        link = into / name
        if not (link.is_symlink() and link.resolve() == target):
            link.unlink(missing_ok=True)
            link.symlink_to(target)
    return [into / name for name in wanted]


def summarise(out: Path) -> str:
    """Hours and file counts per kind and split, from the manifest."""
    files = load_manifest(out)["files"]
    if not files:
        raise CorpusError(f"{out} has no manifest.json entries: build it first (rt-data build --out {out})")
    lines = []
    for kind in KINDS:
        for split in SPLITS:
            entries = [e for e in files.values() if e["kind"] == kind and e["split"] == split]
            if entries:
                hours = sum(e["duration"] for e in entries) / 3600
                lines.append(f"{kind:7s} {split:5s} {len(entries):6d} files  {hours:7.3f} h")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rt-data", description="Build the synthetic training corpus.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build or grow a corpus folder")
    b.add_argument("--out", required=True, type=Path, help="corpus folder (created)")
    b.add_argument("--hours", type=float, default=1.0, help="speech+music+noise hours over both splits (1)")
    b.add_argument("--rate", type=int, default=48000, help="sample rate in Hz (48000)")
    b.add_argument("--seed", type=int, default=0, help="recipe seed (0)")
    b.add_argument("--split", choices=(*SPLITS, "all"), default="all", help="which split(s) (all; val: noise and rooms only)")
    b.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (one per core)")
    b.add_argument(
        "--only",
        default=",".join(KINDS + REAL_KINDS),
        help="kinds to build, comma-separated: speech, music, noise, rir (synthetic), recorded "
        "(real voices and noises from Debian packages: DIR/voices, DIR/realnoise) and realmusic "
        "(real produced music from Debian packages: DIR/realmusic) (all)",
    )
    b.add_argument("--test-fraction", type=float, default=0.1, help="share of --hours in the test split (0.1)")
    b.add_argument("-v", "--verbose", action="store_true", help="log every file")
    s = sub.add_parser("summary", help="hours and files per kind and split")
    s.add_argument("out", type=Path)
    w = sub.add_parser("wide", help="a folder of links to the full-band files of a split (bandwidth-extension targets)")
    w.add_argument("out", type=Path, help="corpus folder (rt-data build)")
    w.add_argument("--into", required=True, type=Path, help="folder of links to make (its other links are removed)")
    w.add_argument("--kinds", default="voices,speech", help="kinds to take, comma-separated (voices,speech)")
    w.add_argument("--split", choices=SPLITS, default="train", help="split (train)")
    w.add_argument("--min-bandwidth", type=float, default=14000.0, help="measured content bandwidth in Hz at least (14000)")
    return parser


def _build_real(kind: str, out: Path, rate: int) -> None:
    """The real voices and noises (``recorded``: training/corpus/recorded.py) or the real music
    (``realmusic``: training/corpus/realmusic.py), fetched from Debian packages once."""
    start, cpu = time.perf_counter(), time.process_time()
    entries = (recorded if kind == "recorded" else realmusic).build(out, rate=rate)
    print(
        f"{kind}: {len(entries)} file(s) in {time.perf_counter() - start:.0f} s "
        f"({time.process_time() - cpu:.0f} s of CPU)\n{recorded.summary(entries)}"
    )


def _report(report: BuildReport) -> None:
    print(
        f"built {report.built} file(s) ({report.audio_seconds / 3600:.3f} h of audio) in {report.seconds:.1f} s; "
        f"{report.cached} cached, {report.skipped} skipped (missing engines), {len(report.failed)} failed"
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rt-data``. SIGTERM is handled like Ctrl-C: the manifest is saved before exiting."""
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "summary":
            print(summarise(args.out))
            return 0
        if args.command == "wide":
            kinds = _csv_choice(args.kinds, KINDS + RECORDED_KINDS, "kinds")
            links = link_wide(args.out, kinds, args.split, args.min_bandwidth, args.into)
            print(f"{args.into}: {len(links)} file(s) of {','.join(kinds)} ({args.split}) reaching {args.min_bandwidth:.0f} Hz")
            return 0
        if args.workers < 1:
            raise CorpusError(f"--workers must be at least 1, got {args.workers}")
        kinds = _csv_choice(args.only, KINDS + REAL_KINDS, "only")
        if args.split == "val" and not set(kinds) - {"speech", "music"}:
            raise CorpusError(f"--split val: {','.join(kinds)} have no validation split; it holds noise and rir (and the real kinds)")
        args.only = ",".join(k for k in kinds if k not in REAL_KINDS)
        make_folder(args.out)  # before anything is fetched or built: a folder that cannot be is one line
        report = build(args.out, recipe_from_args(args), workers=args.workers) if args.only else None
        for kind in (k for k in REAL_KINDS if k in kinds):
            _build_real(kind, args.out, args.rate)
    except RtEnhanceError as err:
        print(error_line("rt-data", err, label=""), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rt-data: interrupted; the manifest is saved, run the same command again to resume", file=sys.stderr)
        return 130
    if report is None:
        return 0
    _report(report)
    return 1 if report.failed and not report.built and not report.cached else 0


if __name__ == "__main__":
    sys.exit(main())
