"""Helpers shared by the tests (importable: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import soundfile as sf

from rt_enhance.realtime.metadata import ModelInfo, to_props

ON_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def write_onnx_model(
    path: str,
    *,
    gain: float | None = None,
    window: int = 1024,
    sample_rate: int = 48000,
    hop: int = 256,
    lookahead: int = 128,
    crossfade: int = 64,
    props: dict[str, str] | None = None,
    input_shape: list | None = None,
) -> str:
    """An ONNX model [batch, 1, window] -> same: the identity, or a multiplication by ``gain``."""
    import onnx
    from onnx import TensorProto, helper

    shape = input_shape or ["batch", 1, window]
    x = helper.make_tensor_value_info("audio", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("enhanced", TensorProto.FLOAT, shape)
    if gain is None:
        nodes, inits = [helper.make_node("Identity", ["audio"], ["enhanced"])], []
    else:
        nodes = [helper.make_node("Mul", ["audio", "gain"], ["enhanced"])]
        inits = [helper.make_tensor("gain", TensorProto.FLOAT, [], [gain])]
    graph = helper.make_graph(nodes, "test", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = props if props is not None else to_props(ModelInfo(sample_rate, window, hop, lookahead, crossfade, extra={"name": "test"}))
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def train_argv(runs: str | os.PathLike, corpus: str | os.PathLike, name: str, flags: str, *extra: str) -> list[str]:
    """``rt-train`` arguments for a run ``name`` on ``corpus`` at 16 kHz with 1024-sample windows on one thread, then
    ``flags`` (split at spaces) and ``extra`` (whole arguments, such as a pipeline with spaces in it)."""
    common = ["-n", name, "--runs", str(runs), "--data_root", str(corpus), "--rate", "16000", "-w", "1024", "--threads", "1"]
    return [*common, *flags.split(), *extra]


def write_noise_wav(path: str, *, rate: int, channels: int, seconds: float, subtype: str = "FLOAT", seed: int = 0) -> np.ndarray:
    """Seeded band-limited noise file; returns the samples as written, float32 [frames, channels]."""
    rng = np.random.default_rng(seed)
    data = (0.2 * rng.standard_normal((int(rate * seconds), channels))).clip(-0.99, 0.99).astype(np.float32)
    sf.write(path, data, rate, subtype=subtype)
    return sf.read(path, dtype="float32", always_2d=True)[0]


def one_line(done: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """Assert that a run ended with ``code`` and one stderr line (no traceback) holding every needle."""
    assert done.returncode == code, (done.returncode, done.stderr)
    lines = [line for line in done.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


#: rt-enhance processes started by :func:`start_cli`; the test set-up kills those still running after
#: each test, so a failed test never leaves a client behind that takes the next one's JACK name.
STARTED: list[subprocess.Popen] = []


def start_cli(*args: str, module: str = "rt_enhance.realtime.cli", env=None, preexec_fn=None) -> subprocess.Popen:
    """``python -m MODULE ARGS`` in the background, text pipes (``rt_enhance.realtime`` is what the
    ``rt-enhance`` console script runs: the light entry module, then the CLI)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=preexec_fn
    )
    STARTED.append(proc)
    return proc


def kill_started() -> None:
    """Kill and reap every process of :func:`start_cli` still running."""
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def run_cli(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Run ``rt-enhance`` as a user would, in a subprocess."""
    cmd = [sys.executable, "-m", "rt_enhance.realtime.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)


def write_stateful_delay_model(
    path: str, *, delay: int = 3, stride: int = 4, hop: int = 8, gain: float = 1.0, sample_rate: int = 48000
) -> str:
    """A real stateful ONNX model: ``y[t] = gain * x[t - delay]``, its state the last ``delay`` samples.

    Inputs ``audio`` [batch, 1, n] and ``state`` [batch, 1, delay]; outputs ``enhanced`` and
    ``next_state``: the smallest model that exercises the engine's stateful path.
    """
    import json

    import onnx
    from onnx import TensorProto, helper

    audio = helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", 1, "n"])
    state = helper.make_tensor_value_info("state", TensorProto.FLOAT, ["batch", 1, delay])
    out = helper.make_tensor_value_info("enhanced", TensorProto.FLOAT, ["batch", 1, "n"])
    nxt = helper.make_tensor_value_info("next_state", TensorProto.FLOAT, ["batch", 1, delay])
    ints = lambda name, values: helper.make_tensor(name, TensorProto.INT64, [len(values)], values)  # noqa: E731
    nodes = [
        helper.make_node("Concat", ["state", "audio"], ["joined"], axis=2),
        helper.make_node("Shape", ["audio"], ["shape"]),
        helper.make_node("Slice", ["shape", "two", "three"], ["n"]),
        helper.make_node("Slice", ["joined", "zero", "n", "two"], ["delayed"]),
        helper.make_node("Mul", ["delayed", "gain"], ["enhanced"]),
        helper.make_node("Slice", ["joined", "minus_delay", "big", "two"], ["next_state"]),
    ]
    inits = [
        ints("zero", [0]),
        ints("two", [2]),
        ints("three", [3]),
        ints("minus_delay", [-delay]),
        ints("big", [1 << 62]),
        helper.make_tensor("gain", TensorProto.FLOAT, [], [gain]),
    ]
    graph = helper.make_graph(nodes, "delay", [audio, state], [out, nxt], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    extra = {
        "name": "delay",
        "total_stride": str(stride),
        "state_inputs": json.dumps(["state"]),
        "state_outputs": json.dumps(["next_state"]),
        "state_shapes": json.dumps([[-1, 1, delay]]),
    }
    info = ModelInfo(sample_rate, delay + 1, hop, delay, 0, kind="stateful", extra=extra)
    for key, value in to_props(info).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def write_slow_onnx_model(
    path: str, *, window: int = 1024, repeats: int = 40, hop: int = 256, lookahead: int = 128, crossfade: int = 64
) -> str:
    """An identity ONNX model made slow on purpose: ``repeats`` matrix products with the identity
    matrix, so each window costs ``repeats * window**2`` multiply-adds and the output equals the input."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", 1, window])
    y = helper.make_tensor_value_info("enhanced", TensorProto.FLOAT, ["batch", 1, window])
    eye = np.eye(window, dtype=np.float32)
    inits = [helper.make_tensor("eye", TensorProto.FLOAT, eye.shape, eye.tobytes(), raw=True)]
    nodes, name = [], "audio"
    for i in range(repeats):
        nodes.append(helper.make_node("MatMul", [name, "eye"], [f"m{i}"]))
        name = f"m{i}"
    nodes.append(helper.make_node("Identity", [name], ["enhanced"]))
    graph = helper.make_graph(nodes, "slow", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in to_props(ModelInfo(48000, window, hop, lookahead, crossfade, extra={"name": "slow"})).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path
