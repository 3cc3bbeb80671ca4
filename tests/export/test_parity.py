"""Export parity (onnxruntime against torch, 1e-4 relative) for every model option."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from rt_enhance.export import EngineDefaults, ExportError, export_model, pipeline
from rt_enhance.model import Autoencoder, Discriminator, Generator

SMALL = {"width": 0.125, "max_channels": 16, "max_kernel": 17}
OPTIONS = {
    "strided": {"depth": 3},
    "superpixel": {"depth": 3, "downsample": "superpixel"},
    "multiscale": {"depth": 2, "multiscale": True},
    "prelu": {"depth": 3, "prelu": True},
    "all": {"depth": 2, "downsample": "superpixel", "multiscale": True, "prelu": True},
    "depth 1": {"depth": 1},
    "depth 5": {"depth": 5},
}


def geometry(window: int) -> EngineDefaults:
    return EngineDefaults(sample_rate=48000, window=window, hop=window // 4, lookahead=window // 4, crossfade=32)


@pytest.mark.parametrize("option", OPTIONS)
def test_float32_parity_for_each_option(tmp_path: Path, option: str) -> None:
    torch.manual_seed(0)
    model = Generator(**SMALL, **OPTIONS[option])
    window = 512
    report = export_model(model, tmp_path / "m.onnx", geometry(window))
    assert report.path.is_file()
    assert {f.input for f in report.fp32} == {"white noise x3", "voice + pink noise x2", "clicks"}
    assert max(f.relative for f in report.fp32) < 1e-4
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("audio", "enhanced")
    assert isinstance(inp.shape[0], str) and inp.shape[1:] == [1, window]  # batch dynamic, window fixed
    x = np.random.default_rng(1).standard_normal((5, 1, window)).astype(np.float32)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(session.run(None, {"audio": x})[0], expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_autoencoder_exports(tmp_path: Path) -> None:
    report = export_model(Autoencoder(depth=2, **SMALL), tmp_path / "ae.onnx", geometry(256))
    assert report.info.extra["family"] == "Autoencoder"


def test_discriminator_is_not_an_enhancer(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="only windowed enhancers"):
        export_model(Discriminator(depth=2, window=256, **SMALL), tmp_path / "d.onnx", geometry(256))


def test_a_parity_mismatch_is_an_error_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = pipeline.torch_reference

    def off_by_a_little(model: torch.nn.Module, inputs: dict) -> dict:
        return {name: y + 1e-3 * np.abs(y).max() for name, y in real(model, inputs).items()}

    monkeypatch.setattr(pipeline, "torch_reference", off_by_a_little)
    with pytest.raises(ExportError, match="float32 parity failed.*exceeds 1e-04"):
        export_model(Generator(depth=2, **SMALL), tmp_path / "m.onnx", geometry(256))
    assert list(tmp_path.iterdir()) == []


def test_geometry_errors(tmp_path: Path) -> None:
    model = Generator(depth=2, **SMALL)
    with pytest.raises(ExportError, match="crossfade 300 must not exceed lookahead 64"):
        export_model(model, tmp_path / "m.onnx", EngineDefaults(48000, 256, 64, 64, 300))
    with pytest.raises(ExportError, match="must fit in the window"):
        export_model(model, tmp_path / "m.onnx", EngineDefaults(48000, 256, 200, 100, 10))
    with pytest.raises(ExportError, match="built for 48000 Hz"):
        export_model(model, tmp_path / "m.onnx", EngineDefaults(16000, 256, 64, 64, 32))
