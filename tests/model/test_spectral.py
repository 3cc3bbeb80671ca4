"""The spectral streaming U-Net: identity at initialisation, streaming equals offline, state shapes,
bounded gains, and its stateful ONNX export run by the engine."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from rt_enhance.export.streaming import export_streaming
from rt_enhance.model import GeometryError, build_size, load_checkpoint, save_checkpoint
from rt_enhance.model.spectral import SpectralUNet
from rt_enhance.realtime import cli as rt_enhance

RATE = 48000


def small(seed: int = 0, **kwargs) -> SpectralUNet:
    torch.manual_seed(seed)
    kwargs = {"hop": 48, "channels": [4, 8, 8], "kernel": 3, "gru_hidden": 8, **kwargs}
    return SpectralUNet(**kwargs).eval()


def randomised(model: SpectralUNet, seed: int = 1) -> SpectralUNet:
    """Give the zero-initialised last layer random weights, so the gains differ from 1."""
    torch.manual_seed(seed)
    with torch.no_grad():
        model.final.weight.normal_(0, 0.5)
        model.final.bias.normal_(0, 0.5)
    return model


def test_a_fresh_model_is_the_identity_delayed_by_one_hop() -> None:
    model = small()
    x = torch.randn(2, 1, 48 * 30)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y[..., 48:], x[..., :-48], atol=1e-5, rtol=0)
    assert model.lookahead == model.total_stride == 48


@pytest.mark.parametrize("gru", [8, 0], ids=["gru", "no-gru"])
def test_streaming_in_uneven_chunks_equals_offline(gru: int) -> None:
    model = randomised(small(gru_hidden=gru))
    x = torch.randn(3, 1, 48 * 40)
    with torch.no_grad():
        whole = model(x)
        state, parts, pos = model.initial_state(3), [], 0
        for hops in (1, 3, 1, 7, 28):
            y, state = model.step(x[..., pos : pos + 48 * hops], state)
            parts.append(y)
            pos += 48 * hops
    torch.testing.assert_close(torch.cat(parts, dim=-1), whole, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(whole[..., 48:], x[..., :-48], atol=1e-3)  # the gains do something


def test_gains_stay_within_zero_and_max_gain() -> None:
    model = randomised(small(max_gain=1.5), seed=3)
    with torch.no_grad():
        model.final.bias.fill_(50.0)
        gains, _ = model.gains(torch.rand(2, 5, model.bins), None)
    assert torch.all(gains > 0) and torch.all(gains <= 1.5) and gains.max() > 1.49


def test_bad_chunks_and_states_are_refused() -> None:
    model = small()
    with pytest.raises(GeometryError, match="multiple"):
        model.step(torch.zeros(1, 1, 50), model.initial_state(1))
    with pytest.raises(GeometryError, match="state 'gru'"):
        model.step(torch.zeros(1, 1, 48), [torch.zeros(1, 1, 48), torch.zeros(1, 2, 8), torch.zeros(1, 1, 48)])
    with pytest.raises(ValueError, match="odd kernel"):
        SpectralUNet(kernel=4)


def test_checkpoint_round_trip(tmp_path) -> None:
    model = randomised(small())
    path = tmp_path / "m.pt"
    save_checkpoint(path, model)
    loaded = load_checkpoint(path)[0].eval()
    x = torch.randn(1, 1, 48 * 10)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_the_named_size_builds_and_reports_its_cost() -> None:
    model = build_size("spec-small")
    info = model.describe(240)
    assert isinstance(model, SpectralUNet) and info["total_stride"] == 240 and info["lookahead"] == 240
    assert 0.1e9 < info["macs_per_second"] < 2e9 and info["params"] < 2_000_000


def test_export_and_rt_enhance_file_mode_equal_torch_offline(tmp_path) -> None:
    model = randomised(small())
    out = tmp_path / "spec.onnx"
    report = export_streaming(model, out, hop=96, sample_rate=RATE, meta={"name": "spec-test"}, parity_seconds=1.0)
    assert all(f.relative < 1e-4 for f in report.fp32)
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal(48 * 200)).astype(np.float32)
    sf.write(tmp_path / "in.wav", audio, RATE, subtype="FLOAT")
    code = rt_enhance.main(["--in", str(tmp_path / "in.wav"), "--out", str(tmp_path / "out.wav"), "--model", str(out), "-q"])
    assert code == 0
    y, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    with torch.no_grad():
        ref = model(torch.from_numpy(np.concatenate([audio, np.zeros(48, np.float32)]))[None, None])[0, 0].numpy()
    # file mode compensates the model's delay: output t is the enhancement of input t
    np.testing.assert_allclose(y, ref[48 : 48 + audio.size], atol=2e-4)
