"""Shared fixtures: real ONNX models built with onnx.helper, and a JACK server."""

from __future__ import annotations

import itertools

import pytest
from helpers import ON_CI, kill_started, write_onnx_model


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a test module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``): on tiny
    tensors a second intra-op thread only spins against the other tests on a shared machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
    _close_portaudio()  # while the server still runs: PortAudio's JACK client closed at exit would assert (rc 134)
    stop_server(proc)


def _close_portaudio() -> None:
    """Terminate PortAudio in this process if a test opened it (sounddevice re-initialises it when used again)."""
    import sys

    sd = sys.modules.get("sounddevice")
    if sd is not None:
        while getattr(sd, "_initialized", 0) > 0:
            sd._terminate()


@pytest.fixture(autouse=True)
def _no_cli_left_running():
    """A test that fails half-way must not leave its rt-enhance running: the next JACK test would find
    that client under the name it waits for (and its own renamed PortAudio-01)."""
    yield
    kill_started()


_PRIVATE = itertools.count()


@pytest.fixture
def private_jack():
    """A JACK dummy server of this test's own, for tests that kill a client with SIGKILL: a client
    killed that way can stay in its server as a zombie holding its name, so the clients of later
    tests on the shared server would be renamed (PortAudio-01). Yields the environment that points
    rt-enhance at it (``JACK_DEFAULT_SERVER``); the server is stopped afterwards."""
    import os

    from rt_enhance.benchmarks.jackloop import JackUnavailable, start_dummy_server, stop_server

    name = f"rtpriv{os.getpid()}x{next(_PRIVATE)}"
    try:
        proc = start_dummy_server(name=name)
    except JackUnavailable as exc:
        if ON_CI:
            pytest.fail(f"device tests need JACK on CI: {exc}")
        pytest.skip(str(exc))
    try:
        yield dict(os.environ, JACK_DEFAULT_SERVER=name)
    finally:
        kill_started()
        stop_server(proc, name)
