"""Recordings that survive the process: kill -9 at any moment, signals at any moment, streams that never start."""

import os
import random
import shutil
import signal
import subprocess
import time
import wave

import pytest
import soundfile as sf
from helpers import ON_CI, run_cli, start_cli, write_noise_wav

pytestmark = pytest.mark.jack


def partial_files(folder) -> list[str]:
    return [os.path.join(folder, f) for f in os.listdir(folder) if ".partial-" in f]


def wait_for(condition, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    start = time.monotonic()
    while not condition():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(0.01)


def frames_on_disk(path: str) -> int:
    """Frames the writer had put in the file, whatever its header says (the bytes after 'data');
    0 while the header is not written yet."""
    raw = open(path, "rb").read()
    if b"data" not in raw:
        return 0
    at = raw.index(b"data") + 8
    info = sf.info(path)
    width = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4}[info.subtype]
    return (len(raw) - at) // (width * info.channels)


def frames_every_reader_sees(path: str) -> dict[str, int]:
    """Frames read by soundfile, Python's wave, scipy, sox (decoding to raw) and soxi (the header)."""
    from scipy.io import wavfile

    channels = sf.info(path).channels
    seen = {"soundfile": sf.read(path, dtype="float32", always_2d=True)[0].shape[0]}
    with wave.open(path) as w:
        seen["wave"] = len(w.readframes(w.getnframes())) // (w.getsampwidth() * w.getnchannels())
    seen["scipy"] = wavfile.read(path)[1].shape[0]
    decoded = subprocess.run(["sox", path, "-t", "f32", "-"], capture_output=True, check=True)
    assert b"Premature EOF" not in decoded.stderr, decoded.stderr
    seen["sox"] = len(decoded.stdout) // (4 * channels)
    seen["soxi"] = int(subprocess.run(["soxi", "-s", path], capture_output=True, text=True, check=True).stdout)
    return seen


@pytest.fixture(scope="module")
def sox():
    if shutil.which("sox") is None or shutil.which("soxi") is None:
        if ON_CI:
            pytest.fail("sox is missing on CI (scripts/test.sh installs it)")
        pytest.skip("sox is not installed (apt-get install sox)")


@pytest.mark.parametrize("ext", [".wav", ".flac"])
def test_kill_9_at_random_moments_leaves_a_wav_every_reader_reads(private_jack, sox, tmp_path, ext):
    rng = random.Random(22 + len(ext))
    for attempt in range(3):
        folder = tmp_path / f"run{attempt}"
        folder.mkdir()
        take = folder / f"take{ext}"
        proc = start_cli("--in", "JACK", "--out", str(take), "--model", "passthrough", "-q", module="rt_enhance.realtime", env=private_jack)
        # Random moments of the recording: a client killed while it registers with JACK stays in the
        # server as a zombie that holds its name, and later clients are renamed (PortAudio-01).
        wait_for(lambda: partial_files(folder) and frames_on_disk(partial_files(folder)[0]) > 0, proc)  # noqa: B023 (called in this iteration)
        time.sleep(rng.uniform(0.0, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
        files = partial_files(folder)
        assert len(files) == 1 and files[0].endswith(".wav") and not take.exists(), os.listdir(folder)
        written = frames_on_disk(files[0])
        rate = sf.info(files[0]).samplerate
        seen = frames_every_reader_sees(files[0])
        assert all(n >= written - rate for n in seen.values()), (written, seen)
        assert len(set(seen.values())) == 1, seen  # the header is the truth for all of them


def test_sigint_or_sigterm_at_any_moment_never_empties_a_good_file(private_jack, tmp_path):
    """Early, before the engine runs, a signal replaces nothing; later it keeps the recording."""
    take = tmp_path / "take.wav"
    write_noise_wav(str(take), rate=48000, channels=1, seconds=0.5, subtype="PCM_16")
    good = take.read_bytes()
    rng = random.Random(7)
    for attempt in range(6):
        proc = start_cli(
            "--in", "JACK", "--out", str(take), "--model", "passthrough", "-q", module="rt_enhance.realtime", env=private_jack
        )  # a signal while the client registers can leave a zombie in the server
        time.sleep(rng.uniform(0.0, 2.5))
        proc.send_signal(signal.SIGINT if attempt % 2 == 0 else signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert "Traceback" not in err, err
        data = sf.read(str(take), dtype="float32", always_2d=True)[0]
        assert take.read_bytes() == good or data.shape[0] > 0, (attempt, err)
        assert partial_files(tmp_path) == []
        good = take.read_bytes()


def test_a_stream_that_never_calls_back_is_not_called_lost(jack_server):
    """A stream that produced no callback at all (here: opened and never started) is told apart
    from one whose device went away."""
    from rt_enhance.realtime.devices import find_device, sounddevice
    from rt_enhance.realtime.geometry import Geometry
    from rt_enhance.realtime.live import NEVER_STARTED, LiveEngine
    from rt_enhance.realtime.processor import PassthroughProcessor
    from rt_enhance.realtime.streamer import Streamer

    device = find_device("JACK", "input")
    processor = PassthroughProcessor.at_rate(48000)
    streamer = Streamer(processor, Geometry(48000, 2048, 480, 480, 240), 1)
    engine = LiveEngine(streamer=streamer, device_rate=48000, input_device=device, output_device=None)
    stream = sounddevice().InputStream(device=device.index, channels=1, samplerate=48000, callback=engine.callbacks.capture)
    try:
        engine._wait(stream, None, None)
    finally:
        stream.close()
    assert engine.stop_reason == NEVER_STARTED and engine.device_lost


def test_file_to_speakers_reports_its_latency_and_misses_consistently(jack_server, tmp_path):
    import json

    src, stats = str(tmp_path / "in.wav"), tmp_path / "stats.json"
    write_noise_wav(src, rate=48000, channels=1, seconds=1.5)
    done = run_cli("--in", src, "--out", "JACK", "--model", "passthrough", "--stats-json", str(stats), "-q")
    assert done.returncode == 0, done.stderr
    record = json.loads(stats.read_text())
    assert record["latency_samples"] == record["hop"] + record["lookahead"] > 0
    assert (record["missed_samples"] > 0) == (record["miss_events"] > 0)
    assert record["deadline_misses"] >= record["miss_events"]
