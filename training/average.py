"""Weight averages of checkpoints of one model: the last epochs of a run, or two runs from one start.

A network that has reached its plateau wanders around it from epoch to epoch: on this project's
`speech` runs the clean-music figure moved between 19 and 27 dB SI-SDR from one epoch to the next
while the validation loss stayed flat. The mean of the weights of its last epochs sits in the middle
of that wander, and usually scores better than any one of them (Izmailov et al. 2018, stochastic
weight averaging; the checkpoint averaging of speech toolkits). Averaging two fine-tunings of the same
start (a "model soup", Wortsman et al. 2022) trades what each learnt.

    python -m rt_enhance.training.average OUT.pt CK1.pt CK2.pt ...            # the plain mean
    python -m rt_enhance.training.average OUT.pt CK1.pt CK2.pt --weights 3,1  # a weighted mean
    python -m rt_enhance.training.average OUT.pt CK1.pt CK2.pt --weights 0,1 --layer gru_in.=7,3
        # CK2's weights, but the tensors whose names begin with gru_in. 70 % CK1's (a mean per layer)

Two fine-tunings of one start need not trade the same way in every layer: in session 25 the campaign's
weights with only the GRU's input projection moved 70 % of the way to the voices-only run's gained
PESQ-wb at every SNR and kept the music the plain mean gave up (docs/models.md).

``rt-train --average N`` keeps the last N epochs' weights of a run and writes their mean as
``average.pt`` after each epoch (:func:`keep_epoch`). The output is a weights-only checkpoint
(what ``rt-export`` and ``--init_from`` read), its ``meta`` that of the last input plus the list of
inputs and weights.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from rt_enhance.model import AudioModel
from rt_enhance.model.checkpoint import FORMAT_VERSION, CheckpointError, read_payload, save_checkpoint, write_payload
from rt_enhance.training.state import RunDir

MEAN_OF = "; the weight mean of "  # how a description says it was averaged


def average(paths: list[Path], weights: list[float] | None = None, layers: dict[str, list[float]] | None = None) -> dict[str, Any]:
    """The checkpoint payload whose floating-point tensors are the weighted mean of ``paths``'.

    ``layers`` maps name prefixes to weights of their own: a tensor takes those of the first prefix its
    name begins with, the rest ``weights``. Every input must hold the same model (class and constructor
    arguments); integer tensors (counters) are taken from the last. Raises :class:`CheckpointError` with
    one line otherwise, and for a prefix that names no tensor.
    """
    if not paths:
        raise CheckpointError("nothing to average: give at least one checkpoint")
    weights = _checked([1.0] * len(paths) if weights is None else list(weights), len(paths), "--weights")
    layers = {prefix: _checked(list(w), len(paths), f"--layer {prefix}=") for prefix, w in (layers or {}).items()}
    payloads = [read_payload(Path(p)) for p in paths]
    first = payloads[0]
    for path, payload in zip(paths[1:], payloads[1:]):
        if (payload["class"], payload["kwargs"]) != (first["class"], first["kwargs"]):
            raise CheckpointError(f"{path} holds another model than {paths[0]} ({payload['class']}{payload['kwargs']})")
        if payload["state"].keys() != first["state"].keys():
            raise CheckpointError(f"{path} has other tensors than {paths[0]}")
    if unused := [prefix for prefix in layers if not any(name.startswith(prefix) for name in first["state"])]:
        raise CheckpointError(f"--layer: no tensor of {paths[0]} begins with {', '.join(unused)}")
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, last in payloads[-1]["state"].items():
        if not last.is_floating_point():
            state[name] = last.clone()
            continue
        mine = next((w for prefix, w in layers.items() if name.startswith(prefix)), weights)
        total = sum(mine)
        acc = torch.zeros(last.shape, dtype=torch.float64)
        for weight, payload in zip(mine, payloads):
            acc += payload["state"][name].to(torch.float64) * (weight / total)
        state[name] = acc.to(last.dtype)
    meta = dict(payloads[-1].get("meta") or {})
    meta.pop("metrics", None)  # the last input's validation figures do not describe the mean
    what = str(meta.get("description", "")).split(MEAN_OF)[0]
    meta["description"] = f"{what}{MEAN_OF}{len(paths)} checkpoints (their list: meta 'averaged')"
    meta["averaged"] = [_source(p, w / sum(weights), payload.get("meta") or {}) for p, w, payload in zip(paths, weights, payloads)]
    if layers:
        meta["averaged_layers"] = {prefix: [w / sum(ws) for w in ws] for prefix, ws in layers.items()}
    else:
        meta.pop("averaged_layers", None)
    return {"format_version": FORMAT_VERSION, "class": first["class"], "kwargs": first["kwargs"], "state": state, "meta": meta}


def _checked(weights: list[float], n: int, flag: str) -> list[float]:
    if len(weights) != n or any(not (math.isfinite(w) and w >= 0) for w in weights) or sum(weights) <= 0:
        raise CheckpointError(f"{flag}: need {n} finite non-negative numbers, not all zero; got {weights}")
    return weights


def _source(path: Path, weight: float, meta: dict[str, Any]) -> dict[str, Any]:
    """One input of a mean, as its ``meta`` records it: its path and weight (and, for a mean itself, its inputs)."""
    source: dict[str, Any] = {"checkpoint": os.fspath(path), "weight": weight}
    if "averaged" in meta:
        source["averaged"] = meta["averaged"]
    elif "metrics" in meta:
        source["metrics"] = meta["metrics"]
    return source


def write_average(out: Path, paths: list[Path], weights: list[float] | None = None, layers: dict[str, list[float]] | None = None) -> None:
    """:func:`average` of ``paths``, written atomically to ``out`` (which may be one of them)."""
    write_payload(average(paths, weights, layers), out)


def keep_epoch(run: RunDir, epoch: int, generator: AudioModel, meta: dict[str, Any], keep: int) -> None:
    """After epoch ``epoch`` of a run: keep ``generator``'s weights as ``epochs/eNNNN.pt``, delete all
    but the last ``keep`` of those, and write their mean to ``average.pt``."""
    run.epochs.mkdir(exist_ok=True)
    save_checkpoint(run.epochs / f"e{epoch:04d}.pt", generator, extra={"meta": meta})
    kept = sorted(run.epochs.glob("e[0-9][0-9][0-9][0-9].pt"))
    for old in kept[:-keep]:
        old.unlink()
    write_average(run.average, kept[-keep:])


def _weights(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of numbers (e.g. 3,1)") from None


def _layer(text: str) -> tuple[str, list[float]]:
    prefix, sep, rest = text.partition("=")
    if not sep or not prefix:
        raise argparse.ArgumentTypeError(f"'{text}' is not PREFIX=WEIGHTS (e.g. gru_in.=7,3)")
    return prefix, _weights(rest)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rt_enhance.training.average", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="the averaged checkpoint to write (weights only)")
    p.add_argument("checkpoints", type=Path, nargs="+", help="checkpoints of one model (class and arguments alike)")
    p.add_argument("--weights", type=_weights, help="one weight per checkpoint, comma-separated (default: all equal)")
    p.add_argument(
        "--layer",
        type=_layer,
        action="append",
        default=[],
        metavar="PREFIX=WEIGHTS",
        help="weights of their own for the tensors whose names begin with PREFIX (repeatable; the first match counts)",
    )
    args = p.parse_args(argv)
    try:
        write_average(args.out, args.checkpoints, args.weights, dict(args.layer))
    except CheckpointError as exc:
        print(f"average: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: the mean of {len(args.checkpoints)} checkpoints")
    return 0


if __name__ == "__main__":
    sys.exit(main())
