"""The training loop: one generator step (and discriminator step) per mini-batch, validation, checkpoints.

Per mini-batch: the generator enhances the degraded windows; with ``--gan`` the discriminator first
learns clean vs enhanced (non-saturating BCE with logits), then the generator minimises
``waveform L1/L2 + stft * MR-STFT + gan * adversarial + ae * autoencoder features``. Gradients are
clipped by norm; AdamW (or Adam); mixed precision (fp16 with a grad scaler) only on CUDA.

Per epoch: validation on the ``val`` split (rank 0, the result broadcast), ``ReduceLROnPlateau`` on
the validation metric with ``--scheduler``, ``best.pt`` when the metric improves, and ``last.pt``
with everything a resume needs (see :mod:`rt_enhance.training.state`), so that 2 epochs equal
1 epoch + ``--continue`` + 1 epoch; with ``--average N`` also ``average.pt``, the mean weights of
the last N epochs (:mod:`rt_enhance.training.average`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from rt_enhance.model import AudioModel, Autoencoder, save_checkpoint
from rt_enhance.model.checkpoint import CheckpointError, load_checkpoint
from rt_enhance.training import losses, models, runtime
from rt_enhance.training.average import keep_epoch
from rt_enhance.training.config import ConfigError, TrainConfig
from rt_enhance.training.data import DataSpec, TrainData, make_train_data
from rt_enhance.training.degrade import Pipeline, parse_pipeline
from rt_enhance.training.logs import NullLog, open_log
from rt_enhance.training.runtime import Runtime
from rt_enhance.training.state import (
    Progress,
    RunDir,
    RunError,
    capture_rng,
    load_last,
    model_record,
    restore_rng,
    save_best,
    save_last,
    write_config,
)

logger = logging.getLogger(__name__)

#: Named figures of a step, an epoch or a validation (``{"loss": ..., "si_sdr": ...}``).
Metrics = dict[str, float]

Optimizer = torch.optim.Optimizer
Scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau


@dataclass(frozen=True)
class Objective:
    """What each mini-batch optimises, as plain values taken from the run's configuration at the edge: the
    waveform ``loss`` (L1, L2, SPEC, ...), the weights of the MR-STFT (``stft``), log-spectral distance (``lsd``),
    perceptual disturbance (``pesq``), adversarial (``gan``), discriminator feature-matching (``fm``) and
    autoencoder-feature (``ae``) terms, the SDR term's weight in the spectral losses (``sdr``), whether the
    discriminator sees the input (``conditional``), and the gradient-norm ``clip`` (0: none)."""

    loss: str
    stft: float = 0.0
    gan: float = 0.0
    ae: float = 0.0
    lsd: float = 0.0
    pesq: float = 0.0
    conditional: bool = False
    clip: float = 0.0
    fm: float = 0.0
    voice: float = 0.0
    sdr: float | None = None  # the spectral losses' SDR-term weight; None: each loss's own
    spec_weighting: str = "flat"  # the spectral losses' bins: "flat" (alike) or "erb" (each auditory band alike)
    rate: int = 48000  # the model's, for the bins' frequencies

    @classmethod
    def of(cls, cfg: TrainConfig) -> Objective:
        return cls(**{f.name: getattr(cfg, f.name) for f in fields(cls)})  # each field is the option of its name

    def reconstruction(self, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The waveform loss plus the weighted log-spectral distance and perceptual disturbance, on aligned ``[B, 1, W]`` windows."""
        weights = losses.erb_bin_weights(self.rate) if self.spec_weighting == "erb" else None
        total = losses.waveform_loss(y, target, self.loss, self.sdr, weights)
        if self.lsd:
            total = total + self.lsd * losses.log_spectral_distance(y, target)
        if self.pesq:
            total = total + self.pesq * losses.perceptual_disturbance(y, target, self.rate)
        return total


@dataclass
class Adversary:
    """The GAN discriminator (``--gan`` > 0) and what trains it."""

    discriminator: models.AnyDiscriminator
    opt: Optimizer
    scaler: torch.amp.GradScaler
    sched: Scheduler | None = None


@dataclass
class Parts:
    """Everything that learns, and how."""

    generator: AudioModel
    g_model: nn.Module  # the generator, or its DistributedDataParallel wrapper
    opt_g: Optimizer
    scaler_g: torch.amp.GradScaler
    objective: Objective
    sched_g: Scheduler | None = None
    adversary: Adversary | None = None
    autoencoder: Autoencoder | None = None
    stft: losses.MultiResolutionSTFTLoss | None = None

    @property
    def lookahead(self) -> int:
        return models.lookahead_of(self.generator)

    @property
    def discriminator(self) -> models.AnyDiscriminator | None:
        return None if self.adversary is None else self.adversary.discriminator


@dataclass
class FitResult:
    """What training leaves for evaluation."""

    generator: AudioModel
    discriminator: models.AnyDiscriminator | None
    meta: dict[str, Any]
    progress: Progress
    data: TrainData
    pipeline: Pipeline
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------------------------


def make_optimizer(params, *, kind: str, lr: float, weight_decay: float) -> Optimizer:
    """AdamW (decoupled weight decay) or Adam."""
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


PLATEAU_FLOOR = 1 / 32  # the plateau schedule halves a rate at most five times


def make_scheduler(opt: Optimizer, enabled: bool, patience: int) -> Scheduler | None:
    """Halve the learning rates after ``patience`` epochs without a better (maximised) validation score, down to
    PLATEAU_FLOOR of the rates they start at. Without a floor, a validation score of a dozen batches, whose best is
    a lucky epoch that later ones seldom beat, halved the rate every third epoch: session 21's run fell from 5e-4 to
    1.5e-8 in 51 epochs and learnt next to nothing after the first twenty."""
    if not enabled:
        return None
    floors = [float(group["lr"]) * PLATEAU_FLOOR for group in opt.param_groups]
    return Scheduler(opt, mode="max", factor=0.5, patience=patience, min_lr=floors)


def _reconfigure(sched: Scheduler | None, lr: float, patience: int) -> None:
    """A schedule restored from a run takes this run's patience and the floor under ``lr`` (a run saved before both
    existed stored a patience of 2 and no floor)."""
    if sched is not None:
        sched.patience = patience
        sched.min_lrs = [lr * PLATEAU_FLOOR for _ in sched.min_lrs]


def new_generator(cfg: TrainConfig) -> AudioModel:
    kwargs = models.generator_kwargs(
        size=cfg.size, depth=cfg.depth, dropout=cfg.dropout, rate=cfg.rate, model_args=cfg.model_args, arch=cfg.arch
    )
    if cfg.voice:
        kwargs["voice_head"] = True
    torch.manual_seed(cfg.seed)
    generator = models.build_generator(cfg.arch, kwargs)
    generator.check_window(cfg.window)
    if cfg.init_from:
        warm_start(generator, cfg.init_from)
    return generator


# Init arguments that change a spectral model's time-frequency grid and recurrent width, not what its
# convolutions compute: a model for another preset (speech -> speech-monitor) starts from the tensors that fit.
GRID_KWARGS = frozenset({"hop", "frame", "bands", "gru_hidden"})


#: Arguments that add a head starting at zero (its model begins as the model without it), by the head's weight prefix:
#: such a model may start from the same model without the head.
ADDED_HEADS = {
    "copies": "copy_head.",
    "df_bins": "df_head.",
    "df_order": "df_head.",
    "df_phase": "df_phase.",
    "band_gru": "band_context.",
    "voice_head": "voice.",
    "comb": "comb_",
    "floor": "floor_in.",
}


def warm_start(generator: AudioModel, path: str) -> None:
    """Copy the weights of checkpoint ``path`` into ``generator``; the two must be the same model, except
    that a spectral model with an added head (spectral replication's copies, 60 dB down at the start; deep
    filtering, zero at the start: :data:`ADDED_HEADS`) may start from the same model without it (the head keeps
    its fresh initialisation), and that models differing only in GRID_KWARGS share every tensor whose name and
    shape agree (the others keep their fresh initialisation); a model whose only difference is a wider
    bottleneck GRU starts as the narrower one (``SpectralUNet.widened``)."""
    from rt_enhance.model.checkpoint import CheckpointError, load_checkpoint

    source, _ = load_checkpoint(path)
    theirs, ours = dict(source.init_kwargs), dict(generator.init_kwargs)
    added = {key for key in ADDED_HEADS if key in ours and key not in theirs}
    for key in added:
        del ours[key]
    differ = {key for key in theirs.keys() | ours.keys() if theirs.get(key) != ours.get(key)}
    if type(source) is not type(generator) or not differ <= GRID_KWARGS:
        raise CheckpointError(
            f"--init_from {path}: it holds {type(source).__name__}{source.init_kwargs}, "
            f"not the {type(generator).__name__}{generator.init_kwargs} this run builds"
        )
    if differ:
        _share_fitting(generator, source.state_dict(), path, differ, theirs, ours)
        return
    missing, _ = generator.load_state_dict(source.state_dict(), strict=not added)
    heads = tuple(ADDED_HEADS[key] for key in added)
    assert all(key.startswith(heads) for key in missing), missing
    fresh = " and ".join(sorted({head.rstrip(".") for head in heads}))
    logger.info("generator initialised from %s%s", path, f" (new {fresh})" if added else "")


def _share_fitting(generator: AudioModel, state: dict, path: str, differ: set[str], theirs: dict, mine: dict) -> None:
    ours = generator.state_dict()
    fitting = {k: v for k, v in state.items() if k in ours and ours[k].shape == v.shape}
    from rt_enhance.model.spectral import SpectralUNet

    if differ == {"gru_hidden"} and isinstance(generator, SpectralUNet) and 0 < theirs["gru_hidden"] < mine["gru_hidden"]:
        fitting.update(generator.widened(state, theirs["gru_hidden"]))  # a wider GRU that starts as the narrower one
        logger.info("the bottleneck GRU widened from %d to %d units", theirs["gru_hidden"], mine["gru_hidden"])
    generator.load_state_dict(fitting, strict=False)
    fresh = sorted(k for k in ours if k not in fitting)
    logger.info(
        "generator initialised from %s where it fits (%s differ): %d of %d tensors; fresh: %s",
        path,
        ", ".join(sorted(differ)),
        len(fitting),
        len(ours),
        ", ".join(fresh) or "none",
    )


def trained_parameters(generator: AudioModel, train_only: str) -> list[nn.Parameter]:
    """The generator's parameters that the optimiser moves: all, or (``--train_only``) those whose names begin with one
    of the comma-separated prefixes, the others frozen (``requires_grad`` off)."""
    prefixes = tuple(p.strip() for p in train_only.split(",") if p.strip())
    if not prefixes:
        return list(generator.parameters())
    chosen = [p for name, p in generator.named_parameters() if name.startswith(prefixes)]
    if not chosen:
        names = sorted({name.split(".")[0] for name, _ in generator.named_parameters()})
        raise ConfigError(f"--train_only {train_only}: no weight of {type(generator).__name__} begins so; its layers: {', '.join(names)}")
    for name, p in generator.named_parameters():
        p.requires_grad_(name.startswith(prefixes))
    counts = sum(p.numel() for p in chosen), sum(p.numel() for p in generator.parameters())
    logger.info("training %d of %d weights (--train_only %s); the rest frozen", *counts, train_only)
    return chosen


def build_parts(cfg: TrainConfig, rt: Runtime, generator: AudioModel, autoencoder: Autoencoder | None) -> Parts:
    generator.to(rt.device).train()
    trained = trained_parameters(generator, cfg.train_only)
    parts = Parts(
        generator=generator,
        g_model=runtime.wrap(generator, rt),
        opt_g=make_optimizer(trained, kind=cfg.optimizer, lr=cfg.lr_g, weight_decay=cfg.weight_decay),
        scaler_g=torch.amp.GradScaler(rt.device.type, enabled=rt.amp),
        objective=Objective.of(cfg),
        autoencoder=autoencoder,
        stft=losses.MultiResolutionSTFTLoss().to(rt.device) if cfg.stft > 0 else None,
    )
    parts.sched_g = make_scheduler(parts.opt_g, cfg.scheduler, cfg.patience)
    if cfg.gan > 0:
        disc = models.build_adversary(generator, kind=cfg.disc, window=cfg.window, conditional=cfg.conditional)
        add_discriminator(parts, cfg, rt, disc)
    return parts


def add_discriminator(parts: Parts, cfg: TrainConfig, rt: Runtime, disc: models.AnyDiscriminator) -> None:
    disc = disc.to(rt.device).train()
    opt = make_optimizer(disc.parameters(), kind=cfg.optimizer, lr=cfg.lr_d, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler(rt.device.type, enabled=rt.amp)
    parts.adversary = Adversary(disc, opt, scaler, make_scheduler(opt, cfg.scheduler, cfg.patience))


# ---------------------------------------------------------------------------------------------------------------
# One mini-batch
# ---------------------------------------------------------------------------------------------------------------


def optimize(
    loss: torch.Tensor, opt: Optimizer, module: nn.Module, scaler: torch.amp.GradScaler, clip: float, rt: Runtime, *, average: bool = False
) -> None:
    """Backward, (average over processes), unscale, clip, step."""
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if average:
        runtime.average_gradients(module, rt)
    if clip > 0:
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_(module.parameters(), clip)
    scaler.step(opt)
    scaler.update()


def discriminator_step(
    adv: Adversary, obj: Objective, x: torch.Tensor, fake: torch.Tensor, real: torch.Tensor, rt: Runtime, dtype: torch.dtype | None = None
) -> Metrics:
    """Train the discriminator on clean (``real``) vs enhanced (``fake``, detached) windows ``[B, 1, W]``, under
    autocast to ``dtype`` (default: float16 where the run uses AMP, else none)."""
    disc, cond = adv.discriminator, (x if obj.conditional else None)
    dtype = dtype or (torch.float16 if rt.amp else None)
    disc.requires_grad_(True)
    with torch.autocast(rt.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        loss, stats = disc.discriminator_loss(real, fake, cond)
    optimize(loss, adv.opt, disc, adv.scaler, obj.clip, rt, average=True)
    return {"d_loss": loss.item(), **stats}


def adversary_step(
    parts: Parts, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor, rt: Runtime, dtype: torch.dtype | None = None
) -> Metrics:
    """The discriminator's step on this mini-batch (none without ``--gan``), the windows aligned for the lookahead;
    the discriminator is frozen again for the generator's step that follows."""
    if parts.adversary is None:
        return {}
    lookahead = parts.lookahead
    stats = discriminator_step(
        parts.adversary,
        parts.objective,
        losses.align_padded(x, lookahead, output=False),
        losses.align_padded(y.detach(), lookahead, output=True),
        losses.align_padded(target, lookahead, output=False),
        rt,
        dtype,
    )
    parts.adversary.discriminator.requires_grad_(False)
    return stats


def generator_loss(
    parts: Parts, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor, voice: torch.Tensor | None = None
) -> tuple[torch.Tensor, Metrics]:
    """The weighted sum of the generator's losses (``parts.objective``) and its terms; all inputs ``[B, 1, W]``
    float32; ``voice`` ``[B, 1]``: each window's voice-file flag, for the voice-activity term."""
    lookahead, obj = parts.lookahead, parts.objective
    y_al, t_al = losses.align(y, target, lookahead)
    total = obj.reconstruction(y_al, t_al)
    terms = {"recon": total.item()}
    if parts.stft is not None:
        spectral = parts.stft(y_al, t_al)
        total, terms["stft"] = total + obj.stft * spectral, spectral.item()
    y_pad = losses.align_padded(y, lookahead, output=True)
    t_pad = losses.align_padded(target, lookahead, output=False)
    if parts.discriminator is not None:
        cond = losses.align_padded(x, lookahead, output=False) if obj.conditional else None
        adversarial, matching = parts.discriminator.generator_loss(y_pad, t_pad, cond)
        total, terms["adv"] = total + obj.gan * adversarial, adversarial.item()
        if obj.fm > 0:
            total, terms["fm"] = total + obj.fm * matching, matching.item()
    if obj.voice:
        from rt_enhance.model.spectral import SpectralUNet

        model = parts.generator
        assert isinstance(model, SpectralUNet) and model.voice_logits is not None and voice is not None, "--voice: see validate_config"
        labels = losses.voice_activity(target, voice, model.hop, model.voice_logits.shape[1], model.sample_rate)
        activity = losses.voice_loss(model.voice_logits, labels)
        total, terms["voice"] = total + obj.voice * activity, activity.item()
    if parts.autoencoder is not None:
        feat = losses.feature_loss(parts.autoencoder.encode(y_pad), parts.autoencoder.encode(t_pad))
        total, terms["feat"] = total + obj.ae * feat, feat.item()
    terms["loss"] = total.item()
    return total, terms


def train_step(parts: Parts, x: torch.Tensor, target: torch.Tensor, rt: Runtime, voice: torch.Tensor | None = None) -> Metrics:
    """One mini-batch ``[B, 1, W]`` (degraded, clean; ``voice`` ``[B, 1]`` where labelled): discriminator step,
    then generator step."""
    with torch.autocast(rt.device.type, dtype=torch.float16, enabled=rt.amp):
        y = parts.g_model(x)
    y = y.float()
    stats = adversary_step(parts, x, y, target, rt)
    loss, terms = generator_loss(parts, x, y, target, voice)
    optimize(loss, parts.opt_g, parts.generator, parts.scaler_g, parts.objective.clip, rt)
    return {**terms, **stats}


# ---------------------------------------------------------------------------------------------------------------
# Epochs
# ---------------------------------------------------------------------------------------------------------------


def steps_per_epoch(data: TrainData, count: int) -> int:
    available = len(data.train)
    return available if count == -1 else min(count, available)


def train_epoch(parts: Parts, data: TrainData, cfg: TrainConfig, rt: Runtime, epoch: int, progress: Progress, log: NullLog) -> Metrics:
    """One epoch of at most ``--count`` mini-batches; returns the mean of each logged term."""
    data.set_epoch(epoch, cfg.seed)
    parts.generator.train()
    steps = steps_per_epoch(data, cfg.count)
    sums: Metrics = {}
    bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", disable=True if not rt.main else None, leave=False)
    for i, (x, target, *label) in enumerate(data.train):
        if i >= steps:
            break
        voice = label[0].to(rt.device) if label else None
        stats = train_step(parts, x.to(rt.device, non_blocking=True), target.to(rt.device, non_blocking=True), rt, voice)
        progress.step += 1
        progress.windows_seen += x.shape[0] * rt.world
        for key, value in stats.items():
            sums[key] = sums.get(key, 0.0) + value
        if rt.main:
            log.scalars("train", stats, progress.step)
            bar.update(1)
            bar.set_postfix(loss=f"{stats['loss']:.4g}")
    bar.close()
    return {key: value / max(steps, 1) for key, value in sums.items()}


@torch.no_grad()
def validate(parts: Parts, val: Iterable[Any] | None, rt: Runtime, *, val_count: int = -1) -> tuple[Metrics, dict | None]:
    """Validation loss, SI-SDR and SNR over the batches ``val`` (``(degraded, clean)`` ``[B, 1, W]``; means over
    windows; at most ``val_count`` batches, -1: all) on rank 0, broadcast; and one example (rank 0)."""
    result: tuple[Metrics, dict | None] = ({}, None)
    if rt.main and val is not None:
        result = _validate_here(parts, val, rt, val_count)
    metrics = runtime.broadcast(result[0], rt)
    return metrics, result[1]


def _validate_here(parts: Parts, val: Iterable[Any], rt: Runtime, val_count: int) -> tuple[Metrics, dict | None]:
    generator, lookahead = parts.generator.eval(), parts.lookahead
    sums, count, example = {"loss": 0.0, "si_sdr": 0.0, "snr": 0.0}, 0, None
    for i, (x, target, *_) in enumerate(val):  # a voice-file label, where given, is for training only
        if val_count != -1 and i >= val_count:
            break
        x, target = x.to(rt.device), target.to(rt.device)
        with torch.autocast(rt.device.type, dtype=torch.float16, enabled=rt.amp):
            y = generator(x)
        y_al, t_al = losses.align(y.float(), target, lookahead)
        sums["loss"] += parts.objective.reconstruction(y_al, t_al).item() * x.shape[0]
        sums["si_sdr"] += losses.batch_si_sdr(y_al, t_al).sum().item()
        sums["snr"] += losses.batch_snr(y_al, t_al).sum().item()
        count += x.shape[0]
        if example is None:
            example = {"degraded": x[0, 0].cpu().numpy(), "enhanced": y[0, 0].float().cpu().numpy(), "clean": target[0, 0].cpu().numpy()}
    generator.train()
    return {key: value / max(count, 1) for key, value in sums.items()}, example


def score(val: Metrics, train: Metrics, metric: str) -> float:
    """The maximised score of an epoch: the validation metric, or minus a loss."""
    if not val:
        return -train.get("loss", math.inf)
    return -val["loss"] if metric == "loss" else val[metric]


def metric_of(value: float, metric: str) -> float:
    """The metric a :func:`score` was made from: the loss for ``loss``, else the score itself."""
    return -value if metric == "loss" else value


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints and resume
# ---------------------------------------------------------------------------------------------------------------


def resume_record(parts: Parts, progress: Progress, rt: Runtime) -> dict[str, Any]:
    """Everything besides the generator's weights that a resume restores (collective under DDP)."""

    def state(obj: Any) -> Any:
        return None if obj is None else obj.state_dict()

    adv = parts.adversary
    opt_d, sched_d, scaler_d = (None, None, None) if adv is None else (adv.opt, adv.sched, adv.scaler)
    return {
        "progress": progress.to_plain(),
        "rng": runtime.gather(capture_rng(), rt),
        "opt_g": state(parts.opt_g),
        "sched_g": state(parts.sched_g),
        "scaler_g": state(parts.scaler_g),
        "discriminator": None if adv is None else model_record(adv.discriminator),
        "opt_d": state(opt_d),
        "sched_d": state(sched_d),
        "scaler_d": state(scaler_d),
    }


def apply_resume(parts: Parts, record: dict[str, Any], cfg: TrainConfig, rt: Runtime, *, new_lr: tuple[str, ...] = ()) -> Progress:
    """Restore optimizers, schedulers, scalers, the discriminator and RNG from ``last.pt``'s record.

    ``new_lr`` names the learning rates given anew for this stage (``"lr_g"``, ``"lr_d"``: flags on the command
    line): that optimizer takes ``cfg``'s rate and its plateau schedule starts again, since the one restored may
    have halved the rate to nothing (a finished run) and its best metric was of another validation set. The
    other rates are restored with everything else (an interrupted run goes on as it was)."""
    parts.opt_g.load_state_dict(record["opt_g"])
    _load_optional(parts.sched_g, record.get("sched_g"), "generator scheduler")
    _reconfigure(parts.sched_g, cfg.lr_g, cfg.patience)
    parts.scaler_g.load_state_dict(record["scaler_g"] or {})
    if "lr_g" in new_lr:
        parts.sched_g = _restart_rate(parts.opt_g, parts.sched_g, cfg.lr_g, "generator", cfg.scheduler, cfg.patience)
    adv = parts.adversary
    if adv is not None:
        if record.get("discriminator") is None:
            logger.warning("the run had no discriminator; --gan %g starts a fresh one", cfg.gan)
        else:
            adv.discriminator.load_state_dict(record["discriminator"]["state"])
            adv.opt.load_state_dict(record["opt_d"])
            _load_optional(adv.sched, record.get("sched_d"), "discriminator scheduler")
            _reconfigure(adv.sched, cfg.lr_d, cfg.patience)
            adv.scaler.load_state_dict(record["scaler_d"] or {})
            if "lr_d" in new_lr:
                adv.sched = _restart_rate(adv.opt, adv.sched, cfg.lr_d, "discriminator", cfg.scheduler, cfg.patience)
    rngs = record["rng"]
    restore_rng(rngs[rt.rank] if len(rngs) == rt.world else rngs[0])
    return Progress.from_plain(record["progress"])


def _restart_rate(opt: Optimizer, sched: Scheduler | None, lr: float, what: str, enabled: bool, patience: int) -> Scheduler | None:
    """``opt`` at ``lr`` with a fresh plateau schedule (see :func:`apply_resume`)."""
    before = [float(group["lr"]) for group in opt.param_groups]
    for group in opt.param_groups:
        group["lr"] = lr
    logger.info(
        "%s learning rate %g as given (the run's optimizer was at %s); its schedule starts again",
        what,
        lr,
        ", ".join(f"{b:g}" for b in before),
    )
    return make_scheduler(opt, enabled, patience) if sched is not None else None


def _load_optional(obj: Any, state: dict | None, what: str) -> None:
    if obj is None:
        return
    if state is None:
        logger.warning("the run had no %s; starting a fresh one", what)
        return
    obj.load_state_dict(state)


def make_meta(parts: Parts, cfg: TrainConfig, progress: Progress, val: Metrics, pipeline: Pipeline, epoch: int) -> dict[str, Any]:
    hours = progress.windows_seen * cfg.window / cfg.rate / 3600.0
    what = f"size '{cfg.size}'" if cfg.size else f"depth {cfg.depth}"
    training = {
        "dataset": cfg.dataset,
        "data_root": cfg.data_root,
        "preprocessing": cfg.preprocessing,
        "epochs": progress.epoch,
        "steps": progress.step,
        "windows_seen": progress.windows_seen,
        "hours_seen": hours,
        "arch": cfg.arch,
        "config": cfg.to_dict(),
    }
    metrics = {"val": {k: round(v, 6) for k, v in val.items()}, "epoch": epoch, "best_metric": cfg.best_metric}
    return models.build_meta(
        parts.generator,
        name=cfg.name,
        rate=cfg.rate,
        window=cfg.window,
        task=models.task_of(pipeline),
        description=f"{cfg.arch} U-Net ({what}) trained by rt-train on {cfg.dataset} data, preprocessing '{cfg.preprocessing}'",
        training=training,
        metrics=metrics,
        size=cfg.size,
    )


def end_epoch(
    parts: Parts, cfg: TrainConfig, run: RunDir, rt: Runtime, progress: Progress, pipeline: Pipeline, train: Metrics, val: Metrics
) -> dict[str, Any]:
    """Scheduler step, best/last checkpoints; returns the epoch's meta."""
    progress.epoch += 1
    value = score(val, train, cfg.best_metric)
    progress.history.append({"epoch": progress.epoch, **train, **{f"val_{k}": v for k, v in val.items()}})
    sched_d = None if parts.adversary is None else parts.adversary.sched
    for sched in (parts.sched_g, sched_d):
        if sched is not None:
            sched.step(value)
    improved = value > progress.best
    if improved:
        progress.best, progress.best_epoch = value, progress.epoch
    meta = make_meta(parts, cfg, progress, val, pipeline, progress.epoch)
    record = resume_record(parts, progress, rt)
    if rt.main:
        if improved:
            save_best(run, parts.generator, meta=meta)
        save_last(run, parts.generator, meta=meta, resume=record)
        if cfg.average:
            keep_epoch(run, progress.epoch, parts.generator, meta, cfg.average)
    return meta


# ---------------------------------------------------------------------------------------------------------------
# The autoencoder of the feature loss
# ---------------------------------------------------------------------------------------------------------------


def prepare_autoencoder(cfg: TrainConfig, run: RunDir, rt: Runtime, data: TrainData, generator: AudioModel) -> Autoencoder | None:
    """The frozen autoencoder for ``--ae``: ``--ae_model``, the run's ``autoencoder.pt``, or pretrained now."""
    if cfg.ae <= 0:
        return None
    path = Path(cfg.ae_model) if cfg.ae_model else run.autoencoder
    if path.is_file():
        autoencoder = _load_autoencoder(path, cfg.window)
    elif cfg.ae_model:
        raise RunError(f"--ae_model {cfg.ae_model} not found")
    else:
        autoencoder = pretrain_autoencoder(cfg, rt, data, generator)
        if rt.main:
            save_checkpoint(run.autoencoder, autoencoder, extra={"meta": {"trained_on": "clean windows", "epochs": cfg.ae_epochs}})
        runtime.barrier(rt)
    autoencoder.to(rt.device).eval().requires_grad_(False)
    return autoencoder


def _load_autoencoder(path: Path, window: int) -> Autoencoder:
    try:
        model, _ = load_checkpoint(path)
    except CheckpointError as exc:
        raise RunError(str(exc)) from None
    if not isinstance(model, Autoencoder):
        raise RunError(f"{path} holds a {type(model).__name__}, not an Autoencoder")
    model.check_window(window)
    logger.info("autoencoder of the feature loss: %s", path)
    return model


def pretrain_autoencoder(cfg: TrainConfig, rt: Runtime, data: TrainData, generator: AudioModel) -> Autoencoder:
    """Train an autoencoder to reconstruct clean windows (``--ae_epochs`` epochs, ``--lr_ae``)."""
    autoencoder = models.build_autoencoder(generator).to(rt.device).train()
    opt = make_optimizer(autoencoder.parameters(), kind=cfg.optimizer, lr=cfg.lr_ae, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler(rt.device.type, enabled=rt.amp)
    for epoch in range(cfg.ae_epochs):
        data.set_epoch(epoch, cfg.seed + 1)
        steps, total = steps_per_epoch(data, cfg.count), 0.0
        for i, (_, clean) in enumerate(
            tqdm(
                data.train, total=steps, desc=f"autoencoder {epoch + 1}/{cfg.ae_epochs}", disable=True if not rt.main else None, leave=False
            )
        ):
            if i >= steps:
                break
            clean = clean.to(rt.device)
            with torch.autocast(rt.device.type, dtype=torch.float16, enabled=rt.amp):
                loss = losses.waveform_loss(autoencoder(clean).float(), clean, "L2")
            optimize(loss, opt, autoencoder, scaler, cfg.clip, rt, average=True)
            total += loss.item()
        logger.info("autoencoder epoch %d/%d: reconstruction L2 %.4g", epoch + 1, cfg.ae_epochs, total / max(steps, 1))
    return autoencoder


# ---------------------------------------------------------------------------------------------------------------
# The whole run
# ---------------------------------------------------------------------------------------------------------------


def data_spec(cfg: TrainConfig) -> DataSpec:
    return DataSpec(
        kind=cfg.dataset,
        root=cfg.data_root,
        rate=cfg.rate,
        window=cfg.window,
        stride=cfg.stride,
        args=dict(cfg.dataset_args),
        seed=cfg.seed,
        train_n=None if cfg.train_n == -1 else cfg.train_n,
        batch=cfg.batch,
        workers=cfg.workers,
    )


def fit(cfg: TrainConfig, run: RunDir, rt: Runtime, *, new_lr: tuple[str, ...] = ()) -> FitResult:
    """Train (or resume) the run up to ``cfg.epochs`` epochs; the result holds the best generator. ``new_lr``: the
    learning rates a resumed run takes from ``cfg`` (:func:`apply_resume`)."""
    if cfg.resume:
        generator, _, record = load_last(run)
        done = int(record["progress"]["epoch"])
        if done >= cfg.epochs:
            raise RunError(
                f"run {cfg.name} has already trained {done} epoch(s) of -e {cfg.epochs}; pass -e N with N > {done} to train further"
            )
    else:
        generator, record = new_generator(cfg), None
    pipeline = parse_pipeline(cfg.preprocessing)
    data = make_train_data(data_spec(cfg), pipeline, rank=rt.rank, world=rt.world, pin=rt.device.type == "cuda")
    autoencoder = prepare_autoencoder(cfg, run, rt, data, generator)
    parts = build_parts(cfg, rt, generator, autoencoder)
    if record is not None:
        progress = apply_resume(parts, record, cfg, rt, new_lr=new_lr)
    else:
        progress = Progress()
        torch.manual_seed(cfg.seed * 7919 + 1 + rt.rank)  # dropout streams differ between processes
    if rt.main:
        write_config(run, cfg.to_dict())
    meta = run_epochs(parts, data, cfg, run, rt, progress, pipeline)
    return FitResult(parts.generator, parts.discriminator, meta, progress, data, pipeline)


def run_epochs(
    parts: Parts, data: TrainData, cfg: TrainConfig, run: RunDir, rt: Runtime, progress: Progress, pipeline: Pipeline
) -> dict[str, Any]:
    log = open_log(run.tb_dir, enabled=cfg.tensorboard and rt.main)
    meta: dict[str, Any] = {}
    try:
        for epoch in range(progress.epoch, cfg.epochs):
            start = time.perf_counter()
            train = train_epoch(parts, data, cfg, rt, epoch, progress, log)
            seconds = time.perf_counter() - start
            val, example = validate(parts, data.val, rt, val_count=cfg.val_count)
            meta = end_epoch(parts, cfg, run, rt, progress, pipeline, train, val)
            windows = steps_per_epoch(data, cfg.count) * cfg.batch
            report_epoch(cfg, rt, progress, train, val, windows / max(seconds, 1e-9), log, example)
    finally:
        log.close()
    return meta


def report_epoch(
    cfg: TrainConfig, rt: Runtime, progress: Progress, train: Metrics, val: Metrics, speed: float, log: NullLog, example: dict | None
) -> None:
    """Log the epoch (one line), its validation scalars, speed and an audio example."""
    if not rt.main:
        return
    val_text = ", ".join(f"{k} {v:.4g}" for k, v in val.items()) or "no validation split"
    best = " (best)" if progress.best_epoch == progress.epoch else ""
    logger.info(
        "epoch %d/%d: loss %.4g | val %s | %.1f windows/s%s", progress.epoch, cfg.epochs, train.get("loss", math.nan), val_text, speed, best
    )
    log.scalars("val", val, progress.step)
    log.scalars("epoch", {"windows_per_second": speed}, progress.step)
    if example is not None:
        log.audio("val_example", example, cfg.rate, progress.step)
