"""Fixtures for the exporter tests: one untrained ``tiny`` model exported once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rt_enhance.export.cli import main
from rt_enhance.model import AudioModel, build_size


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``rt-export --init tiny --out t.onnx`` (seed 0)."""
    out = tmp_path_factory.mktemp("tiny") / "t.onnx"
    assert main(["--init", "tiny", "--out", str(out)]) == 0
    return out


@pytest.fixture
def tiny_torch() -> AudioModel:
    """The torch model ``tiny_onnx`` was exported from (same seed)."""
    torch.manual_seed(0)
    return build_size("tiny").eval()
