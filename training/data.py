"""DataLoaders of a run: shuffled training windows (sharded over processes), fixed validation windows.

The training order is a function of ``(seed, epoch)`` only (``DistributedSampler``, also for one
process), so a resumed run sees exactly the batches an uninterrupted one would have. With ``P``
processes each takes ``batch / P`` windows per step: the union of one step's shards is the batch a
single process would have drawn, which is what makes DDP and one process agree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import cast

import torch
from torch.utils.data import DataLoader, DistributedSampler

from rt_enhance.training.datasets import DatasetError, WindowDataset, make_dataset
from rt_enhance.training.degrade import Pipeline

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSpec:
    """Where the windows come from (plain values, from the configuration)."""

    kind: str
    root: str
    rate: int
    window: int
    stride: int
    args: dict[str, str]
    seed: int
    train_n: int | None
    batch: int
    workers: int


@dataclass
class TrainData:
    train: DataLoader
    sampler: DistributedSampler
    val: DataLoader | None
    generator: torch.Generator

    @property
    def dataset(self) -> WindowDataset:
        return cast(WindowDataset, self.train.dataset)  # make_train_data builds the loader on one

    def set_epoch(self, epoch: int, seed: int) -> None:
        """Select epoch ``epoch``'s order and degradation draws."""
        self.sampler.set_epoch(epoch)
        self.dataset.set_epoch(epoch)
        self.generator.manual_seed(seed * 100003 + epoch)


def local_batch(batch: int, world: int) -> int:
    if batch % world:
        raise DatasetError(f"--batch {batch} is not divisible by the {world} training processes")
    return batch // world


def windows(spec: DataSpec, split: str, pipeline: Pipeline, n_files: int | None = None) -> WindowDataset:
    return make_dataset(
        spec.kind,
        spec.root,
        rate=spec.rate,
        window=spec.window,
        stride=spec.stride,
        split=split,
        args=spec.args,
        seed=spec.seed,
        pipeline=pipeline,
        n_files=n_files,
    )


def make_train_data(spec: DataSpec, pipeline: Pipeline, *, rank: int, world: int, pin: bool) -> TrainData:
    """Training and validation loaders; validation is None when the split holds no files."""
    train = windows(spec, "train", pipeline, spec.train_n)
    per_process = local_batch(spec.batch, world)
    if len(train) < spec.batch:
        raise DatasetError(
            f"the training split holds {len(train)} windows, fewer than one batch of {spec.batch}; add audio, lower --batch or --stride"
        )
    sampler: DistributedSampler[int] = DistributedSampler(
        train, num_replicas=world, rank=rank, shuffle=True, seed=spec.seed, drop_last=True
    )
    generator = torch.Generator().manual_seed(spec.seed)
    loader = DataLoader(
        train,
        batch_size=per_process,
        sampler=sampler,
        num_workers=spec.workers,
        drop_last=True,
        pin_memory=pin,
        generator=generator,
        persistent_workers=False,
    )
    return TrainData(loader, sampler, _val_loader(spec, pipeline, pin), generator)


def _val_loader(spec: DataSpec, pipeline: Pipeline, pin: bool) -> DataLoader | None:
    try:
        val = windows(spec, "val", pipeline)
    except DatasetError as exc:
        logger.warning("no validation windows (%s); best.pt follows the training loss", exc)
        return None
    return DataLoader(
        val,
        batch_size=spec.batch,
        shuffle=False,
        num_workers=spec.workers,
        pin_memory=pin,
        generator=torch.Generator().manual_seed(spec.seed),
    )
