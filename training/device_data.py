"""Training batches from a pack (training/pack.py), for the time-budgeted trainer (training/gpu_train.py).

Two sources with one interface (``next(batch) -> (degraded, clean)`` ``[B, 1, window]`` on the device,
with a third ``[B, 1]``, each window's voice-file flag, where the files are labelled (``dataset_args
voices=...``, for ``--voice``); and ``val``, fixed validation batches):

- :class:`DeviceSource`: every file of the pack decoded once (threads) into banks on the training
  device; windows drawn uniformly over the training split's audio and degraded there by
  training/degrade/device.py. Nothing waits on CPU workers: the path for a GPU.
- :class:`LoaderSource`: the usual dataset and DataLoader workers over the pack's files (any
  pipeline, the CPU's exact steps).

The train / validation split is the dataset's own (``--dataset_args``, by file, seeded), so both
sources and ``rt-train`` on the unpacked corpus split the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from rt_enhance.training import trainer
from rt_enhance.training.audiofiles import load_audio
from rt_enhance.training.config import TrainConfig
from rt_enhance.training.data import make_train_data
from rt_enhance.training.datasets import DatasetError, make_dataset
from rt_enhance.training.degrade import Maybe, Noise, Pipeline, RirFiles, resample
from rt_enhance.training.degrade import device as dd

logger = logging.getLogger(__name__)

Pair = tuple[torch.Tensor, ...]  # (degraded, clean) or (degraded, clean, voice flags)


def split_paths(root: Path, cfg: TrainConfig, split: str) -> list[str]:
    """The clean files of ``split`` under ``root``, as ``rt-train`` would split them (empty when none)."""
    return split_files(root, cfg, split)[0]


def split_files(root: Path, cfg: TrainConfig, split: str) -> tuple[list[str], list[float] | None]:
    """:func:`split_paths` and each file's voice label (1 or 0; None where the files carry none)."""
    try:
        ds = make_dataset(
            cfg.dataset, root, rate=cfg.rate, window=cfg.window, stride=cfg.stride, split=split, args=cfg.dataset_args, seed=cfg.seed
        )
    except DatasetError as exc:
        if split == "train":
            raise
        logger.warning("no %s split (%s)", split, exc)
        return [], None
    labels = [1.0 if s.voice else 0.0 for s in ds.sources] if ds.labelled else None
    return [s.clean.path for s in ds.sources], labels


def decode(paths: list[str], rate: int, threads: int) -> list[np.ndarray]:
    """Every file as mono float32 ``[samples]`` at ``rate`` (the dataset's reading), in parallel threads."""
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return list(pool.map(lambda p: load_audio(p, rate), paths))


def read_rir(path: str, rate: int) -> np.ndarray:
    """A room response's first channel at ``rate`` (as ``rir DIR`` reads it)."""
    data, file_rate = sf.read(path, dtype="float64", always_2d=True)
    return resample(data[:, 0], file_rate, rate).astype(np.float32)


def _folder_steps(pipeline: Pipeline) -> list:
    return [s.inner if isinstance(s, Maybe) else s for s in pipeline.steps]


def load_sources(
    pipeline: Pipeline, *, rate: int, device: torch.device, threads: int, seed: int, synth_segments: int, synth_seconds: float
) -> dd.Sources:
    """Banks for every folder the pipeline reads, and the synthetic-noise bank maker."""
    noise, rirs = {}, {}
    for step in _folder_steps(pipeline):
        if isinstance(step, Noise) and step.files is not None and step.files.folder not in noise:
            noise[step.files.folder] = dd.Bank.from_arrays(decode(list(step.files.paths), rate, threads), device)
        elif isinstance(step, RirFiles) and step.files.folder not in rirs:
            rirs[step.files.folder] = dd.RirBank.from_arrays([read_rir(p, rate) for p in step.files.paths], device)

    def synth(kinds: tuple[str, ...]) -> dd.Bank:
        return dd.synth_bank(kinds, rate=rate, segments=synth_segments, seconds=synth_seconds, seed=seed, device=device)

    return dd.Sources(noise, rirs, synth)


@dataclass
class DeviceSource:
    """Clean windows from a bank, degraded on the device."""

    bank: dd.Bank
    pipeline: dd.DevicePipeline
    window: int
    gen: torch.Generator
    val: list[Pair] = field(default_factory=list)

    def next(self, batch: int) -> Pair:
        """``(degraded, clean)`` ``[batch, 1, window]`` float32 on the bank's device (and the windows' voice
        flags ``[batch, 1]`` where the bank is labelled)."""
        context = self.pipeline.context
        segments, files = self.bank.windows(batch, self.window, context, self.gen)
        degraded, target = self.pipeline(segments, self.gen)
        keep = slice(context, context + self.window)
        pair = degraded[:, None, keep].contiguous(), target[:, None, keep].contiguous()
        return pair if self.bank.labels is None else (*pair, self.bank.labels[files][:, None])

    def fixed_batches(self, count: int, batch: int, seed: int) -> list[Pair]:
        """``count`` batches drawn with their own seed (the same every run): validation."""
        kept = self.gen
        self.gen = torch.Generator(device=self.bank.audio.device).manual_seed(seed)
        try:
            return [self.next(batch) for _ in range(count)]
        finally:
            self.gen = kept


def device_source(
    root: Path,
    cfg: TrainConfig,
    cpu_pipeline: Pipeline,
    device: torch.device,
    *,
    threads: int,
    synth_segments: int = 16,
    synth_seconds: float = 8.0,
) -> DeviceSource:
    """Decode the pack's training split and the pipeline's folders onto ``device``; fixed validation batches."""
    sources = load_sources(
        cpu_pipeline,
        rate=cfg.rate,
        device=device,
        threads=threads,
        seed=cfg.seed,
        synth_segments=synth_segments,
        synth_seconds=synth_seconds,
    )
    pipeline = dd.device_pipeline(cpu_pipeline, cfg.rate, sources)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    paths, labels = split_files(root, cfg, "train")
    train = dd.Bank.from_arrays(decode(paths, cfg.rate, threads), device, labels)
    source = DeviceSource(train, pipeline, cfg.window, gen)
    val_paths = split_paths(root, cfg, "val")
    if val_paths:
        val = DeviceSource(dd.Bank.from_arrays(decode(val_paths, cfg.rate, threads), device), pipeline, cfg.window, gen)
        count = cfg.val_count if cfg.val_count > 0 else 8
        source.val = val.fixed_batches(count, cfg.batch, cfg.seed + 1)
    logger.info(
        "device data: %.0f s of training audio in %d files, %d validation batches, on %s",
        train.audio.numel() / cfg.rate,
        train.files,
        len(source.val),
        device,
    )
    return source


class LoaderSource:
    """The dataset and its DataLoader workers (the CPU's degradation steps), cycled over epochs."""

    def __init__(self, root: Path, cfg: TrainConfig, pipeline: Pipeline, device: torch.device, *, batch: int, workers: int) -> None:
        spec = replace(trainer.data_spec(cfg), root=str(root), batch=batch, workers=workers)
        self.data = make_train_data(spec, pipeline, rank=0, world=1, pin=device.type == "cuda")
        self.device, self.batch, self.seed = device, batch, cfg.seed
        self.val: Iterable[Any] = self.data.val if self.data.val is not None else []
        self.epoch = 0
        self._it: Iterator[Any] | None = None

    def next(self, batch: int) -> Pair:
        if batch != self.batch:
            raise ValueError(f"the loader was built for batch {self.batch}, not {batch}")
        while True:
            if self._it is None:
                self.data.set_epoch(self.epoch, self.seed)
                self._it = iter(self.data.train)
            try:
                return tuple(t.to(self.device, non_blocking=True) for t in next(self._it))
            except StopIteration:
                self._it, self.epoch = None, self.epoch + 1
