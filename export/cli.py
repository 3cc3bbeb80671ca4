"""``rt-export``: checkpoint (or a named untrained size) -> ONNX model with its metadata.

    rt-export CHECKPOINT --out MODEL.onnx [--window N] [--opset N] [--fp16] [--int8]
    rt-export --init tiny --out MODEL.onnx
    rt-export CHECKPOINT --vary 'hop=120 frame=480' --hop 120 --out MODEL.onnx   # other constructor arguments
    rt-export --init stream-small --out MODEL.onnx [--hop N]   # a streaming (stateful) model
    rt-export --list-sizes

A streaming model (CausalUNet, from a checkpoint or a ``stream-*`` size) exports as one stateful
ONNX step (:mod:`rt_enhance.export.streaming`); only ``--hop`` (the default samples per call, a
multiple of its total stride) applies to it.

User mistakes (missing checkpoint, unknown size, bad window or geometry) print one line to
stderr and exit 2; a failed check (ONNX checker, float32 parity) exits 1.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rt_enhance.export.errors import ExportError
from rt_enhance.export.metadata import TASKS, EngineDefaults, file_sha256
from rt_enhance.export.options import parse_args
from rt_enhance.export.pipeline import ExportReport, export_model
from rt_enhance.export.streaming import check_hop, export_streaming
from rt_enhance.export.to_onnx import check_windowed
from rt_enhance.model.base import AudioModel, GeometryError, StreamingModel
from rt_enhance.model.checkpoint import CheckpointError, load_checkpoint
from rt_enhance.model.registry import build_model, class_name, parse_vary
from rt_enhance.model.sizes import NamedSize, build_size, default_hop, get_size, size_table
from rt_enhance.realtime.errors import RtEnhanceError, UsageError, first_line, report

logger = logging.getLogger(__name__)

FALLBACK = NamedSize("", "", {})  # engine defaults when neither the size nor the checkpoint give them


@dataclass(frozen=True)
class Source:
    """The model to export and what is known about it."""

    model: AudioModel
    meta: dict[str, Any]
    defaults: NamedSize
    checkpoint_sha256: str | None


def load_source(args: argparse.Namespace) -> Source:
    """Build the model from ``--init`` or load it from the checkpoint."""
    if bool(args.init) == bool(args.checkpoint):
        raise UsageError("give exactly one of CHECKPOINT or --init SIZE")
    if args.init and args.vary:
        raise UsageError("--vary changes a checkpoint's network; with --init, name the size that has those arguments")
    if args.init:
        try:
            size = get_size(args.init)
        except KeyError as exc:
            raise UsageError(exc.args[0]) from None
        torch.manual_seed(args.seed)
        model = build_size(args.init, sample_rate=args.sample_rate).eval()
        meta = {"name": args.init, "description": f"untrained '{args.init}' ({size.description}), seed {args.seed}"}
        return Source(model, meta, size, None)
    try:
        model, extra = load_checkpoint(args.checkpoint)
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None
    if args.vary:
        model = vary_model(model, args.vary, source=args.checkpoint)
    meta = dict(extra.get("meta") or {})
    meta.setdefault("name", Path(args.checkpoint).stem)
    return Source(model, meta, FALLBACK, file_sha256(args.checkpoint))


def vary_model(model: AudioModel, text: str, *, source: str) -> AudioModel:
    """``model``'s weights in the same class built with the constructor arguments of ``text`` (``'hop=120
    frame=480'``) changed; every tensor must fit both ways, so the varied model computes what the weights learnt."""
    try:
        changes = parse_vary(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    params = inspect.signature(type(model)).parameters
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [] if open_ended else sorted(set(changes) - set(params))
    if unknown:
        raise UsageError(f"--vary: {type(model).__name__} has no argument {', '.join(unknown)}; see its init arguments in {source}")
    try:
        varied = build_model(class_name(model), {**model.init_kwargs, **changes})
    except (ValueError, TypeError, GeometryError) as exc:
        raise UsageError(f"--vary {text!r}: {first_line(exc)}") from None
    have, want = model.state_dict(), varied.state_dict()
    misfit = [f"{k} missing" for k in want if k not in have] + [f"{k} unused" for k in have if k not in want]
    misfit += [f"{k} {list(have[k].shape)} for {list(want[k].shape)}" for k in want if k in have and have[k].shape != want[k].shape]
    if misfit:
        more = f" and {len(misfit) - 1} more" if len(misfit) > 1 else ""
        raise UsageError(f"--vary {text!r}: the checkpoint's weights do not fit the varied network ({misfit[0]}{more})")
    varied.load_state_dict(have)
    return varied.eval()


def resolve_geometry(args: argparse.Namespace, source: Source) -> EngineDefaults:
    """Command line, then the checkpoint's ``meta``, then the named size's defaults."""

    def pick(key: str, flag: int | None, default: int) -> int:
        value = flag if flag is not None else source.meta.get(key, default)
        if type(value) is not int:
            raise UsageError(f"checkpoint meta '{key}' must be an integer, got {value!r}; pass --{key.replace('_', '-')}")
        return value

    d = source.defaults
    geometry = EngineDefaults(
        sample_rate=pick("sample_rate", args.sample_rate, source.model.sample_rate),
        window=pick("window", args.window, d.window),
        hop=pick("hop", args.hop, d.hop),
        lookahead=pick("lookahead", args.lookahead, d.lookahead),
        crossfade=pick("crossfade", args.crossfade, d.crossfade),
    )
    if geometry.sample_rate != source.model.sample_rate:
        raise UsageError(f"the model was built for {source.model.sample_rate} Hz; it cannot be exported as {geometry.sample_rate} Hz")
    try:
        source.model.check_window(geometry.window)
        geometry.check()
        check_windowed(source.model, torch.zeros(1, 1, geometry.window))
    except (GeometryError, ExportError) as exc:
        raise UsageError(str(exc)) from None
    return geometry


def print_model(model: AudioModel, geometry: EngineDefaults) -> None:
    info = model.describe(geometry.window)
    engine = info["macs_per_second"] * geometry.window / geometry.hop
    print(f"model      {info['family']} {model.init_kwargs}")
    print(f"params     {info['params']:,}")
    print(
        f"MACs/s     {info['macs_per_second'] / 1e9:.3f} G per second of audio at {geometry.sample_rate} Hz "
        f"(one pass; windowed engine at hop {geometry.hop}: {engine / 1e9:.3f} G)"
    )
    print(f"receptive  {info['receptive_field']} samples, total stride {info['total_stride']}")
    print(f"geometry   window {geometry.window}, hop {geometry.hop}, lookahead {geometry.lookahead}, crossfade {geometry.crossfade}")


def print_report(report: ExportReport) -> None:
    print(f"wrote      {report.path} (fp32 parity, relative error per input):")
    for f in report.fp32:
        print(f"  fp32  {f.input:24s} max abs {f.max_abs:.2e}  relative {f.relative:.2e}")
    for tag, (path, figures) in report.variants.items():
        print(f"wrote      {path} (error against torch fp32, a report):")
        for f in figures:
            print(f"  {tag:5s} {f.input:24s} max abs {f.max_abs:.2e}  relative {f.relative:.2e}")


def streaming_hop(args: argparse.Namespace, source: Source) -> int:
    """A streaming model's default hop: ``--hop``, the checkpoint's ``meta``, or :func:`default_hop`
    (the size's own, as rt-train writes it). The windowed engine's other flags do not apply to it."""
    model = source.model
    assert isinstance(model, StreamingModel)  # the caller asked
    if args.window is not None or args.fp16 or args.int8 or args.crossfade:
        raise UsageError("--window, --crossfade, --fp16 and --int8 do not apply to a streaming model; give --hop only")
    if args.lookahead is not None and args.lookahead != model.lookahead:
        raise UsageError(f"--lookahead {args.lookahead}: this streaming model's lookahead is fixed at {model.lookahead}")
    if args.sample_rate is not None and args.sample_rate != model.sample_rate:
        raise UsageError(f"the model was built for {model.sample_rate} Hz; it cannot be exported at {args.sample_rate} Hz")
    hop = args.hop if args.hop is not None else source.meta.get("hop", default_hop(model, source.defaults))
    if type(hop) is not int:
        raise UsageError(f"checkpoint meta 'hop' must be an integer, got {hop!r}; pass --hop")
    try:
        check_hop(model, hop)
    except ExportError as exc:
        raise UsageError(f"--hop: {exc}") from None
    return hop


def print_streaming(model: AudioModel, hop: int) -> None:
    info = model.describe(hop)
    context = " plus a GRU's unbounded past" if info["gru_hidden"] else ""
    print(f"model      {info['family']} {model.init_kwargs}")
    print(f"params     {info['params']:,}")
    print(
        f"MACs/s     {info['macs_per_second'] / 1e9:.3f} G per second of audio at {model.sample_rate} Hz (streaming: the same at any hop)"
    )
    print(f"receptive  {info['receptive_field']} samples{context}, total stride {info['total_stride']}")
    print(f"geometry   stateful, lookahead {info['lookahead']}, default hop {hop}, {info['states']} state tensors")


def run(args: argparse.Namespace) -> None:
    if args.out is None:
        raise UsageError("--out MODEL.onnx is required")
    source = load_source(args)
    meta = {**source.meta, **({"name": args.name} if args.name else {})}
    task = args.task or meta.get("task", "denoise")
    if task not in TASKS:
        raise UsageError(f"task {task!r} (from the checkpoint) is not one of {', '.join(TASKS)}; pass --task")
    if isinstance(source.model, StreamingModel):
        hop = streaming_hop(args, source)
        print_streaming(source.model, hop)
        report = export_streaming(
            source.model, args.out, hop=hop, task=task, meta=meta, checkpoint_sha256=source.checkpoint_sha256, opset=args.opset
        )
    else:
        geometry = resolve_geometry(args, source)
        print_model(source.model, geometry)
        report = export_model(
            source.model,
            args.out,
            geometry,
            task=task,
            meta=meta,
            checkpoint_sha256=source.checkpoint_sha256,
            opset=args.opset,
            fp16=args.fp16,
            int8=args.int8,
        )
    print_report(report)


def main(argv: list[str] | None = None) -> int:
    return run_parsed(parse_args(argv))


def run_parsed(args: argparse.Namespace) -> int:
    """Run ``rt-export`` on parsed flags (:func:`rt_enhance.export.options.parse_args`); the exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.list_sizes:
        print("\n".join(size_table()))
        return 0
    try:
        run(args)
    except ExportError as exc:  # a failed check, not a user mistake
        return report("rt-export", exc, 1, label="export failed")
    except RtEnhanceError as exc:
        return report("rt-export", exc, 2, label="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
