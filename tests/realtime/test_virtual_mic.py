"""--out virtual-mic against real servers started here with no sound card: headless PipeWire (with
pipewire-pulse and WirePlumber) and, where it is installed, plain PulseAudio.

A test microphone (a null sink whose monitor is remapped to a source) plays clicks; rt-enhance
enhances it into its virtual microphone; another client records the virtual microphone. On
PipeWire one recorder takes the test microphone and the virtual microphone as its two channels in
the same graph cycle, so the delay between them is measured to the sample.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from audio_servers import ServerUnavailable, pulseaudio_binary, start_pipewire, start_pulseaudio
from helpers import ON_CI, write_onnx_model

pytestmark = pytest.mark.soundserver
RATE = 48000
CLICK_EVERY = 12000


def _server(start, kind: str):
    try:
        return start()
    except ServerUnavailable as exc:
        if ON_CI and kind == "pipewire":
            pytest.fail(f"the virtual microphone tests need PipeWire on CI: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="module", params=["pipewire", "pulseaudio"])
def server(request):
    if request.param == "pulseaudio" and pulseaudio_binary() is None:
        pytest.skip(
            "plain PulseAudio is not installed: Debian's pulseaudio package depends on libasound2-plugins, "
            "which makes an ALSA plugin PortAudio's default device on the shared machines and CI that run "
            "the JACK tests; set RT_PULSEAUDIO to a pulseaudio binary to run these"
        )
    srv = _server(start_pipewire if request.param == "pipewire" else start_pulseaudio, request.param)
    srv.pactl("load-module", "module-null-sink", "sink_name=rt_test_src", f"rate={RATE}", "channels=1")
    srv.pactl("load-module", "module-remap-source", "master=rt_test_src.monitor", "source_name=rt_test_mic", "channels=1")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def half_model(tmp_path_factory) -> str:
    return write_onnx_model(str(tmp_path_factory.mktemp("m") / "half.onnx"), gain=0.5)


@pytest.fixture(scope="module")
def clicks(tmp_path_factory) -> str:
    x = np.zeros(RATE * 3, np.float32)
    x[RATE // 2 :: CLICK_EVERY] = 0.8
    path = str(tmp_path_factory.mktemp("c") / "clicks.wav")
    sf.write(path, x, RATE, subtype="FLOAT")
    return path


def start_cli(server, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rt_enhance.realtime.cli", *args], env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(predicate, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def ours(server) -> list[str]:
    """Everything rt-enhance may leave behind: its modules, sources, sinks and streams."""
    left = [line for line in server.pactl("list", "short", "modules").splitlines() if "rt_enhance" in line]
    left += [n for n in server.names("sources") | server.names("sinks") if n.startswith("rt_enhance")]
    streams = server.pactl("list", "source-outputs") + server.pactl("list", "sink-inputs")
    return left + (["an rt-enhance stream"] if 'application.name = "rt-enhance"' in streams else [])


def source_properties(server, name: str) -> str:
    blocks = server.pactl("list", "sources").split("Source #")
    return next(b for b in blocks if f"Name: {name}\n" in b)


def record_two(server, left: str, right: str, path: str) -> subprocess.Popen:
    """PipeWire: one recorder, ``left`` and ``right`` linked to its two inputs (same graph cycle)."""
    rec = subprocess.Popen(
        [
            "pw-record",
            "-P",
            "{ node.name = rt_test_rec node.autoconnect = false }",
            "--channels",
            "2",
            "--channel-map",
            "FL,FR",
            "--rate",
            str(RATE),
            "--format",
            "f32",
            path,
        ],
        env=server.env,
    )
    assert wait_for(
        lambda: "rt_test_rec:input_FR" in subprocess.run(["pw-link", "-i"], env=server.env, capture_output=True, text=True).stdout
    )
    for source, port in ((left, "FL"), (right, "FR")):
        subprocess.run(["pw-link", f"{source}:capture_MONO", f"rt_test_rec:input_{port}"], env=server.env, check=True)
    return rec


def click_positions(x: np.ndarray, threshold: float) -> np.ndarray:
    return np.flatnonzero(np.abs(x) > threshold)


def test_the_virtual_mic_holds_the_enhanced_signal_at_the_reported_delay(server, half_model, clicks, tmp_path):
    stats = tmp_path / "s.json"
    run = start_cli(server, "--in", "rt_test_mic", "--out", "virtual-mic", "--model", half_model, "-q", "--stats-json", str(stats))
    assert wait_for(lambda: "rt_enhance.half" in server.names("sources")), run.stderr.read() if run.poll() is not None else ""
    props = source_properties(server, "rt_enhance.half")
    assert "Description: rt-enhance (half)" in props and 'device.class = "monitor"' not in props  # a microphone, not a monitor
    assert wait_for(lambda: 'application.name = "rt-enhance"' in server.pactl("list", "source-outputs"))  # it took the mic
    both = str(tmp_path / "both.wav")
    if server.kind == "PipeWire":
        rec = record_two(server, "rt_test_mic", "rt_enhance.half", both)
    else:
        rec = subprocess.Popen(
            ["parec", "--device=rt_enhance.half", "--format=float32le", f"--rate={RATE}", "--channels=1", "--file-format=wav", both],
            env=server.env,
        )
    time.sleep(1.0)  # margins for a loaded machine: CI once recorded 9 of the 10 clicks with 0.5 s before and 1.5 s after
    subprocess.run(["paplay", "--device=rt_test_src", clicks], env=server.env, check=True, timeout=20)
    time.sleep(3.0)
    rec.send_signal(signal.SIGINT)
    rec.wait(timeout=10)
    run.send_signal(signal.SIGINT)
    assert run.wait(timeout=30) == 0, run.stderr.read()
    record = json.load(open(stats))
    y = sf.read(both, dtype="float32", always_2d=True)[0]
    got = click_positions(y[:, -1], 0.2)
    heard = f"enhanced clicks at {got.tolist()}"
    if y.shape[1] > 1:
        heard += f", the test mic's at {click_positions(y[:, 0], 0.6).tolist()}"
    counts = {k: v for k, v in record.items() if any(w in k for w in ("xrun", "miss", "dry", "drop"))}
    heard += f"; the engine's counts: {counts}"
    # every click, at the model's half level
    assert len(got) == len(range(RATE // 2, 3 * RATE, CLICK_EVERY)) and np.allclose(y[got, -1], 0.4, atol=0.01), heard
    if server.kind != "PipeWire":  # no drift: PulseAudio's null sink is bursty, within a block there
        assert np.all(np.abs(np.diff(got) - CLICK_EVERY) <= record["blocksize"]), heard
    if server.kind == "PipeWire":
        ref = click_positions(y[:, 0], 0.6)
        assert len(ref) == len(got), heard
        delays = got - ref  # measured in one graph cycle
        if record["deadline_misses"] == 0:  # a run the engine reports as real-time throughout
            assert len(set(delays)) == 1, heard  # one constant delay
        # else the server's cycles moved under late hops (CI: steps of 256 samples both ways with 12 misses, the test
        # mic's own clicks off their 12000-sample spacing too): every click is then held to the bounds below
        measured = int(delays[0])
        reported = record["latency_total_ms"] * RATE / 1000
        print(
            f"\nvirtual mic delay: measured {measured} samples, engine {record['latency_samples']}, "
            f"reported total {reported:.0f} (server estimates in {record['device_latency_in_ms']:.1f} ms, "
            f"out {record['device_latency_out_ms']:.1f} ms; largest {record['device_latency_in_max_ms']:.1f} "
            f"and {record['device_latency_out_max_ms']:.1f} ms)"
        )
        # The engine's part is exact; the server's part is its own estimate (libpulse's latency of
        # the two streams), reported as the median of what it said while streaming. Its input half
        # counts the test microphone's own capture latency, which this recorder shares and so does
        # not measure: the report may exceed the measured delay by up to that input estimate (a
        # loaded CI machine saw 43 ms over, with 67 ms estimated in). The estimates move with the
        # server's buffering, and a loaded CI machine heard the clicks 7.7 ms after the median's
        # report: the delay heard is never more than a block above the largest estimates. They move both ways:
        # a CI run (session 18) heard the clicks 11 ms before the median's report with 4 ms estimated in, while
        # the output estimate swung from its median 23 ms to 31 ms; the report may sit above the delay heard by
        # the input estimate plus that swing of the estimates (largest less median).
        block = record["blocksize"]
        estimated_in = record["device_latency_in_ms"] * RATE / 1000
        largest = (record["device_latency_in_max_ms"] + record["device_latency_out_max_ms"]) * RATE / 1000
        swing = largest - (record["device_latency_in_ms"] + record["device_latency_out_ms"]) * RATE / 1000
        assert np.all((record["latency_samples"] < delays) & (delays <= record["latency_samples"] + largest + block)), heard
        assert reported - measured <= estimated_in + swing + block
    assert wait_for(lambda: not ours(server), 5), ours(server)


@pytest.mark.parametrize("stop", ["duration", "SIGINT", "SIGTERM", "SIGKILL"])
def test_nothing_is_left_behind_however_it_stops(server, stop, tmp_path):
    flags = ["--duration", "2"] if stop == "duration" else []
    run = start_cli(server, "--in", "rt_test_mic", "--out", "virtual-mic", "--model", "passthrough", "-q", *flags)
    assert wait_for(lambda: "rt_enhance.passthrough" in server.names("sources")), run.stderr.read() if run.poll() is not None else ""
    assert wait_for(lambda: 'application.name = "rt-enhance"' in server.pactl("list", "source-outputs"))
    if stop != "duration":
        time.sleep(0.5)
        run.send_signal(getattr(signal, stop))
    code = run.wait(timeout=30)
    assert code == {"duration": 0, "SIGINT": 0, "SIGTERM": 0, "SIGKILL": -9}[stop], run.stderr.read()
    assert wait_for(lambda: not ours(server), 10), ours(server)  # the device is gone and the mic released


def test_mic_is_the_default_source_and_never_the_virtual_mic(server):
    server.pactl("set-default-source", "rt_test_mic")
    run = start_cli(server, "--in", "mic", "--out", "virtual-mic", "--model", "passthrough", "-q")
    try:
        assert wait_for(lambda: "rt_enhance.passthrough" in server.names("sources"))
        server.pactl("set-default-source", "rt_enhance.passthrough")  # as a server may do with a new source
        second = start_cli(server, "--in", "mic", "--out", "virtual-mic", "--model", "speech", "-q")
        _, err = second.communicate(timeout=30)
        assert second.returncode == 2 and "rt-enhance's own virtual microphone" in err
        test_mic = next(line.split("\t")[0] for line in server.pactl("list", "short", "sources").splitlines() if "\trt_test_mic\t" in line)

        def on_test_mic() -> bool:  # the server may move it to the new default; rt-enhance moves it back
            streams = server.pactl("list", "source-outputs").split("Source Output #")
            mine = [s for s in streams if 'application.name = "rt-enhance"' in s]
            return len(mine) == 1 and f"Source: {test_mic}\n" in mine[0]

        time.sleep(2.5)
        assert wait_for(on_test_mic, 10)  # rt-enhance checks once a second; a loaded machine's pactl calls take a while
    finally:
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=30) == 0, run.stderr.read()
        server.pactl("set-default-source", "rt_test_mic")
    assert wait_for(lambda: not ours(server), 5), ours(server)


def test_a_leftover_of_a_dead_run_is_replaced(server):
    dead = subprocess.Popen(["true"])
    dead.wait()
    mark = f"rt_enhance.pid={dead.pid}"
    old = server.pactl(
        "load-module", "module-null-sink", "sink_name=rt_enhance.passthrough.sink", f'sink_properties="device.description=old {mark}"'
    ).strip()
    run = start_cli(server, "--in", "rt_test_mic", "--out", "virtual-mic", "--model", "passthrough", "--duration", "1.5", "-q")
    assert run.wait(timeout=30) == 0, run.stderr.read()
    assert "left by an earlier run" in run.stderr.read()
    modules = server.pactl("list", "short", "modules")
    assert not any(line.split("\t")[0] == old for line in modules.splitlines())
    assert wait_for(lambda: not ours(server), 5), ours(server)


def test_a_name_clash_and_a_second_run_are_one_line(server):
    foreign = server.pactl("load-module", "module-null-sink", "sink_name=rt_enhance.passthrough.sink").strip()
    try:
        done = start_cli(server, "--in", "rt_test_mic", "--out", "virtual-mic", "--model", "passthrough", "--duration", "1")
        out, err = done.communicate(timeout=30)
        assert done.returncode == 2 and "already exists and is not a leftover of rt-enhance" in err
        assert len(err.strip().splitlines()) == 1
    finally:
        server.pactl("unload-module", foreign)
    first = start_cli(server, "--in", "rt_test_mic", "--out", "virtual-mic", "--model", "passthrough", "--duration", "6", "-q")
    try:
        assert wait_for(lambda: "rt_enhance.passthrough" in server.names("sources"))
        second = start_cli(server, "--in", "rt_test_mic", "--out", "virtual-mic", "--model", "passthrough", "--duration", "1")
        _, err = second.communicate(timeout=30)
        assert second.returncode == 2 and f"another rt-enhance (pid {first.pid})" in err and len(err.strip().splitlines()) == 1
        assert "rt_enhance.passthrough" in server.names("sources")  # the first run's device is untouched
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
    assert wait_for(lambda: not ours(server), 5), ours(server)


def test_no_server_and_no_tools_are_one_line(tmp_path):
    from helpers import run_cli

    env = dict(os.environ, PULSE_SERVER=f"unix:{tmp_path}/nothing", XDG_RUNTIME_DIR=str(tmp_path))
    done = run_cli("--in", "mic", "--out", "virtual-mic", "--model", "passthrough", env=env)
    assert done.returncode == 2 and "no PulseAudio or PipeWire server is running" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = run_cli("--in", "mic", "--out", "virtual-mic", "--model", "passthrough", env=dict(env, PATH=str(tmp_path)))
    assert done.returncode == 2 and "apt-get install pulseaudio-utils" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
