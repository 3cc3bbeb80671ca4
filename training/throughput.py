"""How fast training runs on this machine: windows per second of the training step, and of the data path.

    python -m rt_enhance.training.throughput --size small --batch 32 --window 2048 --threads 2
    python -m rt_enhance.training.throughput --size spec-small,spec-erb --batch 16 --window 48000 --threads 1
    python -m rt_enhance.training.throughput --data_root wavs/ --preprocessing "noise synth 0 20" --workers 2

The step figure uses random windows (the model, its losses, backward and the optimizer, nothing else);
the data figure reads and degrades real windows through the DataLoader. Training runs at about the lower
of the two. A measurement, printed; nothing asserts it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import torch
from torch.utils.data import DataLoader

from rt_enhance.model.sizes import get_size
from rt_enhance.training import runtime
from rt_enhance.training.config import make_config
from rt_enhance.training.data import DataSpec, windows
from rt_enhance.training.degrade import parse_pipeline
from rt_enhance.training.models import ARCH_FAMILY
from rt_enhance.training.trainer import build_parts, new_generator, train_step

logger = logging.getLogger(__name__)


def step_rate(
    size: str, *, batch: int, window: int, rate: int, threads: int, steps: int = 10, warmup: int = 2, gan: float = 0.0, stft: float = 0.0
) -> float:
    """Training windows per second of ``train_step`` (AdamW, L2 [+ GAN, MR-STFT]) on random data, on CPU."""
    torch.set_num_threads(threads)
    arch = {family: arch for arch, family in ARCH_FAMILY.items()}[get_size(size).family]
    loss = {"spectral": "SPEC"}.get(arch, "L2")
    cfg = make_config(dict(name="bench", arch=arch, size=size, window=window, rate=rate, batch=batch, gan=gan, stft=stft, loss=loss))
    rt = runtime.Runtime(device=torch.device("cpu"))
    parts = build_parts(cfg, rt, new_generator(cfg), None)
    x, target = 0.1 * torch.randn(batch, 1, window), 0.1 * torch.randn(batch, 1, window)
    for _ in range(warmup):
        train_step(parts, x, target, rt)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(parts, x, target, rt)
    return steps * batch / (time.perf_counter() - start)


def data_rate(*, root: str, preprocessing: str, rate: int, window: int, batch: int, workers: int, batches: int = 20) -> float:
    """Windows per second the DataLoader delivers (read + degrade) from ``root``."""
    spec = DataSpec(
        kind="simple",
        root=root,
        rate=rate,
        window=window,
        stride=window,
        args={"val": "0", "test": "0"},
        seed=0,
        train_n=None,
        batch=batch,
        workers=workers,
    )
    dataset = windows(spec, "train", parse_pipeline(preprocessing))
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, generator=torch.Generator().manual_seed(0))
    start, seen = time.perf_counter(), 0
    for i, (x, _) in enumerate(loader):
        if i >= batches:
            break
        seen += x.shape[0]
    return seen / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    p = argparse.ArgumentParser(prog="python -m rt_enhance.training.throughput", description=__doc__.splitlines()[0])
    p.add_argument("--size", default="small", help="a named size, or several separated by commas (one run)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--window", type=int, default=2048)
    p.add_argument("--rate", type=int, default=48000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--gan", type=float, default=0.0)
    p.add_argument("--stft", type=float, default=0.0)
    p.add_argument("--data_root", help="also measure the data path on this folder")
    p.add_argument("--preprocessing", default="")
    p.add_argument("--workers", type=int, default=0)
    args = p.parse_args(argv)
    for size in args.size.split(","):
        speed = step_rate(
            size, batch=args.batch, window=args.window, rate=args.rate, threads=args.threads, steps=args.steps, gan=args.gan, stft=args.stft
        )
        audio = speed * args.window / args.rate / args.threads
        print(
            f"train step: {speed:.1f} windows/s = {audio:.2f} s of audio per core-second ({size}, batch "
            f"{args.batch} x {args.window}, {args.threads} threads, gan {args.gan:g}, stft {args.stft:g})"
        )
    if args.data_root:
        loaded = data_rate(
            root=args.data_root,
            preprocessing=args.preprocessing,
            rate=args.rate,
            window=args.window,
            batch=args.batch,
            workers=args.workers,
        )
        print(f"data path:  {loaded:.0f} windows/s ('{args.preprocessing}', {args.workers} workers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
