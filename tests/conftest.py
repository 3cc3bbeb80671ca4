"""Shared fixtures: real ONNX models built with onnx.helper, and a JACK server."""

from __future__ import annotations

import pytest

from helpers import ON_CI, write_onnx_model


@pytest.fixture
def onnx_model(tmp_path):
    """Factory: ``onnx_model(name, **kwargs)`` writes a test ONNX model and returns its path."""

    def make(name: str = "m.onnx", **kwargs) -> str:
        return write_onnx_model(str(tmp_path / name), **kwargs)

    return make


@pytest.fixture(scope="session")
def jack_server():
    """A running JACK server: the one CI started, else a dummy one started here.

    Without jackd the test is skipped on a developer machine, but fails on CI, where device
    tests must always run.
    """
    from rt_enhance.benchmarks.jackloop import JackUnavailable, jack_running, start_dummy_server, stop_server

    if jack_running():
        yield None
        return
    try:
        proc = start_dummy_server()
    except JackUnavailable as exc:
        if ON_CI:
            pytest.fail(f"device tests need JACK on CI: {exc}")
        pytest.skip(str(exc))
    yield proc
    stop_server(proc)
