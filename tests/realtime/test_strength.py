"""--strength: 0 is the aligned input exactly, the default is the model's output bit for bit, values
between mix the two; the same in file mode and the streaming core that live mode runs."""

import numpy as np
import pytest
import soundfile as sf
from helpers import run_cli, write_noise_wav, write_stateful_delay_model

from rt_enhance.realtime import strength as mixing
from rt_enhance.realtime.geometry import Geometry
from rt_enhance.realtime.processor import OnnxProcessor, bundled_model_path, open_onnx, open_processor
from rt_enhance.realtime.streamer import Streamer


def run(streamer: Streamer, x: np.ndarray, block: int = 333) -> np.ndarray:
    outs = [streamer.feed(x[:, i : i + block]) for i in range(0, x.shape[1], block)]
    return np.concatenate(outs + [streamer.flush()], axis=1)


def noise(channels: int = 2, n: int = 9000, seed: int = 1) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal((channels, n))).astype(np.float32)


class NoMix:
    def push(self, block):
        pass

    def reset(self):
        pass

    def __call__(self, out):
        return out


def windowed_half(onnx_model) -> tuple[OnnxProcessor, Geometry]:
    proc = OnnxProcessor(onnx_model(gain=0.5, window=1024, hop=256, lookahead=128, crossfade=64))
    return proc, Geometry(48000, 1024, 256, 128, 64)


def stateful_half(tmp_path) -> tuple[OnnxProcessor, Geometry]:
    proc = open_onnx(write_stateful_delay_model(str(tmp_path / "d.onnx"), delay=3, stride=4, hop=8, gain=0.5))
    return proc, Geometry(48000, 4, 8, 3, 0, stateful=True)


@pytest.mark.parametrize("make", ["windowed", "stateful"])
def test_strength_zero_is_the_input_and_one_is_untouched(make, onnx_model, tmp_path):
    proc, g = windowed_half(onnx_model) if make == "windowed" else stateful_half(tmp_path)
    x = noise()
    full = run(Streamer(proc, g, 2), x)
    np.testing.assert_allclose(full, 0.5 * x, atol=1e-6)  # the model does something
    np.testing.assert_array_equal(run(Streamer(proc, g, 2, strength=0.0), x), x)
    plain = Streamer(proc, g, 2)
    plain.mix = NoMix()  # the engine without any mixing step
    np.testing.assert_array_equal(run(Streamer(proc, g, 2, strength=1.0), x), run(plain, x))
    np.testing.assert_allclose(run(Streamer(proc, g, 2, strength=0.5), x), 0.75 * x, atol=1e-6)


@pytest.mark.skipif(not bundled_model_path("speech"), reason="the speech model is not bundled in this checkout")
def test_bundled_speech_model_strength_between_dry_and_wet():
    proc = open_processor("speech")
    info = proc.info
    g = Geometry(info.sample_rate, info.window, info.hop, info.lookahead, 0, stateful=True)
    x = noise(1, 24000, seed=3)
    wet = run(Streamer(proc, g, 1), x)
    assert np.abs(wet - x).max() > 0.01  # it removes noise
    np.testing.assert_array_equal(run(Streamer(proc, g, 1, strength=0.0), x), x)
    half = run(Streamer(proc, g, 1, strength=0.3), x)
    np.testing.assert_allclose(half, x + np.float32(0.3) * (wet - x), atol=1e-6)
    assert np.sqrt(np.mean(wet**2)) < np.sqrt(np.mean(half**2)) < np.sqrt(np.mean(x**2))


def test_a_change_while_streaming_is_ramped_not_stepped(onnx_model):
    proc, g = windowed_half(onnx_model)
    x = np.full((1, 48000), 0.5, np.float32)
    s = Streamer(proc, g, 1)
    first = s.feed(x[:, :24000])
    s.mix.strength = 0.0
    second = s.feed(x[:, 24000:])
    y = np.concatenate([first, second], axis=1)[0]
    assert y[1000] == pytest.approx(0.25) and y[-1] == pytest.approx(0.5)
    assert np.abs(np.diff(y[1000:])).max() < 0.25 / 100  # spread over a block, never a step


def test_parse_strength_and_keys():
    assert mixing.parse_strength("0.8") == 0.8
    assert mixing.parse_strength("12dB") == pytest.approx(1 - 10 ** (-12 / 20))
    assert mixing.cap_db(mixing.parse_strength("20 db")) == pytest.approx(20.0)
    for bad in ["1.5", "-0.1", "nan", "loud", "-3dB"]:
        with pytest.raises(ValueError):
            mixing.parse_strength(bad)
    assert mixing.apply_keys(1.0, "---x") == pytest.approx(0.7)
    assert mixing.apply_keys(0.95, "++") == 1.0 and mixing.apply_keys(0.05, "--") == 0.0


def test_file_mode_strength(tmp_path, onnx_model):
    src = str(tmp_path / "in.wav")
    x = write_noise_wav(src, rate=48000, channels=2, seconds=0.7)
    model = onnx_model(gain=0.5)
    outs = {}
    for s in ["0", "12dB", "1"]:
        dst = str(tmp_path / f"out-{s}.wav")
        done = run_cli("--in", src, "--out", dst, "--model", model, "--strength", s, "-q")
        assert done.returncode == 0, done.stderr
        outs[s] = sf.read(dst, dtype="float32", always_2d=True)[0]
    np.testing.assert_array_equal(outs["0"], x)
    np.testing.assert_allclose(outs["1"], 0.5 * x, atol=1e-6)
    s12 = 1 - 10 ** (-12 / 20)
    np.testing.assert_allclose(outs["12dB"], x * (1 - 0.5 * s12), atol=1e-6)


def test_bad_strength_is_one_line(tmp_path):
    src = str(tmp_path / "in.wav")
    write_noise_wav(src, rate=48000, channels=1, seconds=0.1)
    done = run_cli("--in", src, "--out", str(tmp_path / "o.wav"), "--strength", "2")
    assert done.returncode == 2 and "--strength" in done.stderr and "0..1" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "o.wav").exists()
