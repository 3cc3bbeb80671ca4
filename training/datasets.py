"""Training data: audio file index, lazy window reads, and the dataset layouts.

Layouts (``kind``), each split by file or speaker, never by window, deterministically from ``seed``:

- ``simple``: every audio file under ``root`` (recursive); split by file.
- ``pairs``: parallel clean/degraded folders matched by file name: Voicebank-DEMAND (``clean_trainset_*`` +
  ``noisy_trainset_*``, and ``clean_testset_*`` + ``noisy_testset_*`` which then form the test split), or
  ``clean/`` + ``noisy/`` (or ``degraded/``). Names like ``p226_001.wav`` are split by speaker, others by file.
- ``vctk``: ``wav48*/<speaker>/*.wav|flac`` (VCTK 0.80 and 0.92; speaker folders directly under ``root`` work too);
  split by speaker. VCTK 0.92's ``_mic1``/``_mic2`` copies: ``mic1`` kept unless ``mic=mic2`` or ``mic=all``.
- ``maestro``: ``maestro-v*.csv`` (or ``.json``) metadata with its ``split`` column; optional ``year=2017``
  (several: ``year=2017+2018``) and ``metadata=FILE``.

``--dataset_args`` is ``key=value,key=value`` (:func:`parse_dataset_args`). ``val``/``test`` set the held-out
fractions of files (or speakers) for ``simple``, ``pairs`` and ``vctk`` (default 0.1 each).

Construction reads file headers only (``soundfile.info``); windows are read lazily with ``start``/``stop`` and
resampled to ``rate`` with soxr, so a large corpus never has to fit in memory.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from rt_enhance.training.audiofiles import (
    AUDIO_EXTENSIONS,
    AudioInfo,
    DatasetError,
    audio_info,
    list_audio,
    read_segment,
)

if TYPE_CHECKING:
    from rt_enhance.training.degrade import Pipeline

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test", "all")
_SPLIT_ALIASES = {"validation": "val", "valid": "val", "dev": "val"}
_DEFAULT_HELD_OUT = 0.1


# ---------------------------------------------------------------------------------------------------------------
# Dataset arguments and splits
# ---------------------------------------------------------------------------------------------------------------

#: Bare values (no ``key=``) in ``--dataset_args`` map onto these keys in order; the original tool's maestro
#: dataset took the year as its first bare argument.
POSITIONAL_ARGS: dict[str, tuple[str, ...]] = {"maestro": ("year",)}
ALLOWED_ARGS: dict[str, frozenset[str]] = {
    "simple": frozenset({"val", "test", "val_dir", "voices"}),
    "pairs": frozenset({"val", "test"}),
    "vctk": frozenset({"val", "test", "mic"}),
    "maestro": frozenset({"year", "metadata"}),
}


def parse_dataset_args(text: str | None, kind: str = "") -> dict[str, str]:
    """Parse ``"key=value,key=value"`` into a dict; bare values fill POSITIONAL_ARGS[kind] in order."""
    out: dict[str, str] = {}
    positional = list(POSITIONAL_ARGS.get(kind, ()))
    for token in filter(None, (t.strip() for t in (text or "").split(","))):
        key, sep, value = token.partition("=")
        if not sep:
            if not positional:
                raise DatasetError(f"dataset_args: expected key=value, got {token!r}")
            key, value = positional.pop(0), token
        if not key.strip() or not value.strip():
            raise DatasetError(f"dataset_args: expected key=value, got {token!r}")
        out[key.strip()] = value.strip()
    return out


def _fraction(args: dict[str, str], key: str) -> float:
    """The held-out fraction ``args[key]`` (default 0.1), checked to lie in [0, 1)."""
    text = args.get(key, str(_DEFAULT_HELD_OUT))
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise DatasetError(f"dataset_args: {key} must be a fraction in [0, 1), got {text!r}")
    return value


def _normalise_split(split: str) -> str:
    name = _SPLIT_ALIASES.get(split, split)
    if name not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return name


def _held_out_count(fraction: float, n: int) -> int:
    return 0 if fraction == 0 else max(1, round(fraction * n))


def split_groups(groups: Iterable[str], split: str, *, seed: int, val: float, test: float) -> set[str]:
    """The groups (files or speakers) of ``split``: a seeded permutation of the sorted unique groups gives
    ``test`` first, then ``val``, the rest is ``train``. Deterministic for a given seed and group set."""
    unique = sorted(set(groups))
    n_test, n_val = _held_out_count(test, len(unique)), _held_out_count(val, len(unique))
    if n_test + n_val >= len(unique) and split != "all":
        raise DatasetError(
            f"{len(unique)} files/speakers cannot be split into train/val/test with val={val}, test={test}; "
            "add data or lower the fractions (dataset_args val=0,test=0)"
        )
    order = [unique[i] for i in np.random.default_rng(seed).permutation(len(unique))]
    parts = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
    return set(unique if split == "all" else parts[split])


# ---------------------------------------------------------------------------------------------------------------
# Layouts: each returns (group, clean path, degraded path or None) entries for one split
# ---------------------------------------------------------------------------------------------------------------

Entry = tuple[str, Path, "Path | None"]


def _select(entries: list[Entry], split: str, seed: int, args: dict[str, str]) -> list[Entry]:
    keep = split_groups((e[0] for e in entries), split, seed=seed, val=_fraction(args, "val"), test=_fraction(args, "test"))
    return [e for e in entries if e[0] in keep]


def _require_audio(files: list[Path], where: Path, what: str) -> list[Path]:
    if not files:
        raise DatasetError(f"{what}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {where}")
    return files


def _simple_entries(root: Path, split: str, seed: int, args: dict[str, str]) -> list[Entry]:
    """Every audio file under ``root`` is a group; ``val_dir=DIR`` takes the validation split from another
    folder instead (held-out speakers: no file of ``root`` is held out, and there is no test split)."""
    if "val_dir" in args:
        if "val" in args or "test" in args:
            raise DatasetError("dataset_args: val_dir replaces the val and test fractions; give only val_dir")
        folder = Path(args["val_dir"]).expanduser() if split == "val" else root
        if split == "test":
            return []
        files = _require_audio(list_audio(folder), folder, "simple")
        return [(str(f.relative_to(folder)), f, None) for f in files]
    files = _require_audio(list_audio(root), root, "simple")
    return _select([(str(f.relative_to(root)), f, None) for f in files], split, seed, args)


_SPEAKER = re.compile(r"^(p\d+)_")


def _match_pairs(clean_dir: Path, degraded_dir: Path) -> list[Entry]:
    """Pairs with the same path relative to their folders; grouped by VCTK speaker when all names have one."""
    clean = {f.relative_to(clean_dir): f for f in list_audio(clean_dir)}
    degraded = {f.relative_to(degraded_dir): f for f in list_audio(degraded_dir)}
    common = sorted(set(clean) & set(degraded))
    if len(common) < max(len(clean), len(degraded)):
        logger.warning(
            "pairs: %d files in %s and %d in %s have no partner; skipped",
            len(set(clean) - set(common)),
            clean_dir,
            len(set(degraded) - set(common)),
            degraded_dir,
        )
    if not common:
        raise DatasetError(f"pairs: no file names in common between {clean_dir} and {degraded_dir}")
    speakers = [_SPEAKER.match(p.name) for p in common]
    by_speaker = all(speakers)
    return [(m.group(1) if by_speaker and m else str(p), clean[p], degraded[p]) for p, m in zip(common, speakers)]


def _one_dir(root: Path, pattern: str) -> Path | None:
    found = sorted(p for p in root.glob(pattern) if p.is_dir())
    if len(found) > 1:
        logger.warning("pairs: several folders match %s in %s; using %s", pattern, root, found[0].name)
    return found[0] if found else None


def _pairs_entries(root: Path, split: str, seed: int, args: dict[str, str]) -> list[Entry]:
    train_clean, train_noisy = _one_dir(root, "clean_trainset*"), _one_dir(root, "noisy_trainset*")
    if train_clean and train_noisy:
        return _voicebank_entries(root, train_clean, train_noisy, split, seed, args)
    clean = root / "clean"
    degraded = next((root / n for n in ("noisy", "degraded") if (root / n).is_dir()), None)
    if not clean.is_dir() or degraded is None:
        raise DatasetError(
            f"pairs: {root} has neither clean_trainset_*/noisy_trainset_* (Voicebank-DEMAND) nor clean/ with noisy/ or degraded/"
        )
    return _select(_match_pairs(clean, degraded), split, seed, args)


def _voicebank_entries(root: Path, clean: Path, noisy: Path, split: str, seed: int, args: dict[str, str]) -> list[Entry]:
    """Voicebank-DEMAND: the testset folders are the test split; val is held out of the trainset."""
    test_clean, test_noisy = _one_dir(root, "clean_testset*"), _one_dir(root, "noisy_testset*")
    if not (test_clean and test_noisy):
        return _select(_match_pairs(clean, noisy), split, seed, args)
    if split == "test":
        return _match_pairs(test_clean, test_noisy)
    train = _select(_match_pairs(clean, noisy), split, seed, {**args, "test": "0"})
    return train + (_match_pairs(test_clean, test_noisy) if split == "all" else [])


def _vctk_speaker_dirs(root: Path) -> list[Path]:
    wav_roots = sorted(p for p in [*root.glob("wav48*"), *root.glob("*/wav48*")] if p.is_dir()) or [root]
    return sorted(d for d in wav_roots[0].iterdir() if d.is_dir() and d.name != "txt")


def _mic_filter(files: list[Path], mic: str) -> list[Path]:
    if mic == "all" or not any("_mic" in f.stem for f in files):
        return files
    return [f for f in files if f.stem.endswith(f"_{mic}")]


def _vctk_entries(root: Path, split: str, seed: int, args: dict[str, str]) -> list[Entry]:
    mic = args.get("mic", "mic1")
    if mic not in ("mic1", "mic2", "all"):
        raise DatasetError(f"dataset_args: mic must be mic1, mic2 or all, got {mic!r}")
    entries: list[Entry] = [(d.name, f, None) for d in _vctk_speaker_dirs(root) for f in _mic_filter(list_audio(d), mic)]
    if not entries:
        raise DatasetError(f"vctk: no speaker folders with audio under {root} (expected wav48*/pXXX/*.wav)")
    return _select(entries, split, seed, args)


def _maestro_metadata(root: Path, args: dict[str, str]) -> Path:
    if "metadata" in args:
        path = root / args["metadata"]
        if not path.is_file():
            raise DatasetError(f"maestro: metadata file {path} does not exist")
        return path
    found = sorted([*root.glob("maestro-v*.csv"), *root.glob("maestro-v*.json")])
    if not found:
        raise DatasetError(f"maestro: no maestro-v*.csv or maestro-v*.json metadata file in {root}")
    return found[-1] if found[-1].suffix == ".csv" else found[0]


def _maestro_rows(path: Path) -> list[dict[str, str]]:
    """Metadata rows from the csv, the v2 json (list of records) or the v3 json (dict of columns)."""
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, list):
        return [{k: str(v) for k, v in row.items()} for row in data]
    keys = list(data["audio_filename"])
    return [{col: str(values[k]) for col, values in data.items()} for k in keys]


def _maestro_entries(root: Path, split: str, seed: int, args: dict[str, str]) -> list[Entry]:
    path = _maestro_metadata(root, args)
    rows = _maestro_rows(path)
    missing = {"split", "year", "audio_filename"} - set(rows[0] if rows else ())
    if missing:
        raise DatasetError(f"maestro: metadata {path} lacks column(s) {', '.join(sorted(missing))}")
    wanted = {"val": "validation"}.get(split, split)
    years = set(args["year"].split("+")) if "year" in args else None
    entries: list[Entry] = [
        (r["audio_filename"], root / r["audio_filename"], None)
        for r in rows
        if (split == "all" or r["split"] == wanted) and (years is None or r["year"] in years)
    ]
    if not entries:
        raise DatasetError(f"maestro: no {wanted} rows" + (f" for year {args['year']}" if years else ""))
    return entries


_LAYOUTS: dict[str, Callable[[Path, str, int, dict[str, str]], list[Entry]]] = {
    "simple": _simple_entries,
    "pairs": _pairs_entries,
    "vctk": _vctk_entries,
    "maestro": _maestro_entries,
}


# ---------------------------------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One training file: the clean target and, for parallel data, its degraded partner."""

    clean: AudioInfo
    degraded: AudioInfo | None = None
    voice: bool | None = None  # a voice file (dataset_args voices=...); None: not labelled

    def frames_at(self, rate: int) -> int:
        n = self.clean.frames_at(rate)
        return n if self.degraded is None else min(n, self.degraded.frames_at(rate))


def window_count(frames: int, window: int, stride: int) -> int:
    """Windows in a file of ``frames`` samples: a file shorter than ``window`` gives one zero-padded window."""
    if frames <= 0:
        return 0
    return 1 if frames <= window else 1 + (frames - window) // stride


class WindowDataset(Dataset):
    """Windows ``(degraded [1, window], clean [1, window])`` float32 tensors, read lazily from ``sources``;
    where the sources are labelled (``Source.voice``), a third item, ``[1]``: 1.0 for a voice file, else 0.0.

    Window ``i`` of a file starts at ``i * stride`` (at ``rate``). The pipeline degrades each window at load
    time with an RNG seeded by ``(seed, epoch, index)``: reproducible, and different each epoch
    (call :meth:`set_epoch`; with ``persistent_workers`` DataLoader workers keep the epoch they started with).
    Each window is degraded with ``pipeline.context(rate)`` samples of surrounding audio on each side, then
    cropped, so reverberation tails enter it and filters have no edge effects inside it.
    """

    def __init__(
        self, sources: Sequence[Source], *, rate: int, window: int, stride: int, pipeline: Pipeline | None = None, seed: int = 0
    ) -> None:
        if window <= 0 or stride <= 0:
            raise DatasetError(f"window and stride must be positive, got window={window}, stride={stride}")
        self.sources, self.rate, self.window, self.stride = tuple(sources), rate, window, stride
        self.pipeline, self.seed, self.epoch = pipeline, seed, 0
        self.labelled = any(s.voice is not None for s in self.sources)
        counts = [window_count(s.frames_at(rate), window, stride) for s in self.sources]
        self._ends = np.cumsum(counts, dtype=np.int64)
        self._context = pipeline.context(rate) if pipeline is not None else 0
        if len(self) == 0:
            raise DatasetError(f"the {len(self.sources)} selected files hold no audio")

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def set_epoch(self, epoch: int) -> None:
        """Select the degradation draws of ``epoch``."""
        self.epoch = int(epoch)

    def locate(self, index: int) -> tuple[Source, int]:
        """The source and start sample (at ``rate``) of window ``index``."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        index %= len(self)
        file = int(np.searchsorted(self._ends, index, side="right"))
        first = int(self._ends[file - 1]) if file else 0
        return self.sources[file], (index - first) * self.stride

    def rng(self, index: int) -> np.random.Generator:
        """The degradation RNG of window ``index`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, index % len(self)])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        source, start = self.locate(index)
        begin, frames = start - self._context, self.window + 2 * self._context
        clean = read_segment(source.clean, begin, frames, self.rate)
        degraded = clean.copy() if source.degraded is None else read_segment(source.degraded, begin, frames, self.rate)
        if self.pipeline is not None:
            degraded, clean = self.pipeline.apply(degraded, clean, self.rate, self.rng(index))
        keep = slice(self._context, self._context + self.window)
        if self.labelled:
            return _tensor(degraded[keep]), _tensor(clean[keep]), torch.tensor([1.0 if source.voice else 0.0])
        return _tensor(degraded[keep]), _tensor(clean[keep])


def _tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)[None, :])


def _limit(entries: list[Entry], n_files: int | None, seed: int) -> list[Entry]:
    """A seeded choice of ``n_files`` entries (all when None), in path order."""
    if n_files is None or n_files >= len(entries):
        return entries
    if n_files <= 0:
        raise DatasetError(f"n_files must be positive, got {n_files}")
    keep = np.sort(np.random.default_rng([seed, 1]).permutation(len(entries))[:n_files])
    return [entries[i] for i in keep]


def _voice_folders(kind: str, args: dict[str, str]) -> set[str] | None:
    """``voices=speech+voices``: the folders directly under a ``simple`` root whose files are voices (the rest,
    music and the like, are not), for a voice-activity loss; None when not given."""
    if "voices" not in args:
        return None
    names = {name for name in args["voices"].split("+") if name}
    if not names or any("/" in name for name in names):
        raise DatasetError(f"dataset_args: voices takes folder names under the root joined by '+', got {args['voices']!r}")
    return names


def _check_args(kind: str, args: dict[str, str]) -> None:
    unknown = set(args) - ALLOWED_ARGS[kind]
    if unknown:
        raise DatasetError(
            f"dataset_args: {kind} does not take {', '.join(sorted(unknown))}; it takes {', '.join(sorted(ALLOWED_ARGS[kind]))}"
        )


def _check_pipeline_rate(pipeline: Pipeline | None, rate: int) -> None:
    if pipeline is not None and pipeline.output_rate(rate) != rate:
        raise DatasetError(
            f"the preprocessing pipeline {pipeline} ends at {pipeline.output_rate(rate)} Hz but the "
            f"dataset rate is {rate} Hz; make --rate match the pipeline's last rate"
        )


def make_dataset(
    kind: str,
    root: str | Path,
    *,
    rate: int,
    window: int,
    stride: int,
    split: str = "train",
    args: dict[str, str] | None = None,
    seed: int = 0,
    pipeline: Pipeline | None = None,
    n_files: int | None = None,
) -> WindowDataset:
    """Build the ``split`` of a ``kind`` dataset under ``root`` as a :class:`WindowDataset`.

    ``args`` come from :func:`parse_dataset_args`. ``n_files`` keeps a seeded subset of the split's files.
    Items are ``(degraded [1, window], clean [1, window])`` float32 tensors at ``rate``.
    """
    if kind not in _LAYOUTS:
        raise DatasetError(f"unknown dataset type {kind!r}; expected one of {', '.join(_LAYOUTS)}")
    args = dict(args or {})
    _check_args(kind, args)
    _check_pipeline_rate(pipeline, rate)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"dataset root {root} does not exist or is not a folder")
    entries = _limit(_LAYOUTS[kind](root, _normalise_split(split), seed, args), n_files, seed)
    voices = _voice_folders(kind, args)
    sources = [
        Source(audio_info(c), None if d is None else audio_info(d), None if voices is None else Path(group).parts[0] in voices)
        for group, c, d in entries
    ]
    dataset = WindowDataset(sources, rate=rate, window=window, stride=stride, pipeline=pipeline, seed=seed)
    logger.info("%s %s: %d files, %d windows of %d at %d Hz", kind, split, len(sources), len(dataset), window, rate)
    return dataset
