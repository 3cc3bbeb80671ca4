"""Bad input of every kind: one clear line, exit code 2, no traceback, and never a damaged output file."""

import os

import numpy as np
import pytest
import soundfile as sf
from helpers import one_line, run_cli, write_noise_wav, write_onnx_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def no_output(folder) -> bool:
    return not any(name.startswith("out") for name in os.listdir(folder))


SUBTYPES = ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"]


@pytest.mark.parametrize("subtype", SUBTYPES)
def test_every_sample_format_passes_through_exactly(tmp_path, subtype):
    src, dst = str(tmp_path / "in.wav"), str(tmp_path / "out.wav")
    x = write_noise_wav(src, rate=48000, channels=2, seconds=0.3, subtype=subtype)
    done = run_cli("--in", src, "--out", dst, "--model", "passthrough", "-q")
    assert done.returncode == 0, done.stderr
    y, _ = sf.read(dst, dtype="float32", always_2d=True)
    assert sf.info(dst).subtype == subtype
    np.testing.assert_allclose(y, x, atol=1e-6)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rate=st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000]),
    channels=st.integers(1, 8),
    frames=st.integers(1, 5000),
    subtype=st.sampled_from(["PCM_16", "PCM_24", "FLOAT"]),
)
def test_generated_files_of_any_rate_and_channel_count(tmp_path, rate, channels, frames, subtype):
    src, dst = str(tmp_path / f"in{rate}.wav"), str(tmp_path / f"out{rate}.wav")
    data = (np.random.default_rng(frames).uniform(-0.9, 0.9, (frames, channels))).astype(np.float32)
    sf.write(src, data, rate, subtype=subtype)
    x = sf.read(src, dtype="float32", always_2d=True)[0]
    done = run_cli("--in", src, "--out", dst, "--model", "passthrough", "-q")
    assert done.returncode == 0, done.stderr
    y, out_rate = sf.read(dst, dtype="float32", always_2d=True)
    assert out_rate == rate and y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=1e-6)


def test_broken_audio_files(tmp_path):
    out = str(tmp_path / "out.wav")
    good = str(tmp_path / "good.wav")
    write_noise_wav(good, rate=48000, channels=1, seconds=0.5, subtype="PCM_16")
    raw = open(good, "rb").read()
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "header-only.wav").write_bytes(raw[:44])
    (tmp_path / "garbage.flac").write_bytes(os.urandom(4000))
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(raw[: len(raw) // 2])  # the header still claims the whole length
    nan = str(tmp_path / "nan.wav")
    data = np.zeros(4800, np.float32)
    data[1000] = np.nan
    sf.write(nan, data, 48000, subtype="FLOAT")
    for name, needle in [
        ("empty.wav", "not a readable audio file"),
        ("header-only.wav", "no audio samples"),
        ("garbage.flac", "not a readable audio file"),
        ("nan.wav", "NaN or infinite sample at 0.021 s"),
    ]:
        one_line(run_cli("--in", str(tmp_path / name), "--out", out, "--model", "passthrough"), 2, needle)
        assert no_output(tmp_path)
    # A header that claims more audio than the file holds: what is there is enhanced, nothing invented.
    done = run_cli("--in", str(truncated), "--out", out, "--model", "passthrough", "-q")
    readable = sf.read(str(truncated), dtype="float32")[0]
    if done.returncode == 0:
        assert sf.info(out).frames == readable.shape[0]
    else:
        one_line(done, 2, "truncated.wav")
        assert no_output(tmp_path)


def test_broken_models(tmp_path):
    src, out = str(tmp_path / "in.wav"), str(tmp_path / "out.wav")
    write_noise_wav(src, rate=48000, channels=1, seconds=0.3)
    good = write_onnx_model(str(tmp_path / "good.onnx"))
    (tmp_path / "truncated.onnx").write_bytes(open(good, "rb").read()[:200])
    wrong_window = write_onnx_model(
        str(tmp_path / "contradiction.onnx"),
        window=1024,
        props={"sample_rate": "48000", "window": "2048", "hop": "256", "lookahead": "128", "crossfade": "64"},
    )
    rank4 = write_onnx_model(str(tmp_path / "rank4.onnx"), input_shape=["batch", 1, 1, 1024])
    bad_value = write_onnx_model(
        str(tmp_path / "bad-value.onnx"), props={"sample_rate": "fast", "window": "1024", "hop": "256", "lookahead": "0", "crossfade": "0"}
    )
    half = _half_output_model(str(tmp_path / "half-output.onnx"))
    cases = [
        (half, "output shape"),
        (str(tmp_path / "truncated.onnx"), "not a loadable ONNX model"),
        (wrong_window, "contradicts metadata window"),
        (rank4, "is not [batch, 1, window]"),
        (bad_value, "'sample_rate' must be an integer"),
    ]
    for model, needle in cases:
        one_line(run_cli("--in", src, "--out", out, "--model", model), 2, needle)
        assert no_output(tmp_path)


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--hop", "-5"], "--hop"),
        (["--hop", "0"], "hop must be positive"),
        (["--lookahead", "5000"], "exceeds the model window"),
        (["--crossfade", "3ms", "--lookahead", "1ms"], "crossfade"),
        (["--latency", "fastest"], "invalid choice"),
        (["--provider", "quantum"], "invalid choice"),
        (["--threads", "0"], "--threads"),
        (["--duration", "-1"], "--duration"),
        (["--blocksize", "-3"], "--blocksize"),
        (["--rate", "0"], "--rate"),
        (["--channels", "x"], "invalid int value"),
        (["--model", "nonexistent-model"], "unknown model"),
        (["--in", "no-such-device-xyz"], "list-devices"),
    ],
)
def test_nonsense_flags(tmp_path, flags, needle):
    src = str(tmp_path / "in.wav")
    write_noise_wav(src, rate=48000, channels=1, seconds=0.2)
    args = ["--in", src, "--out", str(tmp_path / "out.wav"), "--model", "passthrough", *flags]
    done = run_cli(*args)
    one_line(done, 2, needle)


def _half_output_model(path: str) -> str:
    """Declares [batch, 1, 1024] in, but returns only the first 512 samples."""
    import onnx
    from onnx import TensorProto, helper

    from rt_enhance.realtime.metadata import ModelInfo, to_props

    x = helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", 1, 1024])
    y = helper.make_tensor_value_info("enhanced", TensorProto.FLOAT, ["batch", 1, 512])
    ints = lambda name, v: helper.make_tensor(name, TensorProto.INT64, [1], [v])  # noqa: E731
    node = helper.make_node("Slice", ["audio", "zero", "half", "two"], ["enhanced"])
    graph = helper.make_graph([node], "half", [x], [y], initializer=[ints("zero", 0), ints("half", 512), ints("two", 2)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in to_props(ModelInfo(48000, 1024, 256, 128, 64)).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, path)
    return path
