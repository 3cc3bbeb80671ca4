"""``rt-train``: train a model on a folder of audio, evaluate it, leave a checkpoint for ``rt-export``.

    rt-train -n speech16k --data_root wavs/ --rate 16000 --preprocessing "noise synth 0 20" --size small
    rt-train -n speech16k --continue -e 20          # resume up to 20 epochs in all
    rt-train -n speech16k --load                    # evaluate runs/speech16k/best.pt again
    torchrun --standalone --nproc_per_node 4 -m rt_enhance.training.cli -n big ...   # DDP

A user mistake (bad option, missing data, a run folder that exists) prints one line on stderr and exits 2;
Ctrl-C exits 130 with ``last.pt`` holding the last complete epoch.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rt_enhance.model import AudioModel, Discriminator, Generator, save_checkpoint
from rt_enhance.model.checkpoint import load_checkpoint
from rt_enhance.realtime.errors import RtEnhanceError, report
from rt_enhance.realtime.metadata import ModelInfo
from rt_enhance.training import collab, models, runtime, trainer
from rt_enhance.training.config import (
    ConfigError,
    TrainConfig,
    check_complete,
    given_rates,
    make_config,
    parse_flags,
    read_toml,
    stored_layer,
)
from rt_enhance.training.data import make_train_data
from rt_enhance.training.datasets import DatasetError, make_dataset
from rt_enhance.training.degrade import parse_pipeline
from rt_enhance.training.evaluate import EvalResult, evaluate_model, make_items, markdown_table
from rt_enhance.training.runtime import Runtime
from rt_enhance.training.state import (
    RunDir,
    RunError,
    load_for_eval,
    model_from_record,
    open_run,
    read_stored_config,
    require_trained,
)

logger = logging.getLogger("rt_enhance.training.cli")

FIXED_FOR_A_RUN = ("arch", "size", "depth", "dropout", "model_args", "rate", "window", "train_only")


# ---------------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------------


def load_config(argv: list[str] | None) -> TrainConfig:
    """Flags over ``--config FILE.toml`` over the stored configuration of a run being continued or loaded."""
    flags, path = parse_flags(argv)
    given = {**(read_toml(path) if path else {}), **flags}
    first = make_config(given)
    if not (first.resume or first.load):
        check_complete(first)
        return first
    if not first.name:
        raise ConfigError("-n/--name is required: the run to continue or load")
    run = RunDir(first.run_dir)
    require_trained(run, "--continue" if first.resume else "--load")
    stored = stored_layer(read_stored_config(run))
    _check_unchanged(stored, given)
    cfg = make_config(stored, given)
    check_complete(cfg)
    return cfg


def _check_unchanged(stored: dict[str, Any], given: dict[str, Any]) -> None:
    for key in FIXED_FOR_A_RUN:
        if stored and key in given and key in stored and given[key] != stored[key]:
            raise ConfigError(
                f"--{key} cannot change for a trained run (it was {stored[key]!r}); start a new run with another --name instead"
            )


# ---------------------------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------------------------


def open_run_everywhere(cfg: TrainConfig, rt: Runtime) -> RunDir:
    """Rank 0 opens (checks, creates) the run folder; every process gets its verdict."""
    error = None
    if rt.main:
        try:
            open_run(cfg.run_dir, resume=cfg.resume, load=cfg.load, overwrite=cfg.overwrite)
        except RunError as exc:
            error = str(exc)
    error = runtime.broadcast(error, rt)
    if error:
        raise RunError(error)
    return RunDir(cfg.run_dir)


def test_sources(cfg: TrainConfig) -> list[tuple[str, str, str | None]]:
    """``(name, clean path, degraded partner or None)`` of the first ``--test_n`` test files."""
    ds = make_dataset(
        cfg.dataset,
        cfg.data_root,
        rate=cfg.rate,
        window=cfg.window,
        stride=cfg.stride,
        split="test",
        args=cfg.dataset_args,
        seed=cfg.seed,
        n_files=cfg.test_n or None,
    )
    root = Path(cfg.data_root).expanduser()
    out = []
    for source in ds.sources:
        path = Path(source.clean.path)
        name = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
        out.append((name, source.clean.path, source.degraded.path if source.degraded else None))
    return out


def collab_discriminator(
    cfg: TrainConfig, run: RunDir, rt: Runtime, generator: Generator, trained: models.AnyDiscriminator | None
) -> Discriminator:
    """The discriminator shaped for collaborative sampling (loaded when ``--load`` finds one)."""
    if cfg.load and run.collab_discriminator.is_file():
        loaded, _ = load_checkpoint(run.collab_discriminator)
        return _discriminator(loaded, run.collab_discriminator).to(rt.device).eval()
    fresh = trained is None
    if trained is not None and not isinstance(trained, Discriminator):  # the configuration refuses --collab with mpd-mrd
        raise ValueError("collaborative sampling needs the window discriminator (--disc unet)")
    disc = trained or models.build_discriminator(generator, window=cfg.window, conditional=cfg.conditional)
    pipeline = parse_pipeline(cfg.preprocessing)
    data = make_train_data(trainer.data_spec(cfg), pipeline, rank=0, world=1, pin=False)
    data.set_epoch(0, cfg.seed + 2)
    settings = collab.CollabSettings(steps=cfg.collab_steps, rate=cfg.collab_rate)
    stats = collab.shape(
        generator.to(rt.device), disc, data.train, count=cfg.collab_shape, lr=cfg.lr_d, device=rt.device, settings=settings, fresh=fresh
    )
    save_checkpoint(run.collab_discriminator, disc, extra={"meta": {"shaped_batches": cfg.collab_shape, **stats}})
    return disc


def collab_refiner(
    cfg: TrainConfig, run: RunDir, rt: Runtime, generator: AudioModel, discriminator: models.AnyDiscriminator | None
) -> Callable[[ModelInfo], collab.CollabProcessor]:
    """``info -> processor`` refining each window with the shaped discriminator (for the evaluation)."""
    windowed = collab.check_generator(generator)
    disc = collab_discriminator(cfg, run, rt, windowed, discriminator)
    settings = collab.CollabSettings(steps=cfg.collab_steps, rate=cfg.collab_rate)
    return functools.partial(collab.CollabProcessor, generator=windowed, disc=disc, settings=settings, device=rt.device)


def trained_discriminator(run: RunDir) -> Discriminator | None:
    """The GAN discriminator stored in ``last.pt``, if the run had one."""
    _, extra = load_checkpoint(run.last)
    record = (extra.get("resume") or {}).get("discriminator")
    return None if record is None else _discriminator(model_from_record(record), run.last)


def _discriminator(model: AudioModel, path: Path) -> Discriminator:
    """``model``, read from ``path`` where a discriminator belongs; RunError when it is another model."""
    if not isinstance(model, Discriminator):
        raise RunError(f"{path} holds a {type(model).__name__} where a discriminator belongs; train the run again")
    return model


def evaluate_run(cfg: TrainConfig, run: RunDir, rt: Runtime, discriminator: models.AnyDiscriminator | None) -> EvalResult | None:
    """Evaluate ``best.pt`` on the test split (plus collaborative sampling with ``--collab``)."""
    generator, meta, path = load_for_eval(run)
    generator.to(rt.device)
    refiner = collab_refiner(cfg, run, rt, generator, discriminator) if cfg.collab else None
    try:
        sources = test_sources(cfg)
    except DatasetError as exc:
        logger.warning("no evaluation: %s", exc)
        return None
    pipeline = parse_pipeline(cfg.preprocessing)
    items = make_items(sources, pipeline, rate=cfg.rate, seed=cfg.seed, max_samples=None if cfg.out == -1 else cfg.out * cfg.window)
    logger.info("evaluating %s on %d test file(s)", path, len(items))
    result = evaluate_model(
        generator,
        items,
        meta,
        run.eval_dir,
        pipeline=pipeline,
        speech=cfg.speech,
        engine=cfg.engine_eval,
        refiner=refiner,
        device=rt.device,
    )
    print(markdown_table(result))
    print(f"wrote {run.eval_dir}/ (metrics.md, metrics.json, enhanced WAVs, spectrogram.png)")
    return result


# ---------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------


def train_and_evaluate(cfg: TrainConfig, rt: Runtime, *, new_lr: tuple[str, ...] = ()) -> int:
    run = open_run_everywhere(cfg, rt)
    if cfg.load:
        if rt.main:
            evaluate_run(cfg, run, rt, trained_discriminator(run) if cfg.collab else None)
        return 0
    result = trainer.fit(cfg, run, rt, new_lr=new_lr)
    runtime.barrier(rt)
    if not rt.main:
        return 0
    progress = result.progress
    best = trainer.metric_of(progress.best, cfg.best_metric)
    print(
        f"trained {progress.epoch} epoch(s), {progress.step} steps; best.pt is epoch {progress.best_epoch} ({cfg.best_metric} {best:.4g})"
    )
    if cfg.evaluate and cfg.test_n > 0:
        evaluate_run(cfg, run, rt, result.discriminator)
    print(f"next: rt-export {run.best} --out {cfg.name}.onnx && rt-enhance --model {cfg.name}.onnx --in mic")
    return 0


def _setup_logging() -> None:
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("rt_enhance").setLevel(logging.INFO if rank == 0 else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    _setup_logging()
    try:
        cfg = load_config(argv)
        rt = runtime.start(device=cfg.device, seed=cfg.seed, threads=cfg.threads, deterministic=cfg.deterministic, amp=cfg.amp)
    except RtEnhanceError as exc:
        return report("rt-train", exc, 2, label="")
    try:
        return train_and_evaluate(cfg, rt, new_lr=given_rates(parse_flags(argv)[0]))
    except RtEnhanceError as exc:
        return report("rt-train", exc, 2, label="")
    except KeyboardInterrupt:
        print("rt-train: interrupted; last.pt holds the last complete epoch (resume with --continue)", file=sys.stderr)
        return 130
    finally:
        runtime.stop(rt)


if __name__ == "__main__":
    sys.exit(main())
