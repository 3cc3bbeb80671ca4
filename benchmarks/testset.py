"""The quality test set: held-out audio from a corpus's ``test`` splits, degraded per task.

Everything comes from ``CORPUS/{speech,music,noise,rir}/test`` (the corpus layout of
``docs/corpus.md``): voices, texts, pieces, rooms and noise seeds that training never sees. The
set is deterministic from ``seed``: item ``i`` of task ``t`` is drawn from
``default_rng([seed, crc32(t), i])`` (source file, crop, noise stretch, room).

The degradations are the training pipeline's own steps (:mod:`rt_enhance.training.degrade`):
``Noise`` (the SNR over the item, from one file of ``noise/test``, ``noise/val`` with ``--split val``),
``RirFiles`` (one room of ``rir/test`` or ``rir/val``, direct-path aligned, its natural direct-to-reverberant ratio), ``RirSimulate``
(only when no test room is near the wanted RT60) and ``Lowpass`` (zero phase). The reference is
always the clean, undegraded crop, time aligned with the degraded one.

Tasks (:data:`TASKS`): noise at 0/5/10 dB (speech; the noise kind cycles over the test noises),
reverberation at RT60 0.3/0.5/0.8 s (speech; test rooms whose measured RT60 is within
``RT60_TOLERANCE``), bandwidth extension 2x/4x (low-pass at 12 / 6 kHz: music, plus speech whose
recorded ``info.bandwidth_hz`` is above the cutoff; most TTS speech stops at 8-11 kHz), ``joint``
(a 0.3-0.8 s room, noise at 5 dB, 4x low-pass), clean speech, clean band-limited speech (low-pass
at 4 kHz, scored against the full clean), clean music, and music in noise at 10 dB.

On real recordings (``rt-data``'s ``recorded.json``, from the split ``recorded_split`` names:
``test`` to report, ``val`` to choose checkpoints, ``train`` to see how well a model fits what it learnt from (a
diagnostic: a model that scores no better on its own training speakers and noises than on held-out ones underfits);
with ``val`` or ``train`` the synthetic noises and rooms come from that split too, and the tasks on TTS voices and
renders, which have only a test split, are refused), the task sets of :data:`GROUPS`: ``real``
(held-out speakers in real and synthetic noise, clean and band-limited), ``realrooms`` (the same
speakers in the test rooms, RT60 0.3 / 0.5 / 0.8 s: issue 17's dereverberation) and ``realmusic``
(held-out pieces of produced music low-passed at 12 / 6 kHz, the same ``Lowpass`` as ``bwe-2x`` /
``bwe-4x``, and full band untouched); their items take the speakers or pieces in turn.

Written under ``OUT``: ``items/<task>/<task>-<i>.clean.wav`` and ``.degraded.wav`` (48 kHz mono,
32-bit float WAV, for listening) and ``testset.json`` (every item's sources and parameters).
"""

from __future__ import annotations

import json
import logging
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from rt_enhance.realtime.errors import RtEnhanceError

logger = logging.getLogger(__name__)

RATE = 48000
RT60_TOLERANCE = 0.08  # s: a test room counts as "RT60 x" within this distance of the wanted range
PEAK = 0.99  # items whose degraded or clean peak passes this are scaled down together


class TestSetError(RtEnhanceError):
    """The corpus cannot give this test set (a folder missing, no eligible file); one line."""


@dataclass(frozen=True)
class Task:
    """One degradation condition. ``content``: ``speech``, ``music`` or ``bwe`` (music and wide speech)."""

    name: str
    content: str
    description: str
    snr_db: float | None = None
    rt60: tuple[float, float] | None = None
    lowpass_hz: float | None = None
    recorded: bool = False  # real recordings of rt-data's recorded.json, from the split asked for
    pool: str = "voices"  # recorded: the kind its clean items come from (voices: with real noises too)
    wide_hz: float = 0.0  # recorded with a low-pass: only sources whose content reaches this (else 1.05 x the low-pass)
    group: str = "real"  # recorded: its task set (:data:`GROUPS`, ``rt-bench quality --tasks GROUP``)


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("noise-0db", "speech", "speech + noise at 0 dB", snr_db=0.0),
        Task("noise-5db", "speech", "speech + noise at 5 dB", snr_db=5.0),
        Task("noise-10db", "speech", "speech + noise at 10 dB", snr_db=10.0),
        Task("reverb-0.3", "speech", "speech in a test room, RT60 ~0.3 s", rt60=(0.3, 0.3)),
        Task("reverb-0.5", "speech", "speech in a test room, RT60 ~0.5 s", rt60=(0.5, 0.5)),
        Task("reverb-0.8", "speech", "speech in a test room, RT60 ~0.8 s", rt60=(0.8, 0.8)),
        Task("bwe-2x", "bwe", "low-pass 12 kHz (music; speech wider than 12 kHz)", lowpass_hz=12000.0),
        Task("bwe-4x", "bwe", "low-pass 6 kHz (music; speech wider than 6 kHz)", lowpass_hz=6000.0),
        Task(
            "joint",
            "speech",
            "room RT60 0.3-0.8 s, then noise at 5 dB, then low-pass 6 kHz",
            snr_db=5.0,
            rt60=(0.3, 0.8),
            lowpass_hz=6000.0,
        ),
        Task("clean-speech", "speech", "clean speech, untouched"),
        Task("clean-bandlimited-speech", "speech", "clean speech low-passed at 4 kHz (reference: unfiltered)", lowpass_hz=4000.0),
        Task("clean-music", "music", "clean music, untouched"),
        Task("music-noise-10db", "music", "music + noise at 10 dB", snr_db=10.0),
        Task("real-noise-0db", "speech", "real voices + real or synthetic noise at 0 dB", snr_db=0.0, recorded=True),
        Task("real-noise-5db", "speech", "real voices + real or synthetic noise at 5 dB", snr_db=5.0, recorded=True),
        Task("real-noise-10db", "speech", "real voices + real or synthetic noise at 10 dB", snr_db=10.0, recorded=True),
        Task("real-clean-speech", "speech", "real voices, untouched", recorded=True),
        Task(
            "real-clean-bandlimited-speech",
            "speech",
            "real voices low-passed at 4 kHz (reference: unfiltered)",
            lowpass_hz=4000.0,
            recorded=True,
        ),
        Task(
            "real-bwe-2x",
            "speech",
            "real full-band voices (content above 14 kHz) low-passed at 12 kHz",
            lowpass_hz=12000.0,
            recorded=True,
            wide_hz=14000.0,
            group="realbwe",
        ),
        Task(
            "real-bwe-4x",
            "speech",
            "real full-band voices (content above 14 kHz) low-passed at 6 kHz",
            lowpass_hz=6000.0,
            recorded=True,
            wide_hz=14000.0,
            group="realbwe",
        ),
        Task(
            "realmusic-bwe-2x",
            "music",
            "real produced music low-passed at 12 kHz",
            lowpass_hz=12000.0,
            recorded=True,
            pool="realmusic",
            group="realmusic",
        ),
        Task(
            "realmusic-bwe-4x",
            "music",
            "real produced music low-passed at 6 kHz",
            lowpass_hz=6000.0,
            recorded=True,
            pool="realmusic",
            group="realmusic",
        ),
        Task("realmusic-clean", "music", "real produced music, full band, untouched", recorded=True, pool="realmusic", group="realmusic"),
        Task("real-reverb-0.3", "speech", "real voices in a test room, RT60 ~0.3 s", rt60=(0.3, 0.3), recorded=True, group="realrooms"),
        Task("real-reverb-0.5", "speech", "real voices in a test room, RT60 ~0.5 s", rt60=(0.5, 0.5), recorded=True, group="realrooms"),
        Task("real-reverb-0.8", "speech", "real voices in a test room, RT60 ~0.8 s", rt60=(0.8, 0.8), recorded=True, group="realrooms"),
    )
}
#: Task sets by name (``rt-bench quality --tasks real``): the tasks on real recorded voices, and on real
#: produced music.
GROUPS: dict[str, tuple[str, ...]] = {
    group: tuple(name for name, task in TASKS.items() if task.recorded and task.group == group)
    for group in ("real", "realmusic", "realrooms", "realbwe")
}
REAL_TASKS = GROUPS["real"]


@dataclass(frozen=True)
class TestItem:
    """One test item on disk: ``clean`` and ``degraded`` WAV paths, 48 kHz mono, same length."""

    task: str
    index: int
    name: str
    content: str  # "speech" or "music": what this item is (PESQ/STOI only for speech)
    clean: str
    degraded: str
    band_limit_hz: float | None
    sources: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Corpus:
    """The test files of a corpus folder, with what the manifest (or the RIR sidecars) says of them."""

    root: Path
    entries: dict[str, dict[str, Any]]  # "kind/test/name.wav" -> manifest entry (may be empty)

    @classmethod
    def open(cls, root: str | Path, recorded_split: str = "test") -> Corpus:
        """The corpus's test files; the recorded kinds (``voices``, ``realnoise``, ``realmusic``) from
        ``recorded_split`` (``val`` selects checkpoints on held-out speakers and pieces that the report
        never uses; ``train`` measures the fit to the training material), and with ``val`` or ``train`` the
        synthetic noises and rooms from that split."""
        root = Path(root).expanduser()
        if not (root / "speech" / "test").is_dir():
            raise TestSetError(f"{root}: no speech/test folder; build a corpus with rt-data build --out {root} --split test")
        synthetic = recorded_split if recorded_split in ("val", "train") else "test"
        if synthetic != "test" and not (root / "noise" / synthetic).is_dir():
            raise TestSetError(
                f"{root}: no noise/{synthetic} folder for --split {synthetic}; build it with rt-data build --out {root} --split {synthetic}"
            )
        manifest = root / "manifest.json"
        files = json.loads(manifest.read_text())["files"] if manifest.is_file() else {}
        recorded = root / "recorded.json"
        for entry in json.loads(recorded.read_text())["files"] if recorded.is_file() else ():
            files[entry["file"]] = {**entry, "info": {"bandwidth_hz": entry.get("bandwidth_hz")}}
        entries = {}
        for kind, split in (
            ("speech", "test"),
            ("music", "test"),
            ("noise", synthetic),
            ("rir", synthetic),
            ("voices", recorded_split),
            ("realnoise", recorded_split),
            ("realmusic", recorded_split),
        ):
            for path in sorted((root / kind / split).glob("*.wav")) if (root / kind / split).is_dir() else ():
                key = f"{kind}/{split}/{path.name}"
                entries[key] = dict(files.get(key, {}))
                if kind == "rir" and "rt60_measured" not in entries[key].get("info", {}):
                    entries[key]["info"] = _sidecar(path)
        return cls(root, entries)

    def files(self, kind: str) -> list[str]:
        return sorted(k for k in self.entries if k.startswith(f"{kind}/"))

    def info(self, key: str) -> dict[str, Any]:
        return self.entries[key].get("info", {})

    def path(self, key: str) -> Path:
        return self.root / key


def _sidecar(wav: Path) -> dict[str, Any]:
    side = wav.with_suffix(".json")
    return json.loads(side.read_text()) if side.is_file() else {}


# ----------------------------------------------------------------------------- choosing sources


def item_rng(seed: int, task: str, index: int | None = None) -> np.random.Generator:
    """The generator of item ``index`` of ``task`` (``None``: the task's own, which orders its sources)."""
    return np.random.default_rng([seed, zlib.crc32(task.encode())] + ([] if index is None else [index]))


def clean_pool(corpus: Corpus, task: Task, rng: np.random.Generator) -> list[str]:
    """The task's clean source files in a seeded order (bwe: music and wide speech interleaved; real
    recordings: one speaker or piece after another, so a few items already hear several, and with a
    low-pass only those wider than it)."""
    if task.recorded:
        files = corpus.files(task.pool)
        if task.lowpass_hz is not None:
            reach = max(task.wide_hz, 1.05 * task.lowpass_hz)
            files = [k for k in files if (corpus.info(k).get("bandwidth_hz") or 0.0) > reach]
        return _round_robin(corpus, files, rng)
    if task.content != "bwe":
        pool = corpus.files(task.content)
        return [pool[i] for i in rng.permutation(len(pool))]
    assert task.lowpass_hz is not None  # every bwe task has its low-pass
    music = [corpus.files("music")[i] for i in rng.permutation(len(corpus.files("music")))]
    wide = [k for k in corpus.files("speech") if corpus.info(k).get("bandwidth_hz", 0.0) > 1.05 * task.lowpass_hz]
    wide = [wide[i] for i in rng.permutation(len(wide))]
    mixed = [f for pair in zip(music, wide) for f in pair]
    return mixed + music[len(wide) :] + wide[len(music) :]


def _round_robin(corpus: Corpus, files: list[str], rng: np.random.Generator) -> list[str]:
    """``files`` shuffled within their groups (speaker or family), then taken one group at a time."""
    groups: dict[str, list[str]] = {}
    for key in files:
        groups.setdefault(corpus.entries[key].get("group", key), []).append(key)
    queues = [[g[i] for i in rng.permutation(len(g))] for _, g in sorted(groups.items())]
    queues = [queues[i] for i in rng.permutation(len(queues))]
    return [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]


def noise_kind(corpus: Corpus, key: str) -> str:
    """A noise file's kind: the generator of a synthetic one, the source of a recorded one (babble,
    game effects, or a sample family)."""
    entry = corpus.entries[key]
    if key.startswith("realnoise/"):
        group = entry.get("group", "recorded")
        return "real babble" if group.startswith("babble") else f"real {group.split(':')[0].split('-')[0]}"
    return entry.get("noise", Path(key).stem)


def noise_for(corpus: Corpus, index: int, task: Task) -> str:
    """A noise file of the ``index``-th kind (kinds cycle; the task name shifts the cycle). Tasks on
    real voices alternate real noises (babble, effects, samples) with synthetic ones."""
    files = corpus.files("noise")
    real = corpus.files("realnoise") if task.recorded else []
    if not files and not real:
        raise TestSetError(f"{corpus.root}: no noise files for task {task.name} (noise/test, or noise/val with --split val)")
    kinds = sorted({noise_kind(corpus, f) for f in files})
    real_kinds = sorted({noise_kind(corpus, f) for f in real})
    if real_kinds:  # real and synthetic in turn
        kinds = [k for pair in zip(real_kinds * len(kinds), kinds * len(real_kinds)) for k in pair][: 2 * max(len(kinds), len(real_kinds))]
    shift = zlib.crc32(task.name.encode())
    kind = kinds[(index + shift) % len(kinds)]
    matching = [f for f in files + real if noise_kind(corpus, f) == kind]
    return matching[(index // len(kinds) + shift) % len(matching)]


def rooms_for(corpus: Corpus, rt60: tuple[float, float]) -> list[str]:
    """Test rooms whose measured RT60 lies in ``rt60`` (a range), or within RT60_TOLERANCE of it (one
    value), nearest first."""

    def distance(key: str) -> float:
        t = corpus.info(key).get("rt60_measured")
        return float("inf") if t is None else max(rt60[0] - t, t - rt60[1], 0.0)

    tolerance = RT60_TOLERANCE if rt60[0] == rt60[1] else 0.0
    near = [k for k in corpus.files("rir") if distance(k) <= tolerance]
    return sorted(near, key=lambda k: (distance(k), k))


def drr_db(path: Path) -> float:
    """Direct-to-reverberant ratio (dB) of a room response: +-2.5 ms around its largest tap against
    the rest (the reading of ``rir DIR DRR_MIN DRR_MAX``)."""
    rir, rate = sf.read(str(path), dtype="float64", always_2d=True)
    rir = rir[:, 0]
    direct, half = int(np.argmax(np.abs(rir))), int(0.0025 * rate)
    near = np.zeros(len(rir), bool)
    near[max(direct - half, 0) : direct + half + 1] = True
    return float(10 * np.log10(np.sum(rir[near] ** 2) / max(np.sum(rir[~near] ** 2), 1e-30)))


# ----------------------------------------------------------------------------- building items


def read_crop(path: Path, seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A random ``seconds``-long stretch of ``path`` (first channel) as float64 ``[n]`` at RATE, and
    where it starts in the file (s). A shorter file is taken whole."""
    info = sf.info(str(path))
    want = int(round(seconds * info.samplerate))
    start = int(rng.integers(0, max(info.frames - want, 0) + 1))
    data, rate = sf.read(str(path), start=start, frames=want, dtype="float64", always_2d=True)
    x = data[:, 0]
    return (x if rate == RATE else soxr.resample(x, rate, RATE)), start / rate


def degradation_steps(corpus: Corpus, task: Task, index: int, rng: np.random.Generator) -> tuple[list, dict]:
    """The training pipeline's steps for this item (room, noise, low-pass), and what they were made of."""
    from rt_enhance.training.degrade import Lowpass, Noise, RirFiles, RirSimulate, Step

    steps: list[Step] = []
    sources: dict[str, Any] = {}
    if task.rt60 is not None:
        rooms = rooms_for(corpus, task.rt60)
        if rooms:
            room = rooms[int(rng.integers(len(rooms)))] if task.rt60[0] != task.rt60[1] else rooms[index % len(rooms)]
            steps.append(RirFiles(_one_file(corpus.path(room))))
            sources.update(room=Path(room).name, rt60_s=corpus.info(room).get("rt60_measured"), drr_db=drr_db(corpus.path(room)))
        else:
            steps.append(RirSimulate(*task.rt60))
            sources.update(room="rir simulate", rt60_s=float(np.mean(task.rt60)))
    if task.snr_db is not None:
        noise = noise_for(corpus, index, task)
        steps.append(Noise(task.snr_db, task.snr_db, _one_file(corpus.path(noise))))
        sources.update(noise=Path(noise).name, noise_kind=noise_kind(corpus, noise), snr_db=task.snr_db)
    if task.lowpass_hz is not None:
        steps.append(Lowpass(task.lowpass_hz))
        sources.update(lowpass_hz=task.lowpass_hz)
    return steps, sources


def _one_file(path: Path):
    """The pipeline's file folder holding just ``path`` (so the step uses that noise or room)."""
    from rt_enhance.training.degrade import AudioFolder

    return AudioFolder(str(path.parent), (str(path),))


def make_item(corpus: Corpus, task: Task, index: int, pool: list[str], *, seconds: float, seed: int, out: Path) -> TestItem:
    """Crop, degrade and write item ``index`` of ``task``."""
    rng = item_rng(seed, task.name, index)
    key = pool[index % len(pool)]
    clean, start = read_crop(corpus.path(key), seconds, rng)
    steps, sources = degradation_steps(corpus, task, index, rng)
    degraded = clean.copy()
    for step in steps:
        degraded, clean, _ = step.apply(degraded, clean, RATE, rng)
    name = f"{task.name}-{index:02d}"
    paths, scale = write_pair(out / "items" / task.name, name, clean, degraded)
    entry = corpus.entries[key]
    sources = {
        "file": Path(key).name,
        "start_s": start,
        **_origin(key, entry),
        "bandwidth_hz": corpus.info(key).get("bandwidth_hz"),
        "gain": scale,
        **sources,
    }
    content = "speech" if key.startswith("voices/") else key.split("/")[0]
    return TestItem(
        task.name, index, name, content, paths[0], paths[1], task.lowpass_hz, {k: v for k, v in sources.items() if v is not None}
    )


def _origin(key: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Who or what a clean file is: the voice (a recorded speaker's group), or the piece (a real
    recording's ``package:piece``)."""
    if key.startswith("realmusic/"):
        return {"piece": entry.get("group")}
    return {"voice": entry.get("voice") or entry.get("group"), "piece": entry.get("piece")}


def write_pair(folder: Path, name: str, clean: np.ndarray, degraded: np.ndarray) -> tuple[tuple[str, str], float]:
    """Write ``name.clean.wav`` and ``name.degraded.wav`` (float WAV), scaled together when a peak
    passes PEAK; return their paths and the scale."""
    folder.mkdir(parents=True, exist_ok=True)
    scale = min(1.0, PEAK / max(np.max(np.abs(degraded)), np.max(np.abs(clean)), 1e-9))
    paths = (str(folder / f"{name}.clean.wav"), str(folder / f"{name}.degraded.wav"))
    for path, audio in zip(paths, (clean, degraded)):
        sf.write(path, (audio * scale).astype(np.float32), RATE, subtype="FLOAT")
    return paths, scale


def describe(items: list[TestItem]) -> list[dict[str, Any]]:
    """One record per task: its items' source files and conditions (rooms, noises), for the table."""
    out = []
    for task in dict.fromkeys(i.task for i in items):
        mine = [i for i in items if i.task == task]
        rooms = [
            f"{i.sources['room']} (RT60 {i.sources.get('rt60_s', 0):.2f} s, DRR {i.sources['drr_db']:.1f} dB)"
            if "drr_db" in i.sources
            else i.sources["room"]
            for i in mine
            if "room" in i.sources
        ]
        noises = [f"{i.sources.get('noise_kind') or i.sources['noise']}" for i in mine if "noise" in i.sources]
        out.append(
            {
                "section": "testset",
                "task": task,
                "description": TASKS[task].description,
                "items": len(mine),
                "files": ", ".join(f"{i.sources['file']}@{i.sources['start_s']:.1f}s" for i in mine),
                "rooms": "; ".join(rooms) or None,
                "noises": ", ".join(noises) or None,
            }
        )
    return out


def build(
    corpus_dir: str | Path,
    out: str | Path,
    *,
    tasks: tuple[str, ...],
    items: int,
    seconds: float,
    seed: int = 0,
    recorded_split: str = "test",
) -> list[TestItem]:
    """Build ``items`` items of ``seconds`` for each task into ``out``; a task the corpus cannot
    feed (no music, no noise, no recorded voices) is left out with a warning. Writes ``out/testset.json``."""
    if recorded_split != "test" and (unsplit := [n for n in tasks if not TASKS[n].recorded]):
        raise TestSetError(
            f"--split {recorded_split}: {', '.join(unsplit)} use TTS voices or renders, which have only a test split; "
            "use the real tasks (--tasks real, realrooms, realbwe or realmusic)"
        )
    corpus, out = Corpus.open(corpus_dir, recorded_split), Path(out)
    built: list[TestItem] = []
    for name in tasks:
        task = TASKS[name]
        pool = clean_pool(corpus, task, item_rng(seed, task.name))
        if not pool:
            logger.warning("task %s skipped: %s has no %s test files", name, corpus.root, task.content)
            continue
        try:
            built += [make_item(corpus, task, i, pool, seconds=seconds, seed=seed, out=out) for i in range(items)]
        except TestSetError as exc:
            logger.warning("task %s skipped: %s", name, exc)
    doc = {
        "corpus": str(corpus.root),
        "seed": seed,
        "seconds": seconds,
        "rate": RATE,
        "recorded_split": recorded_split,
        "tasks": {n: asdict(TASKS[n]) for n in tasks},
        "items": [asdict(i) for i in built],
    }
    (out / "testset.json").write_text(json.dumps(doc, indent=2))
    return built
