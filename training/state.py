"""Run folders, checkpoints and resumable training state.

A run lives in ``RUNS/NAME/``::

    config.json         the merged configuration (what --continue and --load start from)
    last.pt             generator checkpoint + everything needed to resume (written every epoch)
    best.pt             generator checkpoint with the best validation metric (what rt-export reads)
    average.pt          with --average N: the mean weights of the last N epochs (rt_enhance.training.average)
    epochs/             with --average N: those N epochs' weights, e0012.pt, ...
    autoencoder.pt      the pretrained autoencoder of the feature loss (--ae)
    collab_discriminator.pt   the discriminator shaped for collaborative sampling (--collab)
    tb/                 TensorBoard logs
    eval/               enhanced test files, metrics.md / metrics.json, spectrogram.png

Every file is written to a temporary name and ``os.replace``d, so a crash never leaves a torn file.
``last.pt`` is one :func:`rt_enhance.model.save_checkpoint` file: the resume state (optimizers,
schedulers, grad scaler, RNG of python / numpy / torch, epoch, step, best metric, discriminator)
rides in its ``extra`` as plain types and tensors, so it loads with ``weights_only=True``.

An existing run folder is never reused unless ``--continue``, ``--load`` or ``--overwrite`` says so,
and nothing in it is ever deleted but the weights in ``epochs/`` older than the last N of ``--average N``.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rt_enhance.model import AudioModel, build_model
from rt_enhance.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from rt_enhance.realtime.errors import RtEnhanceError
from rt_enhance.realtime.fileio import atomic_write_text
from rt_enhance.realtime.paths import make_folder

logger = logging.getLogger(__name__)

STATE_VERSION = 1


class RunError(RtEnhanceError, ValueError):
    """A run folder that cannot be used as asked; one line for the user."""


class _InRun:
    """A file or folder of a run, read as an attribute of :class:`RunDir`: ``run.last`` is ``run.path / "last.pt"``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, run: RunDir, owner: type[RunDir]) -> Path:
        return run.path / self.name


@dataclass(frozen=True)
class RunDir:
    """The paths of one run folder (the module docstring says what each holds)."""

    path: Path
    last = _InRun("last.pt")
    best = _InRun("best.pt")
    average = _InRun("average.pt")
    epochs = _InRun("epochs")
    config = _InRun("config.json")
    autoencoder = _InRun("autoencoder.pt")
    collab_discriminator = _InRun("collab_discriminator.pt")
    eval_dir = _InRun("eval")
    tb_dir = _InRun("tb")


def require_trained(run: RunDir, what: str) -> None:
    """Raise :class:`RunError` unless ``run`` holds a trained run (``last.pt``); ``what`` names the flag."""
    if not run.last.is_file():
        raise RunError(f"{what}: {run.path} holds no trained run (no last.pt); train it first without {what}")


def open_run(path: Path, *, resume: bool, load: bool, overwrite: bool) -> RunDir:
    """The run folder for this invocation; refuse to reuse one unless asked, or to continue a missing one."""
    run = RunDir(Path(path))
    exists = run.path.exists() and any(run.path.iterdir())
    if resume or load:
        require_trained(run, "--continue" if resume else "--load")
    if exists and not (resume or load or overwrite):
        raise RunError(
            f"run folder {run.path} already exists; pass --continue to resume it, --load to evaluate it, "
            "--overwrite to train into it from scratch, or choose another --name"
        )
    make_folder(run.path)
    return run


def read_stored_config(run: RunDir) -> dict[str, Any]:
    """The configuration a run was started with (``config.json``); {} when it has none."""
    if not run.config.is_file():
        return {}
    try:
        return json.loads(run.config.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunError(f"{run.config} is damaged ({exc.msg}); fix or remove it") from None


def write_config(run: RunDir, config: dict[str, Any]) -> None:
    atomic_write_text(run.config, json.dumps(config, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------------------------------------------------------
# RNG state as plain types
# ---------------------------------------------------------------------------------------------------------------


def capture_rng() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) global RNG states, as checkpoint-safe plain types and tensors."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": [version, list(internal), gauss],
        "numpy": {
            **np_state,
            "state": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)), "pos": int(np_state["state"]["pos"])},
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Undo :func:`capture_rng`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = dict(state["numpy"])
    np_state["state"] = {"key": state["numpy"]["state"]["key"].numpy().astype(np.uint32), "pos": state["numpy"]["state"]["pos"]}
    np.random.set_state(np_state)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------------------------
# Progress and the resumable state
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Progress:
    """Counters that survive a resume. ``epoch`` counts completed epochs."""

    epoch: int = 0
    step: int = 0
    windows_seen: int = 0
    best: float = float("-inf")
    best_epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def to_plain(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": self.step,
            "windows_seen": self.windows_seen,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "history": [dict(h) for h in self.history],
        }

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> Progress:
        return cls(
            int(data["epoch"]),
            int(data["step"]),
            int(data["windows_seen"]),
            float(data["best"]),
            int(data["best_epoch"]),
            [dict(h) for h in data["history"]],
        )


def model_record(model: AudioModel) -> dict[str, Any]:
    """A sub-model (discriminator) as plain types + tensors: ``{class, kwargs, state}``."""
    return {"class": type(model).__name__, "kwargs": dict(model.init_kwargs), "state": model.state_dict()}


def model_from_record(record: dict[str, Any]) -> AudioModel:
    model = build_model(record["class"], record["kwargs"])
    model.load_state_dict(record["state"])
    return model


def save_last(run: RunDir, generator: AudioModel, *, meta: dict[str, Any], resume: dict[str, Any]) -> None:
    """``last.pt``: the generator, its ``meta`` and the resume state (see :func:`resume_state`)."""
    save_checkpoint(run.last, generator, extra={"meta": meta, "resume": {"version": STATE_VERSION, **resume}})


def save_best(run: RunDir, generator: AudioModel, *, meta: dict[str, Any]) -> None:
    """``best.pt``: the generator and its ``meta`` only (what rt-export needs)."""
    save_checkpoint(run.best, generator, extra={"meta": meta})


def load_last(run: RunDir) -> tuple[AudioModel, dict[str, Any], dict[str, Any]]:
    """The generator of ``last.pt`` (train mode), its ``meta`` and the resume state."""
    try:
        model, extra = load_checkpoint(run.last)
    except CheckpointError as exc:
        raise RunError(str(exc)) from None
    resume = extra.get("resume")
    if not isinstance(resume, dict) or resume.get("version") != STATE_VERSION:
        raise RunError(f"{run.last} holds no resumable training state of version {STATE_VERSION}")
    return model.train(), dict(extra.get("meta") or {}), resume


def load_for_eval(run: RunDir) -> tuple[AudioModel, dict[str, Any], Path]:
    """The generator to evaluate: ``best.pt``, else ``last.pt``; eval mode."""
    path = run.best if run.best.is_file() else run.last
    try:
        model, extra = load_checkpoint(path)
    except CheckpointError as exc:
        raise RunError(str(exc)) from None
    return model, dict(extra.get("meta") or {}), path
