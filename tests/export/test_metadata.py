"""The metadata an export writes, read back the way the engine reads it."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path

import onnx
import onnxruntime as ort
import torch

from rt_enhance.export.cli import main
from rt_enhance.model import Generator, build_model, save_checkpoint
from rt_enhance.realtime.metadata import REQUIRED_KEYS, ModelInfo, parse_props


def read_both(path: Path) -> tuple[ModelInfo, ModelInfo]:
    """The metadata through onnx and through onnxruntime, parsed by the engine's parser."""
    from_onnx = parse_props({p.key: p.value for p in onnx.load(str(path)).metadata_props}, str(path))
    meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
    return from_onnx, parse_props(meta.custom_metadata_map, str(path))


def test_init_metadata(tiny_onnx: Path, tiny_torch: Generator) -> None:
    info, via_ort = read_both(tiny_onnx)
    assert info == via_ort
    assert (info.sample_rate, info.window, info.hop, info.lookahead, info.crossfade) == (48000, 1024, 480, 480, 240)
    assert info.kind == "windowed" and info.name == "tiny"
    extra = info.extra
    assert extra["task"] == "denoise" and extra["family"] == "Generator"
    assert extra["version"] == importlib.metadata.version("rt-enhance")
    assert int(extra["params"]) == tiny_torch.param_count()
    assert int(extra["macs_per_second"]) == tiny_torch.macs_per_second()
    assert int(extra["receptive_field"]) == tiny_torch.receptive_field
    assert int(extra["total_stride"]) == tiny_torch.total_stride
    rebuilt = build_model(extra["family"], json.loads(extra["model_args"]))
    assert rebuilt.init_kwargs == tiny_torch.init_kwargs
    assert "checkpoint_sha256" not in extra and "untrained" in extra["description"]


def test_checkpoint_metadata(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Generator(depth=2, width=0.125, max_kernel=9, sample_rate=16000)
    meta = {
        "sample_rate": 16000,
        "task": "dereverb",
        "window": 512,
        "hop": 160,
        "lookahead": 160,
        "crossfade": 80,
        "training": {"data": "synthetic rooms", "steps": 1000},
        "metrics": {"si_sdr": 9.5},
        "description": "test model",
    }
    ckpt = tmp_path / "run" / "best.pt"
    save_checkpoint(ckpt, model, extra={"meta": meta, "optimizer": {}})
    out = tmp_path / "m.onnx"
    assert main([str(ckpt), "--out", str(out), "--lookahead", "200"]) == 0
    info, _ = read_both(out)
    assert (info.sample_rate, info.window, info.hop, info.lookahead, info.crossfade) == (16000, 512, 160, 200, 80)
    assert info.extra["task"] == "dereverb" and info.name == "best"
    assert json.loads(info.extra["training"]) == meta["training"]
    assert json.loads(info.extra["metrics"]) == meta["metrics"]
    assert info.extra["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert info.extra["description"] == "test model"


def test_overrides(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    args = [
        "--init",
        "tiny",
        "--out",
        str(out),
        "--sample-rate",
        "16000",
        "--window",
        "512",
        "--hop",
        "160",
        "--lookahead",
        "160",
        "--crossfade",
        "80",
        "--task",
        "bandwidth_extension",
        "--name",
        "bwe-tiny",
    ]
    assert main(args) == 0
    info, _ = read_both(out)
    assert (info.sample_rate, info.window, info.hop, info.lookahead, info.crossfade) == (16000, 512, 160, 160, 80)
    assert info.extra["task"] == "bandwidth_extension" and info.name == "bwe-tiny"
    assert json.loads(info.extra["model_args"])["sample_rate"] == 16000
    assert set(REQUIRED_KEYS) <= {p.key for p in onnx.load(str(out)).metadata_props}
