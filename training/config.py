"""``TrainConfig``: every ``rt-train`` option in one frozen dataclass, built at the edge.

Three layers, later ones winning: the stored configuration of the run being continued or loaded
(``runs/NAME/config.json``), then ``--config FILE.toml``, then the flags actually given on the
command line. Option names are the original tool's (``-c -o -e -b -w -s -d -n``, ``--dropout``,
``--train_n`` ... ``--scheduler``); its bool-ish options accept both the old form
(``--continue True``, ``--scheduler false``) and bare flags (``--continue``). Words such as
``true``/``false`` are turned into booleans here and nowhere else.

TOML keys are the long option names (``epochs = 3``, ``lr_g = 2e-4``, ``continue = true``,
``model_args = {width = 0.25}``, ``dataset_args = "val=0.2,test=0.1"`` or a table).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rt_enhance.realtime.errors import RtEnhanceError

logger = logging.getLogger(__name__)

ARCHS = ("windowed", "causal", "spectral")
LOSSES = ("L1", "L2", "SPEC", "DENOISE", "BWE")
#: ``--disc``: the window discriminator shaped like the generator, or HiFi-GAN's period and UnivNet's resolution
#: discriminators with feature matching (model/multidisc.py).
DISCRIMINATORS = ("unet", "mpd-mrd")
DEVICES = ("auto", "cpu", "cuda")
OPTIMIZERS = ("adam", "adamw")
BEST_METRICS = ("si_sdr", "snr", "loss")
SPEC_WEIGHTINGS = ("flat", "erb")
SPECTRAL_LOSSES = ("SPEC", "DENOISE", "BWE")  # the losses with an SDR term and weighted bins
DATASETS = ("simple", "pairs", "vctk", "maestro")
_TRUE = {"true", "yes", "on", "1", "y", "t"}
_FALSE = {"false", "no", "off", "0", "n", "f"}


class ConfigError(RtEnhanceError, ValueError):
    """An option value that cannot be used; one line for the user."""


def parse_bool(text: str | bool) -> bool:
    """``True``/``false``/``yes``/``0``... (any case) -> bool. The one place words become booleans."""
    if isinstance(text, bool):
        return text
    word = str(text).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_json_object(text: str | dict) -> dict[str, Any]:
    """A JSON object given as text (``'{"width": 0.25}'``) or already a dict (TOML table)."""
    if isinstance(text, dict):
        return dict(text)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"width\": 0.25}}', got {text!r}")
    return value


def parse_key_values(text: str | dict) -> dict[str, str]:
    """``--dataset_args``: ``"key=value,key=value"`` (bare values allowed, see parse_dataset_args) or a table."""
    if isinstance(text, dict):
        return {str(k): str(v) for k, v in text.items()}
    return {"__raw__": str(text)}


@dataclass(frozen=True)
class TrainConfig:
    """Every option of ``rt-train``. Field names are the long option names (``resume`` is ``--continue``)."""

    name: str = ""
    runs: str = "runs"
    count: int = -1
    out: int = 500
    epochs: int = 10
    batch: int = 32
    window: int = 2048
    stride: int = 1024
    depth: int = 4
    dropout: float = 0.5
    train_n: int = -1
    test_n: int = 1
    val_count: int = 50
    load: bool = False
    resume: bool = False
    overwrite: bool = False
    dataset: str = "simple"
    dataset_args: dict[str, str] = field(default_factory=dict)
    data_root: str = ""
    rate: int = 0
    preprocessing: str = ""
    loss: str = "L2"
    stft: float = 0.0
    lsd: float = 0.0
    pesq: float = 0.0
    sdr: float | None = None  # None: each spectral loss's own weight
    spec_weighting: str = "flat"
    voice: float = 0.0
    train_only: str = ""
    gan: float = 0.0
    disc: str = "unet"
    fm: float = 0.0
    conditional: bool = False
    ae: float = 0.0
    ae_model: str = ""
    ae_epochs: int = 2
    init_from: str = ""
    collab: bool = False
    collab_shape: int = 100
    collab_steps: int = 10
    collab_rate: float = 0.05
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    lr_ae: float = 1e-4
    scheduler: bool = False
    patience: int = 8
    optimizer: str = "adamw"
    weight_decay: float = 0.0
    clip: float = 10.0
    arch: str = "windowed"
    size: str = ""
    model_args: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    workers: int = 0
    threads: int = 0
    deterministic: bool = False
    best_metric: str = "si_sdr"
    average: int = 0
    evaluate: bool = True
    engine_eval: bool = True
    speech: bool = True
    tensorboard: bool = True

    def __post_init__(self) -> None:
        check_config(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (JSON and checkpoint ``meta`` safe)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @property
    def run_dir(self) -> Path:
        return Path(self.runs) / self.name

    @property
    def model_fields(self) -> dict[str, Any]:
        """The options that decide the generator's architecture (fixed once a run has started)."""
        return {k: getattr(self, k) for k in ("arch", "size", "depth", "dropout", "model_args", "rate")}


# ---------------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------------


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def check_config(cfg: TrainConfig) -> None:
    """Raise :class:`ConfigError` naming the first option whose value cannot work."""
    _require(cfg.epochs >= 0, f"--epochs must be >= 0, got {cfg.epochs}")
    _require(cfg.patience >= 0, f"--patience must be >= 0 epochs, got {cfg.patience}")
    _require(cfg.batch >= 1, f"--batch must be >= 1, got {cfg.batch}")
    _require(cfg.count == -1 or cfg.count >= 1, f"--count must be -1 (all) or >= 1, got {cfg.count}")
    _require(cfg.window > 0 and cfg.stride > 0, f"--window and --stride must be positive ({cfg.window}, {cfg.stride})")
    _require(cfg.depth >= 1, f"--depth must be >= 1, got {cfg.depth}")
    _require(0.0 <= cfg.dropout < 1.0, f"--dropout must lie in [0, 1), got {cfg.dropout}")
    _require(cfg.train_n == -1 or cfg.train_n >= 1, f"--train_n must be -1 (all) or >= 1, got {cfg.train_n}")
    _require(cfg.test_n >= 0, f"--test_n must be >= 0, got {cfg.test_n}")
    _require(cfg.rate >= 0, f"--rate must be a positive number of Hz, got {cfg.rate}")
    _require(cfg.loss in LOSSES, f"--loss must be one of {', '.join(LOSSES)}, got {cfg.loss!r}")
    _require(cfg.arch in ARCHS, f"--arch must be one of {', '.join(ARCHS)}, got {cfg.arch!r}")
    _require(cfg.device in DEVICES, f"--device must be one of {', '.join(DEVICES)}, got {cfg.device!r}")
    _require(cfg.optimizer in OPTIMIZERS, f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {cfg.optimizer!r}")
    _require(cfg.best_metric in BEST_METRICS, f"--best_metric must be one of {', '.join(BEST_METRICS)}")
    _require(cfg.dataset in DATASETS, f"--dataset must be one of {', '.join(DATASETS)}, got {cfg.dataset!r}")
    _require(cfg.disc in DISCRIMINATORS, f"--disc must be one of {', '.join(DISCRIMINATORS)}, got {cfg.disc!r}")
    _require(cfg.fm == 0 or cfg.gan > 0, "--fm needs a discriminator: give --gan > 0 too")
    _require(not (cfg.collab and cfg.disc != "unet"), "--collab refines towards one logit: it needs --disc unet")
    for key in ("stft", "lsd", "pesq", "voice", "gan", "fm", "ae", "weight_decay", "clip"):
        value = getattr(cfg, key)
        _require(math.isfinite(value) and value >= 0, f"--{key} must be a finite number >= 0, got {value}")
    _require(cfg.sdr is None or (math.isfinite(cfg.sdr) and cfg.sdr >= 0), f"--sdr must be a finite number >= 0, got {cfg.sdr}")
    _require(cfg.sdr is None or cfg.loss in SPECTRAL_LOSSES, f"--sdr weighs a term of SPEC, DENOISE, BWE; --loss is {cfg.loss}")
    _require(
        cfg.spec_weighting in SPEC_WEIGHTINGS, f"--spec_weighting must be one of {', '.join(SPEC_WEIGHTINGS)}, got {cfg.spec_weighting!r}"
    )
    _require(
        cfg.spec_weighting == "flat" or cfg.loss in SPECTRAL_LOSSES,
        f"--spec_weighting weighs the bins of SPEC, DENOISE, BWE; --loss is {cfg.loss}",
    )
    for key in ("lr_g", "lr_d", "lr_ae", "collab_rate"):
        value = getattr(cfg, key)
        _require(math.isfinite(value) and value > 0, f"--{key} must be a positive number, got {value}")
    labelled = "voices" in cfg.dataset_args
    _require(
        not cfg.voice or (labelled and cfg.arch == "spectral"),
        "--voice trains a spectral model's voice-activity head from labelled files: give --arch spectral and "
        "--dataset_args voices=FOLDER+FOLDER (the folders of voice files under --data_root)",
    )
    _require(not labelled or cfg.voice > 0, "dataset_args voices=... labels the files for --voice: give --voice too (e.g. 0.1)")
    _require(not (cfg.voice and (cfg.ae or cfg.collab)), "--voice does not combine with --ae or --collab yet")
    _require(cfg.workers >= 0 and cfg.threads >= 0, "--workers and --threads must be >= 0")
    _require(cfg.average >= 0, f"--average must be a number of epochs >= 0, got {cfg.average}")
    _require(cfg.collab_steps >= 0 and cfg.collab_shape >= 0, "--collab_steps and --collab_shape must be >= 0")
    _require(cfg.ae_epochs >= 1, f"--ae_epochs must be >= 1, got {cfg.ae_epochs}")
    _require(not (cfg.load and cfg.resume), "give either --load (evaluate) or --continue (train further), not both")
    _require(not (cfg.resume and cfg.overwrite), "give either --continue or --overwrite, not both")
    _require(
        "/" not in cfg.name and "\\" not in cfg.name and cfg.name not in (".", ".."),
        f"--name must be a plain folder name, got {cfg.name!r}",
    )


def check_complete(cfg: TrainConfig) -> None:
    """The options a run cannot start without (after all layers are merged)."""
    _require(bool(cfg.name), "-n/--name is required (the run folder under --runs)")
    if cfg.load:
        return
    _require(cfg.rate > 0, "--rate is required: the model's sample rate in Hz (e.g. --rate 16000)")
    _require(bool(cfg.data_root), "--data_root is required: the folder holding the training audio")


# ---------------------------------------------------------------------------------------------------------------
# Options: one table drives argparse, TOML and the stored configuration
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    dest: str
    flags: tuple[str, ...]
    convert: Callable[[Any], Any]
    help: str
    switch: bool = False  # bool-ish: bare flag means true, or an explicit true/false word


def _optional_float(value: Any) -> float | None:
    """A number, or None (a stored run's "not given")."""
    return None if value is None else float(value)


def _upper(text: str) -> str:
    return str(text).upper()


# fmt: off
OPTIONS: tuple[Option, ...] = (
    Option("count", ("-c", "--count"), int, "mini-batches per epoch, -1 = all (default -1)"),
    Option("out", ("-o", "--out"), int, "test output per file, in windows; -1 = whole files (default 500)"),
    Option("epochs", ("-e", "--epochs"), int, "total epochs of the run (default 10); --continue trains up to it"),
    Option("batch", ("-b", "--batch"), int, "mini-batch size, global over all processes (default 32)"),
    Option("window", ("-w", "--window"), int, "training window in samples (default 2048)"),
    Option("stride", ("-s", "--stride"), int, "stride between training windows (default 1024)"),
    Option("depth", ("-d", "--depth"), int, "U-Net depth (default 4; --size overrides)"),
    Option("name", ("-n", "--name"), str, "run name: the folder RUNS/NAME (required)"),
    Option("dropout", ("--dropout",), float, "dropout of the generator (default 0.5)"),
    Option("train_n", ("--train_n",), int, "training files used, -1 = all (default -1)"),
    Option("test_n", ("--test_n",), int, "test files evaluated (default 1)"),
    Option("val_count", ("--val_count",), int, "validation mini-batches per epoch, -1 = all (default 50)"),
    Option("load", ("--load",), parse_bool, "evaluate the trained run NAME instead of training", switch=True),
    Option("resume", ("--continue",), parse_bool, "resume run NAME where its last epoch ended", switch=True),
    Option("overwrite", ("--overwrite",), parse_bool, "train into an existing run folder from scratch", switch=True),
    Option("dataset", ("--dataset",), str, f"dataset layout: {', '.join(DATASETS)} (default simple)"),
    Option("dataset_args", ("--dataset_args",), parse_key_values, "layout options key=value,... (e.g. val=0.2)"),
    Option("data_root", ("--data_root",), str, "folder of the dataset (required)"),
    Option("rate", ("--rate",), int, "model sample rate in Hz (required)"),
    Option("preprocessing", ("--preprocessing",), str,
           "degradation pipeline, e.g. 'sample 8000 16000,whitenoise 0 0.01'"),
    Option("loss", ("--loss",), _upper, "reconstruction loss: L1 or L2 on samples (default L2, the original's), SPEC (compressed spectra), "
           "DENOISE (SPEC tilted against residual noise), or BWE (SPEC + log-spectral distance)"),
    Option("stft", ("--stft",), float, "weight of the multi-resolution STFT loss (default 0)"),
    Option("lsd", ("--lsd",), float, "weight of a log-spectral distance term added to the loss (default 0; BWE already "
           "holds 0.5): the benchmark's LSD, which weighs a quiet top octave as much as a loud one"),
    Option("pesq", ("--pesq",), float, "weight of the perceptual disturbance added to the loss (default 0): PESQ's "
           "model of hearing (Bark-band loudness, a dead zone, noise left in counted up to 12x, the worst frames "
           "weighing most), which scores residual noise in pauses as PESQ-wb does"),
    Option("sdr", ("--sdr",), _optional_float, "weight per dB of the clamped SDR term in the spectral losses SPEC, DENOISE and BWE "
           "(default: each loss's own, 0.05 for SPEC and BWE, 0.01 for DENOISE): the term keeps clean input intact and "
           "rewards waveform accuracy, which for noisy input means Wiener-like partial gains that leave noise in"),
    Option("spec_weighting", ("--spec_weighting",), str, "how the spectral losses SPEC, DENOISE and BWE weigh "
           "frequencies: flat (every bin alike, the default) or erb (each auditory band alike, 1/ERB(f)): on a flat "
           "sum the octaves above 8 kHz hold two thirds of a 48 kHz spectrum's weight"),
    Option("voice", ("--voice",), float, "weight of a voice-activity loss on a spectral model's bottleneck GRU (default 0): "
           "it learns that a voice is present or was a moment ago, from files labelled by dataset_args voices=...; "
           "the head is a training aid and never reaches the exported model"),
    Option("train_only", ("--train_only",), str, "train only the generator's weights whose names begin with one of these "
           "comma-separated prefixes, every other weight frozen (default: all): a head added to a trained model (comb_, "
           "df_head.) learns at a rate of its own without the rest drifting"),
    Option("gan", ("--gan",), float, "weight of the adversarial loss, 0 = no GAN (default 0)"),
    Option("disc", ("--disc",), str, "discriminator: unet (one logit per window, the original's) or mpd-mrd (HiFi-GAN's "
           "periods and UnivNet's resolutions, least squares; default unet)"),
    Option("fm", ("--fm",), float, "weight of the discriminator feature-matching loss (mpd-mrd; default 0)"),
    Option("conditional", ("--conditional",), parse_bool, "the discriminator also sees the degraded input",
           switch=True),
    Option("ae", ("--ae",), float, "weight of the autoencoder feature loss, 0 = off (default 0)"),
    Option("ae_model", ("--ae_model",), str, "trained autoencoder checkpoint (default: pretrain one in the run)"),
    Option("ae_epochs", ("--ae_epochs",), int, "epochs of autoencoder pretraining on clean audio (default 2)"),
    Option("init_from", ("--init_from",), str,
           "start the generator from this checkpoint's weights (same model; fresh optimizer): fine-tuning"),
    Option("collab", ("--collab",), parse_bool, "collaborative sampling at evaluation (offline only)", switch=True),
    Option("collab_shape", ("--collab_shape",), int, "discriminator shaping mini-batches (default 100)"),
    Option("collab_steps", ("--collab_steps",), int, "refinement steps per window, at most (default 10)"),
    Option("collab_rate", ("--collab_rate",), float, "refinement step, relative to the activation RMS (default 0.05)"),
    Option("lr_g", ("--lr_g",), float, "generator learning rate (default 1e-4)"),
    Option("lr_d", ("--lr_d",), float, "discriminator learning rate (default 1e-4)"),
    Option("lr_ae", ("--lr_ae",), float, "autoencoder learning rate (default 1e-4)"),
    Option("scheduler", ("--scheduler",), parse_bool, "halve learning rates when validation stalls", switch=True),
    Option("patience", ("--patience",), int, "epochs without a better validation score before --scheduler halves the rates (default 8)"),
    Option("optimizer", ("--optimizer",), str, "adam or adamw (default adamw)"),
    Option("weight_decay", ("--weight_decay",), float, "AdamW weight decay (default 0)"),
    Option("clip", ("--clip",), float, "gradient norm clipping, 0 = off (default 10)"),
    Option("arch", ("--arch",), str, "windowed (U-Net Generator), causal (streaming CausalUNet) or spectral (streaming SpectralUNet)"),
    Option("size", ("--size",), str,
           "named model size (tiny, small, base; stream-* with --arch causal; spec-* with --arch spectral); "
           "overrides --depth"),
    Option("model_args", ("--model_args",), parse_json_object,
           "more model arguments as JSON, e.g. '{\"prelu\": true}'"),
    Option("device", ("--device",), str, "cpu, cuda or auto (default auto)"),
    Option("amp", ("--amp",), parse_bool, "mixed precision on CUDA (default true; never on CPU)", switch=True),
    Option("seed", ("--seed",), int, "seed of weights, data order and degradations (default 0)"),
    Option("workers", ("--workers",), int, "DataLoader worker processes (default 0)"),
    Option("threads", ("--threads",), int, "torch CPU threads, 0 = torch's default"),
    Option("deterministic", ("--deterministic",), parse_bool, "deterministic algorithms only", switch=True),
    Option("best_metric", ("--best_metric",), str, "validation metric of best.pt: si_sdr, snr or loss"),
    Option("average", ("--average",), int, "also write average.pt, the mean weights of the last N epochs (0: off)"),
    Option("evaluate", ("--eval",), parse_bool, "evaluate on the test split after training (default true)",
           switch=True),
    Option("engine_eval", ("--engine_eval",), parse_bool, "also evaluate through the real-time engine", switch=True),
    Option("speech", ("--speech",), parse_bool, "report PESQ and STOI (speech metrics; default true)", switch=True),
    Option("tensorboard", ("--tensorboard",), parse_bool, "write TensorBoard logs (default true)", switch=True),
    Option("runs", ("--runs",), str, "folder of the run folders (default runs)"),
)
# fmt: on
_BY_DEST = {o.dest: o for o in OPTIONS}
_TOML_NAMES = {**{o.dest: o.dest for o in OPTIONS}, **{o.flags[-1].lstrip("-"): o.dest for o in OPTIONS}}


def build_parser() -> argparse.ArgumentParser:
    """The ``rt-train`` parser; every default is SUPPRESS so that only given flags appear."""
    p = argparse.ArgumentParser(
        prog="rt-train",
        argument_default=argparse.SUPPRESS,
        description="Train an rt-enhance model (U-Net on degraded/clean windows), evaluate it, and write a "
        "checkpoint rt-export turns into a live model.",
    )
    p.add_argument("--config", metavar="FILE.toml", help="options from a TOML file (flags override it)")
    for opt in OPTIONS:
        if opt.switch:
            p.add_argument(*opt.flags, dest=opt.dest, type=opt.convert, nargs="?", const=True, metavar="BOOL", help=opt.help)
        else:
            p.add_argument(*opt.flags, dest=opt.dest, type=opt.convert, help=opt.help)
    return p


def parse_flags(argv: list[str] | None) -> tuple[dict[str, Any], str | None]:
    """The flags actually given (converted) and the ``--config`` path."""
    values = vars(build_parser().parse_args(argv))
    return values, values.pop("config", None)


def given_rates(flags: dict[str, Any]) -> tuple[str, ...]:
    """The learning rates among ``flags`` (:func:`parse_flags`): a resumed run takes them instead of its optimizer's."""
    return tuple(key for key in ("lr_g", "lr_d") if key in flags)


def read_toml(path: str | Path) -> dict[str, Any]:
    """Options from a TOML file, keyed by field name and converted like flags."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return convert_layer(data, str(path))


def convert_layer(data: dict[str, Any], where: str) -> dict[str, Any]:
    """Map option names to field names and convert each value; unknown keys raise :class:`ConfigError`."""
    out = {}
    for key, value in data.items():
        dest = _TOML_NAMES.get(key.replace("-", "_"))
        if dest is None:
            raise ConfigError(f"{where}: unknown option {key!r}")
        out[dest] = _convert(_BY_DEST[dest], value, where)
    return out


def _convert(opt: Option, value: Any, where: str) -> Any:
    if opt.convert in (int, float, _optional_float) and isinstance(value, bool):
        raise ConfigError(f"{where}: {opt.dest} must be a number, got {value!r}")
    if opt.convert is int and isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"{where}: {opt.dest} must be a whole number, got {value!r}")
    try:
        return opt.convert(value)
    except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {opt.dest}: {exc}") from None


def make_config(*layers: dict[str, Any]) -> TrainConfig:
    """A :class:`TrainConfig` from layers of field values, later layers winning."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    if "dataset_args" in merged:
        merged["dataset_args"] = _dataset_args(merged["dataset_args"], merged.get("dataset", "simple"))
    unknown = set(merged) - set(_BY_DEST)
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(sorted(unknown))}")
    return TrainConfig(**merged)


def _dataset_args(value: dict[str, str], kind: str) -> dict[str, str]:
    if "__raw__" not in value:
        return dict(value)
    from rt_enhance.training.datasets import DatasetError, parse_dataset_args  # torch: not for --help

    try:
        return parse_dataset_args(value["__raw__"], kind)
    except DatasetError as exc:
        raise ConfigError(str(exc)) from None


def stored_layer(stored: dict[str, Any]) -> dict[str, Any]:
    """The stored configuration of a run, minus what only describes one invocation."""
    if stored.get("sdr") == -1.0:  # runs stored before session 20 wrote "not given" as -1
        stored = {**stored, "sdr": None}
    return {k: v for k, v in convert_layer(stored, "stored configuration").items() if k not in ("load", "resume", "overwrite")}
