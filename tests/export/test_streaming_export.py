"""Streaming export: the ONNX step run hop by hop equals the torch model run offline, for several
hops; the metadata round trip; the engine (rt-enhance file mode, Streamer.reset) on the export;
loud failures that leave no file; the rt-export hooks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import soundfile as sf
import torch

from rt_enhance.export import EngineDefaults, ExportError, export_model
from rt_enhance.export.cli import main as rt_export
from rt_enhance.export.streaming import StepGraph, export_streaming, run_session
from rt_enhance.model import build_size, save_checkpoint
from rt_enhance.model.causal import CausalUNet
from rt_enhance.realtime import cli as rt_enhance
from rt_enhance.realtime.geometry import resolve_stateful
from rt_enhance.realtime.metadata import parse_props
from rt_enhance.realtime.processor import StatefulOnnxProcessor, open_onnx
from rt_enhance.realtime.streamer import Streamer

RATE = 48000


# torch on one thread in every test here.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def tiny_model() -> CausalUNet:
    """``stream-tiny`` with seed 0: stride 8, lookahead 24, GRU 16, default hop 96."""
    torch.manual_seed(0)
    return build_size("stream-tiny").eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("stream") / "s.onnx"
    report = export_streaming(tiny_model(), out, hop=96, sample_rate=RATE, meta={"name": "stream-tiny"}, parity_seconds=1.0)
    return out, report


def offline(model: CausalUNet, audio: np.ndarray) -> np.ndarray:
    """torch ``forward`` on ``[channels, T]`` padded with zeros to a valid length >= T + lookahead."""
    n = model.valid_length(audio.shape[-1] + model.lookahead)
    padded = np.zeros((audio.shape[0], 1, n), np.float32)
    padded[:, 0, : audio.shape[-1]] = audio
    with torch.no_grad():
        return model(torch.from_numpy(padded)).numpy()[:, 0]


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_export_reports_parity_for_several_hops(exported) -> None:
    _, report = exported
    names = [f.input for f in report.fp32]
    assert names == ["hop 8", "hop 96", "hop 240", "hop 480", "random chunks", "engine loader"]
    assert all(f.relative <= 1e-4 for f in report.fp32)


@pytest.mark.parametrize("hop", [8, 40, 96, 480])
def test_onnx_step_hop_by_hop_equals_torch_offline(exported, hop: int) -> None:
    path, report = exported
    rng = np.random.default_rng(hop)
    audio = (0.3 * rng.standard_normal((3, 1, 2 * RATE))).astype(np.float32)  # 2 s, batch 3
    with torch.no_grad():
        reference = tiny_model()(torch.from_numpy(audio)).numpy()
    sizes = [hop] * (audio.shape[-1] // hop) + ([audio.shape[-1] % hop] if audio.shape[-1] % hop else [])
    out = run_session(session(path), audio, sizes, report.info.state_spec().zeros(3))
    assert relative(out, reference) < 1e-4


def test_graph_inputs_outputs_and_dynamic_axes(exported) -> None:
    path, report = exported
    spec = report.info.state_spec()
    graph = session(path)
    inputs, outputs = graph.get_inputs(), graph.get_outputs()
    assert [i.name for i in inputs] == ["audio", *spec.inputs]
    assert [o.name for o in outputs] == ["enhanced", *spec.outputs]
    assert inputs[0].shape == ["batch", 1, "samples"]
    assert (outputs[0].shape[0], outputs[0].shape[2]) == ("batch", "samples")
    for node, shape in zip(inputs[1:], spec.shapes):
        assert [d if isinstance(d, int) else -1 for d in node.shape] == list(shape)


def test_metadata_round_trip(exported) -> None:
    path, report = exported
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    info = parse_props(props, source=str(path))
    assert info == report.info
    model = tiny_model()
    assert info.kind == "stateful" and info.total_stride == 8 and info.lookahead == 24 and info.crossfade == 0
    assert (info.hop, info.window, info.sample_rate) == (96, model.receptive_field, RATE)
    assert json.loads(props["state_shapes"])[3] == [1, -1, 16]  # the GRU's hidden state: batch on axis 1
    assert props["state_initial"] == "zeros" and props["recurrent"] == "true" and props["family"] == "CausalUNet"
    assert json.loads(props["model_args"]) == model.init_kwargs and props["name"] == "stream-tiny"
    assert isinstance(open_onnx(str(path)), StatefulOnnxProcessor)


@pytest.mark.parametrize("hop", ["24", "10ms"])
def test_rt_enhance_file_mode_equals_torch_offline(exported, tmp_path: Path, hop: str) -> None:
    path, _ = exported
    rng = np.random.default_rng(0)
    audio = (0.2 * rng.standard_normal((RATE // 2 + 13, 2))).astype(np.float32)  # not a multiple of any hop
    sf.write(tmp_path / "x.wav", audio, RATE, subtype="FLOAT")
    code = rt_enhance.main(["--model", str(path), "--in", str(tmp_path / "x.wav"), "--out", str(tmp_path / "y.wav"), "--hop", hop, "-q"])
    assert code == 0
    out, rate = sf.read(tmp_path / "y.wav", dtype="float32", always_2d=True)
    model = tiny_model()
    expected = offline(model, audio.T)[:, model.lookahead : model.lookahead + audio.shape[0]].T
    assert rate == RATE and out.shape == audio.shape
    assert relative(out, expected) < 1e-4


def test_streamer_reset_reproduces_a_fresh_start(exported) -> None:
    path, _ = exported
    proc = open_onnx(str(path))
    info = proc.info
    geometry = resolve_stateful(
        sample_rate=RATE, receptive_field=info.window, default_hop=info.hop, lookahead=info.lookahead, stride=info.total_stride
    )
    rng = np.random.default_rng(1)
    history, signal = (0.3 * rng.standard_normal((1, n)).astype(np.float32) for n in (5000, 9000))

    def stream(streamer: Streamer, x: np.ndarray) -> np.ndarray:
        parts = [streamer.feed(x[:, s : s + 700]) for s in range(0, x.shape[1], 700)]
        return np.concatenate([*parts, streamer.flush()], axis=1)

    used = Streamer(proc, geometry, channels=1)
    used.feed(history)  # leaves model state and a partial hop behind
    used.reset()
    after_reset = stream(used, signal)
    fresh = stream(Streamer(open_onnx(str(path)), geometry, channels=1), signal)
    np.testing.assert_array_equal(after_reset, fresh)
    model = tiny_model()
    expected = offline(model, signal)[:, model.lookahead : model.lookahead + signal.shape[1]]
    assert relative(after_reset, expected) < 1e-4


def test_a_parity_failure_is_loud_and_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def wrong(self, audio, *states):
        enhanced, new = self.model.step(audio, list(states))
        return (1.01 * enhanced, *new)

    monkeypatch.setattr(StepGraph, "forward", wrong)
    with pytest.raises(ExportError, match="parity failed on 'hop 8'"):
        export_streaming(tiny_model(), tmp_path / "bad.onnx", hop=96, parity_seconds=0.2)
    assert list(tmp_path.iterdir()) == []


def test_bad_hop_and_windowed_export_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="hop 100 is not a multiple of the model's total stride 8; use 96 or 104"):
        export_streaming(tiny_model(), tmp_path / "s.onnx", hop=100)
    with pytest.raises(ExportError, match="streaming model: export it with export_streaming"):
        export_model(tiny_model(), tmp_path / "w.onnx", EngineDefaults(RATE, 1024, 256, 128, 64))
    assert list(tmp_path.iterdir()) == []


def test_rt_export_init_and_hop_flag(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "s.onnx"
    assert rt_export(["--init", "stream-tiny", "--out", str(out), "--hop", "40"]) == 0
    info = parse_props({p.key: p.value for p in onnx.load(str(out)).metadata_props})
    assert info.kind == "stateful" and info.hop == 40
    assert "hop 40" in capsys.readouterr().out
    assert rt_export(["--init", "stream-tiny", "--out", str(tmp_path / "t.onnx"), "--hop", "100"]) == 2
    assert capsys.readouterr().err.strip() == ("rt-export: --hop: hop 100 is not a multiple of the model's total stride 8; use 96 or 104")
    assert rt_export(["--init", "stream-tiny", "--out", str(tmp_path / "t.onnx"), "--window", "1024"]) == 2
    assert rt_export(["--init", "stream-tiny", "--out", str(tmp_path / "t.onnx"), "--lookahead", "5"]) == 2
    assert "lookahead is fixed at 24" in capsys.readouterr().err
    assert not (tmp_path / "t.onnx").exists()


def test_rt_export_a_causal_checkpoint(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "c.pt", tiny_model(), extra={"meta": {"hop": 48, "task": "dereverb"}})
    assert rt_export([str(tmp_path / "c.pt"), "--out", str(tmp_path / "c.onnx")]) == 0
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "c.onnx")).metadata_props}
    info = parse_props(props)
    assert (info.kind, info.hop, info.extra["task"], info.extra["name"]) == ("stateful", 48, "dereverb", "c")
    assert len(info.extra["checkpoint_sha256"]) == 64
