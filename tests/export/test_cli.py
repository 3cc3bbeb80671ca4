"""rt-export as a user meets it: figures printed, variants, one-line errors and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from rt_enhance.export import pipeline
from rt_enhance.export.cli import main
from rt_enhance.model import Generator, save_checkpoint


def test_init_prints_the_figures_and_variants(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "t.onnx"
    assert main(["--init", "tiny", "--out", str(out), "--fp16", "--int8"]) == 0
    text = capsys.readouterr().out
    for word in ("params", "MACs/s", "receptive", "total stride", "fp32", "fp16", "int8", "relative"):
        assert word in text
    for tag in ("fp16", "int8"):
        variant = tmp_path / f"t.{tag}.onnx"
        props = {p.key: p.value for p in onnx.load(str(variant)).metadata_props}
        assert props["precision"] == tag and props["window"] == "1024"
    fp16_errors = [float(line.split()[-1]) for line in text.splitlines() if line.strip().startswith("fp16")]
    assert len(fp16_errors) == 3 and max(fp16_errors) < 1e-2


@pytest.mark.parametrize(
    "args,message",
    [
        (["missing.pt", "--out", "m.onnx"], "checkpoint missing.pt not found"),
        (["--init", "huge", "--out", "m.onnx"], "unknown model size 'huge'"),
        (["--init", "tiny", "--out", "m.onnx", "--window", "1000"], "not a multiple of the model's total stride 16"),
        (["--init", "tiny"], "--out MODEL.onnx is required"),
        (["--out", "m.onnx"], "exactly one of CHECKPOINT or --init"),
        (["--init", "tiny", "--out", "m.onnx", "--crossfade", "600"], "crossfade 600 must not exceed lookahead"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, args: list, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("out", ["a-file/m.onnx", "/proc/m.onnx"])
def test_an_out_that_cannot_be_written_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, out: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("in the way")
    assert main(["--init", "tiny", "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert ("a file stands in its path" if out.startswith("a-file") else "cannot write this file") in err
    assert (tmp_path / "a-file").read_text() == "in the way"


def test_checkpoint_sample_rate_contradiction(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    save_checkpoint(tmp_path / "g.pt", Generator(depth=2, width=0.125, max_kernel=9))
    assert main([str(tmp_path / "g.pt"), "--out", str(tmp_path / "m.onnx"), "--sample-rate", "16000"]) == 2
    assert "built for 48000 Hz" in capsys.readouterr().err


def test_parity_failure_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    real = pipeline.torch_reference
    monkeypatch.setattr(pipeline, "torch_reference", lambda m, x: {k: v * 1.01 for k, v in real(m, x).items()})
    assert main(["--init", "tiny", "--out", str(tmp_path / "m.onnx")]) == 1
    assert "float32 parity failed" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_list_sizes(capsys: pytest.CaptureFixture) -> None:
    assert main(["--list-sizes"]) == 0
    text = capsys.readouterr().out
    assert all(f"| {name} |" in text for name in ("tiny", "small", "base"))


def test_runs_as_a_program(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rt_enhance.export.cli", "--init", "tiny", "--out", str(tmp_path / "t.onnx")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "t.onnx").is_file() and "params" in result.stdout
    assert "fp32  clicks" in result.stdout


def _small_spectral(path: Path, **changes) -> None:
    from rt_enhance.model.spectral import SpectralUNet

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = SpectralUNet(channels=[4, 4, 4, 4], gru_hidden=8, bands=16, hop=240, **changes)
    for p in model.parameters():  # weights that matter: the gain head starts at zero
        torch.nn.init.normal_(p, std=0.1)
    save_checkpoint(path, model)


def test_vary_exports_the_weights_on_another_hop(tmp_path: Path) -> None:
    """--vary 'hop=120 frame=480' gives the model the checkpoint would be with those arguments (what train-default.sh
    does to make speech-monitor from speech's weights): the same samples as a checkpoint written that way."""
    import json

    import numpy as np
    import onnxruntime as ort
    import torch

    from rt_enhance.model.checkpoint import read_payload, write_payload

    _small_spectral(tmp_path / "s.pt")
    payload = read_payload(tmp_path / "s.pt")
    payload["kwargs"].update(hop=120, frame=480)
    write_payload(payload, tmp_path / "edited.pt")
    assert main([str(tmp_path / "s.pt"), "--vary", "hop=120 frame=480", "--hop", "120", "--out", str(tmp_path / "v.onnx")]) == 0
    assert main([str(tmp_path / "edited.pt"), "--hop", "120", "--out", str(tmp_path / "e.onnx")]) == 0
    varied, edited = (ort.InferenceSession(str(tmp_path / f"{n}.onnx")) for n in ("v", "e"))
    args = json.loads(varied.get_modelmeta().custom_metadata_map["model_args"])
    assert (args["hop"], args["frame"]) == (120, 480)
    rng = np.random.default_rng(0)
    feed = {
        i.name: (0.1 * rng.standard_normal([d if isinstance(d, int) else (1 if d == "batch" else 120) for d in i.shape])).astype(np.float32)
        for i in varied.get_inputs()
    }
    for a, b in zip(varied.run(None, feed), edited.run(None, feed)):
        np.testing.assert_array_equal(a, b)
    assert torch.load(tmp_path / "s.pt", weights_only=True)["kwargs"]["hop"] == 240  # the checkpoint is untouched


@pytest.mark.parametrize(
    "vary,message",
    [
        ("hop=120 frame", "NAME=VALUE pairs"),
        ("hop=12x0", "'12x0' is not a number"),
        ("bogus=3", "SpectralUNet has no argument bogus"),
        ("channels=[8,4,4,4]", "weights do not fit the varied network (encoders.0.0.weight [4, 1, 5] for [8, 1, 5]"),
    ],
)
def test_vary_mistakes_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, vary: str, message: str) -> None:
    _small_spectral(tmp_path / "s.pt")
    assert main([str(tmp_path / "s.pt"), "--vary", vary, "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "m.onnx").exists()


def test_vary_with_init_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--init", "tiny", "--vary", "depth=2", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "--vary changes a checkpoint's network" in capsys.readouterr().err
