"""The runtime install (no torch) runs an exported model: a subprocess where importing torch fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

SCRIPT = """
import importlib.abc, sys

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked: runtime install")

sys.meta_path.insert(0, NoTorch())
import numpy as np, onnxruntime as ort
from rt_enhance.realtime.metadata import parse_props
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
info = parse_props(session.get_modelmeta().custom_metadata_map)
x = np.load(sys.argv[2])
np.save(sys.argv[3], session.run(None, {"audio": x})[0])
try:  # the engine's loader, where it exists: it must not need torch either
    from rt_enhance.realtime.processor import OnnxProcessor
except ImportError as exc:
    if "torch" in str(exc):
        raise
else:
    proc = OnnxProcessor(sys.argv[1])
    assert np.allclose(proc.run(x[:, 0]), session.run(None, {"audio": x})[0][:, 0], atol=1e-6)
try:
    import torch
except ImportError:
    print("no torch", info.window, info.sample_rate)
"""


def test_onnx_runs_without_torch(tiny_onnx: Path, tiny_torch: torch.nn.Module, tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((2, 1, 1024)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tiny_onnx), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["no", "torch", "1024", "48000"]
    with torch.no_grad():
        expected = tiny_torch(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, atol=1e-5)
