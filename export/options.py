"""The ``rt-export`` command line: parsed before torch and onnx are imported, so ``--help`` and
mistakes in the flags answer at once; :func:`main` then hands over to :mod:`rt_enhance.export.cli`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rt_enhance.realtime.metadata import TASKS

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rt-export", description="Export an rt-enhance model to ONNX with metadata.")
    p.add_argument("checkpoint", nargs="?", help="checkpoint written by training (save_checkpoint)")
    p.add_argument("--init", metavar="SIZE", help="export an untrained model of a named size (--list-sizes lists them)")
    p.add_argument("--list-sizes", action="store_true", help="print the named sizes and exit")
    p.add_argument("--out", type=Path, help="output .onnx path")
    p.add_argument("--window", type=int, help="samples per call (a multiple of the model's total stride)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    p.add_argument("--fp16", action="store_true", help="also write MODEL.fp16.onnx and report its error")
    p.add_argument("--int8", action="store_true", help="also write MODEL.int8.onnx (dynamic quantization)")
    p.add_argument("--hop", type=int, help="default hop written to the metadata (streaming: a multiple of the stride)")
    p.add_argument("--lookahead", type=int, help="default lookahead written to the metadata")
    p.add_argument("--crossfade", type=int, help="default crossfade written to the metadata")
    p.add_argument("--sample-rate", type=int, help="model sample rate in Hz (default: the model's)")
    p.add_argument("--task", choices=TASKS, help="task written to the metadata (default: checkpoint's, or denoise)")
    p.add_argument("--name", help="model name written to the metadata")
    p.add_argument("--seed", type=int, default=0, help="weight seed for --init (default 0)")
    p.add_argument(
        "--vary",
        metavar="'NAME=VALUE ...'",
        help="export the checkpoint's weights with these constructor arguments changed, every stored tensor fitting "
        "(e.g. 'hop=120 frame=480': the same network on a shorter hop)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from rt_enhance.export import cli

    return cli.run_parsed(args)
