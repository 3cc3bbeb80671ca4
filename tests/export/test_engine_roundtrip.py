"""The engine loads an exported model: its loader reads the metadata, and rt-enhance runs file to file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from rt_enhance.realtime import cli, processor
from rt_enhance.realtime.metadata import parse_props


def test_loader_reads_the_metadata_and_runs(tiny_onnx: Path, tiny_torch: torch.nn.Module) -> None:
    import onnx

    proc = processor.OnnxProcessor(str(tiny_onnx), threads=1)
    expected = parse_props({p.key: p.value for p in onnx.load(str(tiny_onnx)).metadata_props})
    assert proc.info == expected
    assert (proc.info.window, proc.info.sample_rate, proc.info.hop) == (1024, 48000, 480)
    windows = np.random.default_rng(0).standard_normal((3, proc.info.window)).astype(np.float32)
    with torch.no_grad():
        reference = tiny_torch(torch.from_numpy(windows)[:, None]).numpy()[:, 0]
    np.testing.assert_allclose(proc.run(windows), reference, atol=1e-5)


def test_rt_enhance_runs_file_to_file(tiny_onnx: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((48000 // 2, 1))).astype(np.float32)
    sf.write(tmp_path / "x.wav", audio, 48000, subtype="FLOAT")
    code = cli.main(["--model", str(tiny_onnx), "--in", str(tmp_path / "x.wav"), "--out", str(tmp_path / "y.wav"), "-q"])
    assert code == 0
    out, rate = sf.read(tmp_path / "y.wav", dtype="float32", always_2d=True)
    assert rate == 48000 and out.shape == audio.shape
    assert np.isfinite(out).all() and np.abs(out).max() > 0
