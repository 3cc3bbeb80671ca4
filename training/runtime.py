"""Where training runs: device, CPU threads, determinism, and the process group under ``torchrun``.

``torchrun --nproc_per_node N`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; with ``WORLD_SIZE``
above 1 a process group is started (NCCL on CUDA, gloo on CPU) and the generator is wrapped in
``DistributedDataParallel``. Without those variables training is one plain process. There is no
launcher of our own.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from rt_enhance.realtime.errors import RtEnhanceError

logger = logging.getLogger(__name__)


class RuntimeSetupError(RtEnhanceError, ValueError):
    """A device or launch setting that cannot work here; one line for the user."""


@dataclass(frozen=True)
class Runtime:
    """The device and this process's place among the training processes."""

    device: torch.device
    rank: int = 0
    world: int = 1
    amp: bool = False
    previous: tuple[int, bool] | None = None  # (threads, deterministic) before start(), put back by stop()

    @property
    def main(self) -> bool:
        """Whether this process writes checkpoints, logs and evaluations."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``cpu``, ``cuda`` (this process's GPU under torchrun) or ``auto`` (cuda when available)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeSetupError("--device cuda: no CUDA GPU is visible to torch; use --device cpu")
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def start(*, device: str, seed: int, threads: int, deterministic: bool, amp: bool) -> Runtime:
    """Set threads and determinism, start the process group under torchrun, seed everything."""
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    previous = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    if threads:
        torch.set_num_threads(threads)
    chosen = pick_device(device, local_rank)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = not deterministic
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
        logger.info("process %d of %d (%s backend) on %s", rank, world, dist.get_backend(), chosen)
    seed_everything(seed)
    return Runtime(device=chosen, rank=rank, world=world, amp=amp and chosen.type == "cuda", previous=previous)


def stop(rt: Runtime) -> None:
    """End the process group (if this process started one); put back threads and determinism."""
    if rt.distributed and dist.is_initialized():
        dist.destroy_process_group()
    if rt.previous is not None:
        torch.set_num_threads(rt.previous[0])
        torch.use_deterministic_algorithms(rt.previous[1])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def barrier(rt: Runtime) -> None:
    if rt.distributed:
        dist.barrier()


def broadcast(value: Any, rt: Runtime) -> Any:
    """Rank 0's ``value`` on every process (any picklable object)."""
    if not rt.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: Any, rt: Runtime) -> list[Any]:
    """Every process's ``value``, in rank order, on every process."""
    if not rt.distributed:
        return [value]
    out: list[Any] = [None] * rt.world
    dist.all_gather_object(out, value)
    return out


def average_gradients(module: nn.Module, rt: Runtime) -> None:
    """Average ``module``'s gradients over the processes (for the discriminator and autoencoder, which are
    not wrapped in DDP: the discriminator runs twice per step, on real and on generated windows)."""
    if not rt.distributed:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= rt.world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def wrap(model: nn.Module, rt: Runtime) -> nn.Module:
    """``model`` in DistributedDataParallel when distributed, else itself."""
    if not rt.distributed:
        return model
    ids = [rt.device.index] if rt.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)
