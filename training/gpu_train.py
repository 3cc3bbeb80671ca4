"""Train a recipe for a fixed wall-clock budget from a pack: the GPU recipe (CUDA, bf16, a batch sized to the
card, degradation on the device), which runs on a CPU as well.

    python -m rt_enhance.training.gpu_train --pack .gpu/pack --out OUT --seconds 500 \\
        [--config training/configs/speech-erb.toml] [--resume CKPT] [--precision bf16|fp16|fp32] \\
        [--degrade auto|device|cpu] [--max-batch 256] [rt-train flags, e.g. --lr_g 5e-4 --batch 64]

The model, loss and optimizer are the ``--config`` recipe's (``rt-train``'s TOML; its flags may follow
and win; by default the recipe the pack was made for); the audio, the degradation string and the
dataset arguments are the pack's (scripts/gpu-pack.sh), so a pack made with ``val_dir`` validates on
its packed validation folder (held-out speakers), and ``--dataset_args`` given here wins. What differs
from ``rt-train`` and why:

- **Time, not epochs.** Training stops at the first step after ``--seconds`` of training. Every
  ``--val-every`` seconds the fixed validation batches are scored, the scheduler steps and ``best.pt``
  / ``last.pt`` are written to ``--out`` (``last.pt`` also every ``--save-every`` seconds): one such
  interval is an "epoch" in the checkpoint's counters.
- **Batch.** On CUDA, unless ``--batch`` is given on the command line, the recipe's batch is doubled
  while the step's audio throughput grows by more than 10 % and the card's memory allows, up to
  ``--max-batch`` (the probing steps are real training steps). The learning rate stays the recipe's.
- **Precision.** ``bf16`` (default on CUDA) or ``fp16`` (with a grad scaler) autocast of the model's
  forward pass, losses in float32; ``fp32`` on a CPU. A step whose loss is not finite is skipped; after
  20 in a row under bf16/fp16 the run continues in fp32.
- **Degradation.** ``device``: on the training device in batches (training/degrade/device.py), the
  default when every step of the pack's pipeline has a device version; ``cpu``: DataLoader workers
  running the CPU steps (``--workers`` on the command line, else one per core but one).
- **Resume.** ``--resume CKPT`` starts from a checkpoint of the same model: a ``last.pt`` (of
  ``rt-train`` or of this trainer) restores the optimizer, scheduler and counters too, except a learning rate
  given as a flag (``--lr_g``, ``--lr_d``), which replaces the restored one and restarts its schedule; any other
  checkpoint gives its weights only. ``best.pt`` in ``--out`` is the best of this run.
- **Log.** ``--out/train.log`` (what is printed) and ``--out/summary.json``: device, batch, precision,
  steps, audio seen, and the throughput in seconds of audio per second of training.

- **GAN.** ``--gan`` (and ``--disc``, ``--fm``) trains the discriminator before each generator step, as
  ``rt-train`` does, under the same precision.

Not supported here (one line says so): ``--ae``, ``--collab``, and the rt-train flags that
``--seconds``, ``--resume``, ``--out``, ``--pack`` and ``--precision`` replace.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from rt_enhance.model.checkpoint import load_checkpoint
from rt_enhance.realtime.errors import RtEnhanceError, report
from rt_enhance.training import device_data, runtime, trainer
from rt_enhance.training.config import ConfigError, TrainConfig, given_rates, make_config, parse_flags, read_toml
from rt_enhance.training.degrade import Pipeline, parse_pipeline
from rt_enhance.training.degrade.device import unsupported
from rt_enhance.training.pack import read_manifest, unpacked_dataset_args, unpacked_pipeline
from rt_enhance.training.runtime import Runtime
from rt_enhance.training.state import Progress, RunDir, RunError, save_last, write_config

logger = logging.getLogger("rt_enhance.training.gpu_train")

CONFIGS = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIGS / "speech-erb.toml"
#: rt-train flags this trainer replaces, and with what.
REPLACED = {
    "resume": "--resume CKPT",
    "load": "--resume CKPT",
    "overwrite": "--out",
    "init_from": "--resume CKPT",
    "epochs": "--seconds",
    "count": "--seconds",
    "amp": "--precision",
    "runs": "--out",
    "name": "--out",
    "data_root": "--pack",
    "preprocessing": "the pack (scripts/gpu-pack.sh)",
    "evaluate": "rt-bench quality",
    "test_n": "rt-bench quality",
    "engine_eval": "rt-bench quality",
    "collab": "rt-train",
}
NONFINITE_LIMIT = 20


@dataclass(frozen=True)
class Budget:
    """The options of this trainer (rt-train's own options travel in the TrainConfig)."""

    pack: Path
    out: Path
    seconds: float = 500.0
    resume: str = ""
    precision: str = "auto"
    degrade: str = "auto"
    max_batch: int = 256
    val_every: float = 60.0
    save_every: float = 120.0
    log_every: float = 15.0
    synth_bank: float = 128.0
    batch_given: bool = False
    workers_given: bool = False
    new_lr: tuple[str, ...] = ()  # the learning rates given as flags: a resumed last.pt takes them (trainer.apply_resume)


@dataclass
class Tally:
    """What the loop has done since it started."""

    steps: int = 0
    windows: int = 0
    skipped: int = 0
    nonfinite_run: int = 0
    train_seconds: float = 0.0
    data_seconds: float = 0.0
    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0

    def add(self, stats: dict[str, float]) -> None:
        for key, value in stats.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.count += 1

    def means(self) -> dict[str, float]:
        means = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


# ---------------------------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m rt_enhance.training.gpu_train",
        description=__doc__.splitlines()[0],
        epilog="Any other flag is an rt-train flag (rt-train --help) and overrides --config.",
    )
    p.add_argument("--pack", required=True, help="the pack folder (scripts/gpu-pack.sh writes .gpu/pack)")
    p.add_argument("--out", required=True, help="folder for last.pt, best.pt, train.log, summary.json")
    p.add_argument("--config", help="the recipe (default: the one the pack was made for, else speech-erb.toml)")
    p.add_argument(
        "--seconds", type=float, default=500.0, help="training wall-clock budget; start-up and the last save come on top (default 500)"
    )
    p.add_argument("--resume", default="", help="checkpoint to start from (a last.pt resumes everything)")
    p.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp16", "fp32"),
        default="auto",
        help="autocast precision (default auto: bf16 on CUDA, fp32 on a CPU)",
    )
    p.add_argument(
        "--degrade",
        choices=("auto", "device", "cpu"),
        default="auto",
        help="where degradations run (default auto: on the device when every step can)",
    )
    p.add_argument("--max-batch", type=int, default=256, help="upper bound of the automatic batch (default 256)")
    p.add_argument("--val-every", type=float, default=60.0, help="seconds between validations (default 60)")
    p.add_argument("--save-every", type=float, default=120.0, help="seconds between last.pt saves (default 120)")
    p.add_argument("--log-every", type=float, default=15.0, help="seconds between log lines (default 15)")
    p.add_argument(
        "--synth-bank", type=float, default=128.0, help="seconds of each synthetic noise kind made at start for 'noise synth' (default 128)"
    )
    return p


def load_options(argv: list[str] | None) -> tuple[Budget, TrainConfig]:
    """This trainer's options, and the recipe with the pack's data and the given rt-train flags."""
    args, rest = build_parser().parse_known_args(argv)
    flags, _ = parse_flags(rest)
    replaced = sorted(set(flags) & set(REPLACED))
    if replaced:
        raise ConfigError(f"--{replaced[0]} is not used by the GPU trainer; use {REPLACED[replaced[0]]}")
    pack = Path(args.pack)
    recipe = {k: v for k, v in read_toml(args.config or pack_config(pack)).items() if k not in REPLACED or k == "name"}
    packed = unpacked_dataset_args(pack)
    pack_args = {"dataset_args": {"__raw__": packed}} if packed else {}
    data = {"data_root": str(pack / "clean"), "preprocessing": unpacked_pipeline(pack)}
    cfg = make_config(recipe, pack_args, flags, data)
    if cfg.ae > 0:
        raise ConfigError(f"--ae {cfg.ae:g}: the GPU trainer trains without it; use rt-train")
    budget = Budget(
        pack=pack,
        out=Path(args.out),
        seconds=args.seconds,
        resume=args.resume,
        precision=args.precision,
        degrade=args.degrade,
        max_batch=args.max_batch,
        val_every=args.val_every,
        save_every=args.save_every,
        log_every=args.log_every,
        synth_bank=args.synth_bank,
        batch_given="batch" in flags,
        new_lr=given_rates(flags),
        workers_given="workers" in flags,
    )
    _check_budget(budget)
    return budget, cfg


def pack_config(pack: Path) -> str:
    """The recipe the pack was made for (a name in training/configs, or a path), else DEFAULT_CONFIG."""
    name = read_manifest(pack).get("config") or ""
    if not name:
        return str(DEFAULT_CONFIG)
    path = CONFIGS / name if Path(name).name == name else Path(name)
    if not path.is_file():
        raise ConfigError(f"the pack was made for the recipe {name}, which is not in {CONFIGS}; give --config")
    return str(path)


def _check_budget(b: Budget) -> None:
    if not (math.isfinite(b.seconds) and b.seconds > 0):
        raise ConfigError(f"--seconds must be a positive number, got {b.seconds}")
    if b.resume and not Path(b.resume).is_file():
        raise ConfigError(f"--resume {b.resume}: no such checkpoint")
    if b.max_batch < 1:
        raise ConfigError(f"--max-batch must be >= 1, got {b.max_batch}")
    for name, value in (
        ("--val-every", b.val_every),
        ("--save-every", b.save_every),
        ("--log-every", b.log_every),
        ("--synth-bank", b.synth_bank),
    ):
        if not value > 0:
            raise ConfigError(f"{name} must be positive, got {value}")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for float32."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[precision]


# ---------------------------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------------------------


def make_source(budget: Budget, cfg: TrainConfig, pipeline: Pipeline, device: torch.device, batch: int):
    """The device source, or DataLoader workers when asked or when a step has no device version."""
    why = unsupported(pipeline)
    if budget.degrade == "device" and why:
        raise ConfigError(f"--degrade device: {why}; use --degrade cpu")
    threads = max(1, (os.cpu_count() or 2) - 1)
    if budget.degrade == "cpu" or why:
        if why:
            logger.info("degrading on the CPU: %s", why)
        workers = cfg.workers if budget.workers_given else threads
        return device_data.LoaderSource(budget.pack / "clean", cfg, pipeline, device, batch=batch, workers=workers)
    segment = min(8.0, budget.synth_bank)
    return device_data.device_source(
        budget.pack / "clean",
        cfg,
        pipeline,
        device,
        threads=threads,
        synth_segments=max(1, round(budget.synth_bank / segment)),
        synth_seconds=segment,
    )


def build(budget: Budget, cfg: TrainConfig, rt: Runtime) -> tuple[trainer.Parts, Progress]:
    """The generator (warm-started from ``--resume``), its optimizer, and the counters."""
    generator = trainer.new_generator(replace(cfg, init_from=budget.resume))
    parts = trainer.build_parts(cfg, rt, generator, None)
    progress = Progress()
    if budget.resume:
        record = load_checkpoint(budget.resume)[1].get("resume")
        if isinstance(record, dict) and record.get("opt_g") is not None:
            progress = trainer.apply_resume(parts, record, cfg, rt, new_lr=budget.new_lr)
            logger.info(
                "resumed %s: optimizer and counters (%d steps, %.2f h of audio seen before)",
                budget.resume,
                progress.step,
                progress.windows_seen * cfg.window / cfg.rate / 3600,
            )
        else:
            logger.info("%s holds weights only: the optimizer starts fresh", budget.resume)
    progress.best, progress.best_epoch = float("-inf"), 0  # best.pt is the best of this run's validation
    return parts, progress


# ---------------------------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------------------------


def step(
    parts: trainer.Parts, x: torch.Tensor, target: torch.Tensor, rt: Runtime, dtype: torch.dtype | None, voice: torch.Tensor | None = None
) -> dict[str, float] | None:
    """One generator step under autocast ``dtype`` (``voice``: the windows' voice-file flags, for ``--voice``);
    None (and no update) when the loss is not finite."""
    with torch.autocast(rt.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        y = parts.g_model(x)
    stats = trainer.adversary_step(parts, x, y.float(), target, rt, dtype)  # with --gan: the discriminator first
    loss, terms = trainer.generator_loss(parts, x, y.float(), target, voice)
    if not math.isfinite(terms["loss"]):
        return None
    trainer.optimize(loss, parts.opt_g, parts.generator, parts.scaler_g, parts.objective.clip, rt)
    return {**terms, **stats}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Loop:
    """Everything one step needs, and what it counts."""

    parts: trainer.Parts
    source: Any
    cfg: TrainConfig
    rt: Runtime
    dtype: torch.dtype | None
    progress: Progress
    tally: Tally = field(default_factory=Tally)

    def run_step(self, batch: int) -> None:
        t0 = time.perf_counter()
        x, target, *label = self.source.next(batch)
        _sync(self.rt.device)
        t1 = time.perf_counter()
        stats = step(self.parts, x, target, self.rt, self.dtype, label[0] if label else None)
        t2 = time.perf_counter()
        self.tally.data_seconds += t1 - t0
        self.tally.train_seconds += t2 - t0
        if stats is None:
            self._nonfinite()
            return
        self.tally.nonfinite_run = 0
        self.tally.steps += 1
        self.tally.windows += batch
        self.tally.add(stats)
        self.progress.step += 1
        self.progress.windows_seen += batch

    def _nonfinite(self) -> None:
        self.tally.skipped += 1
        self.tally.nonfinite_run += 1
        if self.tally.nonfinite_run < NONFINITE_LIMIT:
            return
        if self.dtype is None:
            raise RunError(f"the loss was not finite for {NONFINITE_LIMIT} steps in a row in float32")
        logger.warning("the loss was not finite for %d steps in a row under %s; continuing in float32", NONFINITE_LIMIT, self.dtype)
        self.dtype, self.tally.nonfinite_run = None, 0

    def audio_rate(self) -> float:
        """Seconds of audio trained on per second of the loop so far."""
        return self.tally.windows * self.cfg.window / self.cfg.rate / max(self.tally.train_seconds, 1e-9)


def size_batch(loop: Loop, start: int, limit: int) -> int:
    """The batch with the best audio throughput: doubled from ``start`` while it gains > 10 % and the card's
    memory allows (CUDA only); each candidate's steps train the model."""
    device = loop.rt.device
    total = torch.cuda.get_device_properties(device).total_memory
    best, best_rate, batch = start, 0.0, start
    while batch <= limit:
        torch.cuda.reset_peak_memory_stats(device)
        try:
            rate = _measure(loop, batch)
        except torch.cuda.OutOfMemoryError:
            logger.info("batch %d: out of memory", batch)
            torch.cuda.empty_cache()
            break
        share = torch.cuda.max_memory_allocated(device) / total
        logger.info("batch %d: %.0f s of audio per s, %.0f %% of the card's memory", batch, rate, 100 * share)
        if rate < 1.1 * best_rate:
            break
        best, best_rate = batch, rate
        if share > 0.4:
            break
        batch *= 2
    return best


def _measure(loop: Loop, batch: int, steps: int = 3) -> float:
    loop.run_step(batch)  # warm-up (kernel selection, allocation)
    start_windows, start = loop.tally.windows, time.perf_counter()
    for _ in range(steps):
        loop.run_step(batch)
    _sync(loop.rt.device)
    return (loop.tally.windows - start_windows) * loop.cfg.window / loop.cfg.rate / (time.perf_counter() - start)


@dataclass
class Clock:
    """Deadlines of the loop, in ``time.perf_counter`` seconds."""

    end: float
    val_every: float
    save_every: float
    log_every: float
    next_val: float = 0.0
    next_save: float = 0.0
    next_log: float = 0.0

    @classmethod
    def start(cls, budget: Budget) -> Clock:
        now = time.perf_counter()
        return cls(
            now + budget.seconds,
            budget.val_every,
            budget.save_every,
            budget.log_every,
            now + budget.val_every,
            now + budget.save_every,
            now + budget.log_every,
        )


def train(loop: Loop, budget: Budget, run: RunDir, pipeline: Pipeline, batch: int, clock: Clock) -> dict[str, Any]:
    """Steps until the budget is spent, with logs, validations and saves on the way; the last validation."""
    val: dict[str, float] = {}
    while time.perf_counter() < clock.end:
        loop.run_step(batch)
        now = time.perf_counter()
        if now >= clock.next_log:
            log_progress(loop, batch, clock)
            clock.next_log = now + clock.log_every
        if now >= clock.next_val:
            val = validate_and_save(loop, run, pipeline)  # writes last.pt too
            clock.next_val = time.perf_counter() + clock.val_every
            clock.next_save = time.perf_counter() + clock.save_every
        elif now >= clock.next_save:
            save_last(
                run, loop.parts.generator, meta=_meta(loop, pipeline, val), resume=trainer.resume_record(loop.parts, loop.progress, loop.rt)
            )
            clock.next_save = time.perf_counter() + clock.save_every
    return validate_and_save(loop, run, pipeline)


def _meta(loop: Loop, pipeline: Pipeline, val: dict[str, float]) -> dict[str, Any]:
    return trainer.make_meta(loop.parts, loop.cfg, loop.progress, val, pipeline, loop.progress.epoch)


def validate_and_save(loop: Loop, run: RunDir, pipeline: Pipeline) -> dict[str, float]:
    """Score the validation batches; scheduler, best.pt and last.pt as at the end of an rt-train epoch."""
    source = loop.source
    val, _ = trainer.validate(loop.parts, source.val, loop.rt, val_count=loop.cfg.val_count) if source.val else ({}, None)
    trainer.end_epoch(loop.parts, loop.cfg, run, loop.rt, loop.progress, pipeline, loop.tally.means(), val)
    text = ", ".join(f"{k} {v:.4g}" for k, v in val.items()) or "no validation split"
    best = " (best)" if loop.progress.best_epoch == loop.progress.epoch else ""
    logger.info("validation %d: %s%s", loop.progress.epoch, text, best)
    return val


def log_progress(loop: Loop, batch: int, clock: Clock) -> None:
    t = loop.tally
    loss = t.sums.get("loss", math.nan) / max(t.count, 1)
    voice = f" (voice activity {t.sums['voice'] / max(t.count, 1):.3g})" if "voice" in t.sums else ""
    logger.info(
        "step %d (batch %d): loss %.4g%s | %.0f s of audio per s | data %.0f %% of the time | %.0f s left",
        loop.progress.step,
        batch,
        loss,
        voice,
        loop.audio_rate(),
        100 * t.data_seconds / max(t.train_seconds, 1e-9),
        max(clock.end - time.perf_counter(), 0.0),
    )


# ---------------------------------------------------------------------------------------------------------------
# Summary and entry point
# ---------------------------------------------------------------------------------------------------------------


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def summary(loop: Loop, budget: Budget, batch: int, val: dict[str, float], wall: float) -> dict[str, Any]:
    t, cfg = loop.tally, loop.cfg
    audio = t.windows * cfg.window / cfg.rate
    return {
        "device": device_name(loop.rt.device),
        "torch": torch.__version__,
        "precision": str(loop.dtype).replace("torch.", "") if loop.dtype else "float32",
        "degrade": "device" if isinstance(loop.source, device_data.DeviceSource) else "cpu",
        "batch": batch,
        "window": cfg.window,
        "rate": cfg.rate,
        "steps": t.steps,
        "skipped_steps": t.skipped,
        "audio_seconds": round(audio, 1),
        "train_seconds": round(t.train_seconds, 2),
        "audio_per_second": round(loop.audio_rate(), 1),
        "data_share": round(t.data_seconds / max(t.train_seconds, 1e-9), 3),
        "wall_seconds": round(wall, 1),
        "budget_seconds": budget.seconds,
        "validation": val,
        "best_validation": loop.progress.best_epoch,
        "total_steps": loop.progress.step,
        "total_hours_seen": round(loop.progress.windows_seen * cfg.window / cfg.rate / 3600, 4),
        "resumed_from": budget.resume or None,
        "config": cfg.to_dict(),
    }


def run(budget: Budget, cfg: TrainConfig, rt: Runtime) -> dict[str, Any]:
    started = time.perf_counter()
    run_dir = RunDir(budget.out)
    budget.out.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, cfg.to_dict())
    pipeline = parse_pipeline(cfg.preprocessing)
    dtype = autocast_dtype(budget.precision, rt.device)
    logger.info("training on %s, %s, for %.0f s", device_name(rt.device), dtype or "float32", budget.seconds)
    parts, progress = build(budget, cfg, rt)
    source = make_source(budget, cfg, pipeline, rt.device, cfg.batch)
    loop = Loop(parts, source, cfg, rt, dtype, progress)
    clock = Clock.start(budget)
    sized = not budget.batch_given and rt.device.type == "cuda" and isinstance(source, device_data.DeviceSource)
    batch = size_batch(loop, cfg.batch, max(budget.max_batch, cfg.batch)) if sized else cfg.batch
    val = train(loop, budget, run_dir, pipeline, batch, clock)
    result = summary(loop, budget, batch, val, time.perf_counter() - started)
    (budget.out / "summary.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    logger.info(
        "trained %d steps, %.0f s of audio in %.0f s: %.0f s of audio per s (batch %d, %s); wrote %s",
        result["steps"],
        result["audio_seconds"],
        result["train_seconds"],
        result["audio_per_second"],
        batch,
        result["precision"],
        budget.out,
    )
    return result


def _setup_logging(out: Path) -> list[logging.Handler]:
    """Log lines to stderr and ``out/train.log``; returns the handlers (removed by ``main`` at the end)."""
    out.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr), logging.FileHandler(out / "train.log", encoding="utf-8")]
    root = logging.getLogger("rt_enhance")
    root.setLevel(logging.INFO)
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    return handlers


def main(argv: list[str] | None = None) -> int:
    try:
        budget, cfg = load_options(argv)
        handlers = _setup_logging(budget.out)
        rt = runtime.start(
            device=cfg.device, seed=cfg.seed, threads=cfg.threads, deterministic=cfg.deterministic, amp=budget.precision == "fp16"
        )
    except RtEnhanceError as exc:
        return report("gpu-train", exc, 2, label="")
    try:
        run(budget, cfg, rt)
        return 0
    except RtEnhanceError as exc:
        return report("gpu-train", exc, 2, label="")
    except KeyboardInterrupt:
        print(f"gpu-train: interrupted; {budget.out}/last.pt holds the last save", file=sys.stderr)
        return 130
    finally:
        runtime.stop(rt)
        for handler in handlers:
            logging.getLogger("rt_enhance").removeHandler(handler)
            handler.close()


if __name__ == "__main__":
    sys.exit(main())
