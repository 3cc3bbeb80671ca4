"""What a careful user runs into: one line, the documented exit code, and nothing lost or ignored."""

import os
import resource
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from helpers import one_line, run_cli, write_noise_wav


def leftovers(folder) -> list[str]:
    return [p for p in os.listdir(folder) if "partial" in p]


@pytest.fixture
def src(tmp_path) -> str:
    path = str(tmp_path / "in.wav")
    write_noise_wav(path, rate=48000, channels=1, seconds=0.4, subtype="PCM_16")
    return path


@pytest.fixture
def read_only_folder(tmp_path) -> str:
    """A folder nobody may create files in: chmod 555, or for root (whom modes do not stop) /sys."""
    if os.geteuid() == 0:
        return "/sys"
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    return str(folder)


def test_read_only_output_folder(src, read_only_folder):
    out = os.path.join(read_only_folder, "out.wav")
    one_line(run_cli("--in", src, "--out", out, "--model", "passthrough"), 2, "cannot create files in", "writable folder")
    stats = os.path.join(read_only_folder, "stats.json")
    one_line(
        run_cli("--in", src, "--out", os.path.join(os.path.dirname(src), "o.wav"), "--stats-json", stats, "--model", "passthrough"),
        2,
        "--stats-json",
        "cannot create files in",
    )
    assert not os.path.exists(os.path.join(os.path.dirname(src), "o.wav"))  # refused before the job ran


def test_out_naming_a_folder_is_refused_before_the_job(tmp_path, src):
    folder = tmp_path / "folder"
    folder.mkdir()
    one_line(run_cli("--in", src, "--out", str(folder), "--model", "passthrough"), 2, "is a folder", "name a file")
    one_line(
        run_cli("--in", src, "--out", str(tmp_path / "o.wav"), "--stats-json", str(folder), "--model", "passthrough"),
        2,
        "--stats-json",
        "is a folder",
    )
    assert os.listdir(folder) == [] and not (tmp_path / "o.wav").exists()


def test_disk_full_in_file_mode_exits_4_and_replaces_nothing(tmp_path):
    src, dst = str(tmp_path / "in.wav"), str(tmp_path / "out.wav")
    write_noise_wav(src, rate=48000, channels=2, seconds=3.0, subtype="PCM_24")
    sf.write(dst, np.full(100, 0.25, np.float32), 48000)
    before = open(dst, "rb").read()
    limit = 200_000  # bytes: well short of the 860 kB the output needs
    done = run_cli(
        "--in",
        src,
        "--out",
        dst,
        "--model",
        "passthrough",
        "-q",
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
    )
    one_line(done, 4, "writing failed", "is the disk full", "no output file was replaced")
    assert open(dst, "rb").read() == before and leftovers(tmp_path) == []


def test_unknown_subtype_is_refused(tmp_path, src):
    one_line(
        run_cli("--in", src, "--out", str(tmp_path / "o.wav"), "--subtype", "XYZ", "--model", "passthrough"), 2, "--subtype XYZ", "PCM_24"
    )
    one_line(
        run_cli("--in", src, "--out", str(tmp_path / "o.flac"), "--subtype", "FLOAT", "--model", "passthrough"),
        2,
        "--subtype FLOAT",
        "FLAC",
    )
    done = run_cli("--in", src, "--out", str(tmp_path / "o.wav"), "--subtype", "pcm_16", "--model", "passthrough", "-q")
    assert done.returncode == 0 and sf.info(str(tmp_path / "o.wav")).subtype == "PCM_16"


def test_rate_and_duration_are_honoured_in_file_mode(tmp_path):
    src, dst = str(tmp_path / "in.wav"), str(tmp_path / "out.wav")
    t = np.arange(int(1.3 * 16000)) / 16000
    sf.write(src, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, subtype="FLOAT")
    done = run_cli("--in", src, "--out", dst, "--model", "passthrough", "--rate", "48000", "--duration", "1", "-q")
    assert done.returncode == 0, done.stderr
    y, rate = sf.read(dst, dtype="float32")
    assert rate == 48000 and y.shape[0] == 48000
    ref = (0.5 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)).astype(np.float32)
    np.testing.assert_allclose(y[1000:-1000], ref[1000:-1000], atol=2e-3)


def test_flags_for_devices_are_refused_in_file_mode(tmp_path, src):
    out = str(tmp_path / "o.wav")
    one_line(run_cli("--in", src, "--out", out, "--channels", "2", "--model", "passthrough"), 2, "--channels applies to a device")
    one_line(run_cli("--in", src, "--out", out, "--blocksize", "256", "--model", "passthrough"), 2, "--blocksize applies")
    one_line(run_cli("--in", src, "--out", out, "--no-limiter", "--model", "passthrough"), 2, "--no-limiter applies")
    assert not os.path.exists(out)


def test_list_devices_with_no_device_says_so(tmp_path):
    """On a machine without a sound card: PortAudio pointed at a JACK server that does not exist."""
    env = dict(os.environ, JACK_DEFAULT_SERVER="rt-enhance-none", JACK_NO_START_SERVER="1")
    count = subprocess.run(
        [sys.executable, "-c", "import sounddevice as sd; print(len(sd.query_devices()))"], capture_output=True, text=True, env=env
    )
    if count.stdout.strip() != "0":
        pytest.skip(f"PortAudio still sees devices here: {count.stdout.strip() or count.stderr.strip()[-200:]}")
    done = run_cli("--list-devices", env=env)
    assert done.returncode == 0 and "no audio devices found" in done.stdout, (done.stdout, done.stderr)


def test_inputs_that_are_not_files_are_named(tmp_path):
    out = str(tmp_path / "o.wav")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "folder").mkdir()
    for path, needle in [
        (str(tmp_path / "folder"), "is a folder"),
        (str(tmp_path / "pipe"), "is a FIFO"),
        ("/dev/null", "is a device file"),
        (str(tmp_path / "missing.wav"), "not found"),
    ]:
        one_line(run_cli("--in", path, "--out", out, "--model", "passthrough"), 2, path, needle)
    assert not os.path.exists(out)


def test_a_truncated_wav_is_named(tmp_path):
    good, cut, out = str(tmp_path / "good.wav"), str(tmp_path / "cut.wav"), str(tmp_path / "o.wav")
    write_noise_wav(good, rate=48000, channels=1, seconds=1.0, subtype="PCM_16")
    raw = open(good, "rb").read()
    open(cut, "wb").write(raw[: 44 + 48000])  # the header promises 1 s; 0.5 s is there
    done = run_cli("--in", cut, "--out", out, "--model", "passthrough", "-q")
    line = one_line(done, 0, "cut.wav is truncated", "promises 1.000 s", "holds 0.500 s")
    assert line.startswith("rt-enhance: ")
    assert sf.info(out).frames == 24000


@pytest.mark.parametrize("ext, subtype", [(".wav", "PCM_24"), (".flac", "PCM_24"), (".ogg", "VORBIS")])
def test_mp3_in_any_format_out(tmp_path, ext, subtype):
    src, dst = str(tmp_path / "in.mp3"), str(tmp_path / f"out{ext}")
    t = np.arange(48000) / 48000
    sf.write(src, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 48000)
    done = run_cli("--in", src, "--out", dst, "--model", "passthrough", "-q")
    assert done.returncode == 0, done.stderr
    assert sf.info(dst).subtype == subtype and sf.info(dst).frames == sf.info(src).frames


def test_threads_and_hops_out_of_bounds(tmp_path, src):
    out = str(tmp_path / "o.wav")
    one_line(run_cli("--in", src, "--out", out, "--threads", "2000"), 2, "--threads 2000", f"use 1 to {os.cpu_count()}")
    line = one_line(run_cli("--in", src, "--out", out, "--hop", "0"), 2, "--hop 0", "positive")
    assert "e.g. 240 or 240" not in line
    one_line(run_cli("--in", src, "--out", out, "--hop", "9999999840"), 2, "--hop 9999999840", "at most")
    one_line(run_cli("--in", src, "--out", out, "--model", "passthrough", "--rate", "10000000"), 2, "--rate", "out of range")
    # a block so large no callback ever came (the run was then called a device loss, its target emptied)
    one_line(run_cli("--in", "JACK", "--out", out, "--blocksize", "1000000"), 2, "--blocksize 1000000", "out of range", "65536")
    assert not os.path.exists(out)


def test_crafted_files_and_metadata_are_refused_before_they_cost_memory(tmp_path, src, onnx_model):
    out = str(tmp_path / "o.wav")
    one_hz = str(tmp_path / "one-hz.wav")
    sf.write(one_hz, np.zeros(1000, np.float32), 1, subtype="PCM_16")
    one_line(run_cli("--in", one_hz, "--out", out, "--model", "passthrough"), 2, "one-hz.wav", "sample rate 1 Hz", "out of range")
    props = {"sample_rate": str(10**12), "window": "1024", "hop": "256", "lookahead": "128", "crossfade": "64"}
    one_line(run_cli("--in", src, "--out", out, "--model", onnx_model("rate.onnx", props=props)), 2, "metadata sample_rate")
    props = {"sample_rate": "48000", "window": str(10**9), "hop": "256", "lookahead": "128", "crossfade": "64"}
    one_line(
        run_cli("--in", src, "--out", out, "--model", onnx_model("window.onnx", input_shape=["batch", 1, "n"], props=props)),
        2,
        "metadata window",
    )
    assert not os.path.exists(out)
