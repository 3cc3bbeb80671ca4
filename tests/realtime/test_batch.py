"""Batch mode: a folder tree (or a glob) in, the same tree out, formats kept, reruns skip what is
done, a bad file is listed and the rest go on; run as a user runs it."""

import json
import os

import numpy as np
import pytest
import soundfile as sf
from helpers import run_cli, write_noise_wav


@pytest.fixture
def tree(tmp_path):
    """in/a.wav (PCM_16 stereo 48 kHz), in/sub/b.flac (mono 16 kHz), in/sub/deep/c.ogg, a bad
    .wav, and a text file; returns (root, {relative path: samples as written})."""
    root = tmp_path / "in"
    (root / "sub" / "deep").mkdir(parents=True)
    x = {
        "a.wav": write_noise_wav(str(root / "a.wav"), rate=48000, channels=2, seconds=0.6, subtype="PCM_16"),
        "sub/b.flac": write_noise_wav(str(root / "sub" / "b.flac"), rate=16000, channels=1, seconds=0.5, subtype="PCM_24", seed=1),
        "sub/deep/c.ogg": write_noise_wav(
            str(root / "sub" / "deep" / "c.ogg"), rate=44100, channels=1, seconds=0.4, subtype="VORBIS", seed=2
        ),
    }
    (root / "sub" / "bad.wav").write_bytes(b"RIFF\x00\x00garbage")
    (root / "notes.txt").write_text("not audio")
    return root, x


def listing(folder) -> list[str]:
    return sorted(os.path.relpath(os.path.join(r, n), folder) for r, _, names in os.walk(folder) for n in names)


def test_a_tree_in_the_same_tree_out_and_a_rerun_skips_it(tmp_path, tree, onnx_model):
    root, x = tree
    out, stats = tmp_path / "out", tmp_path / "s.json"
    model = onnx_model(gain=0.5)
    done = run_cli("--in", str(root), "--out", str(out), "--model", model, "--jobs", "2", "--stats-json", str(stats))
    assert done.returncode == 1, done.stderr
    assert listing(out) == ["a.wav", "sub/b.flac", "sub/deep/c.ogg"]  # no partial files, no text file
    assert "3 enhanced, 0 already done, 1 failed" in done.stderr
    assert f"failed: {root}/sub/bad.wav: not a readable audio file" in done.stderr
    for rel, samples in x.items():
        info_in, info_out = sf.info(str(root / rel)), sf.info(str(out / rel))
        assert (info_out.samplerate, info_out.channels, info_out.subtype) == (info_in.samplerate, info_in.channels, info_in.subtype)
        y = sf.read(str(out / rel), dtype="float32", always_2d=True)[0]
        assert y.shape == samples.shape
        if rel == "a.wav":  # at the model's rate: exact up to 16-bit rounding
            np.testing.assert_allclose(y, 0.5 * samples, atol=1e-4)
        else:  # resampled to the model's rate and back (and lossy for ogg): the level halves
            assert np.sqrt(np.mean(y**2) / np.mean(samples**2)) == pytest.approx(0.5, abs=0.03 if rel.endswith(".flac") else 0.15)
    record = json.load(open(stats))
    assert record["enhanced"] == 3 and record["failed"] == 1 and list(record["failures"]) == [f"{root}/sub/bad.wav"]

    stamp = os.stat(out / "a.wav").st_mtime_ns
    (root / "sub" / "bad.wav").unlink()
    again = run_cli("--in", str(root), "--out", str(out), "--model", model, "--jobs", "2")
    assert again.returncode == 0, again.stderr
    assert "0 enhanced, 3 already done, 0 failed" in again.stderr
    assert os.stat(out / "a.wav").st_mtime_ns == stamp


def test_a_restoring_model_writes_low_rate_files_at_its_rate(tmp_path, tree):
    """As file to file: through `music` (bandwidth extension) the 16 and 44.1 kHz files come out at 48 kHz."""
    root, _ = tree
    done = run_cli("--in", str(root), "--out", str(tmp_path / "out"), "--model", "music", "-q", timeout=300)
    assert done.returncode != 0 and "bad.wav" in done.stderr  # the bad file is listed, the rest go on
    rates = {name: sf.info(str(tmp_path / "out" / name)).samplerate for name in ("a.wav", "sub/b.flac", "sub/deep/c.ogg")}
    assert rates == {"a.wav": 48000, "sub/b.flac": 48000, "sub/deep/c.ogg": 48000}


def test_a_glob_and_an_output_folder_inside_the_input_tree(tree):
    root, x = tree
    out = root / "enhanced"
    done = run_cli("--in", f"{root}/**/*.flac", "--out", str(out), "--model", "passthrough", "--jobs", "1")
    assert done.returncode == 0, done.stderr
    assert listing(out) == ["sub/b.flac"]
    np.testing.assert_allclose(sf.read(str(out / "sub" / "b.flac"), dtype="float32", always_2d=True)[0], x["sub/b.flac"], atol=1e-6)
    # a rerun over the whole tree does not take its own outputs as inputs
    again = run_cli("--in", str(root), "--out", str(out), "--model", "passthrough", "-q")
    assert again.returncode == 1 and listing(out) == ["a.wav", "sub/b.flac", "sub/deep/c.ogg"]


@pytest.mark.parametrize("case", ["out under a file", "no audio", "audio file as out", "device flag", "jobs outside batch", "bad model"])
def test_bad_batch_input_is_one_line(tmp_path, tree, case):
    root, _ = tree
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    args, expect = {
        "out under a file": (["--in", str(root), "--out", str(tmp_path / "file" / "out")], "cannot create the output folder"),
        "no audio": (["--in", str(tmp_path / "empty"), "--out", str(tmp_path / "o")], "no audio files"),
        "audio file as out": (["--in", str(root), "--out", str(tmp_path / "o.wav")], "give one folder as --out"),
        "device flag": (["--in", str(root), "--out", str(tmp_path / "o"), "--duration", "3"], "--duration: not used in batch mode"),
        "jobs outside batch": (
            ["--in", str(root / "a.wav"), "--out", str(tmp_path / "o.wav"), "--jobs", "2"],
            "--jobs and --ray are for batch mode",
        ),
        "bad model": (["--in", str(root), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "file")], "file"),
    }[case]
    done = run_cli(*args)
    assert done.returncode == 2, done.stderr
    assert expect in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists() or listing(tmp_path / "o") == []


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local Ray cluster (``ray start --head``) for the --ray backend; skipped without the ray extra
    on a developer machine, a failure on CI."""
    import shutil
    import socket
    import subprocess
    import sys

    from helpers import ON_CI

    ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
    if not os.path.exists(ray_cli) and shutil.which("ray") is None:
        if ON_CI:
            pytest.fail("the --ray tests need the ray extra on CI")
        pytest.skip('Ray is not installed (pip install ".[ray]")')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    start = subprocess.run(
        [
            ray_cli,
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            "--object-store-memory=100000000",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        start_new_session=True,
    )  # Ray's processes in a group of their own
    assert start.returncode == 0, start.stderr[-2000:]
    yield f"127.0.0.1:{port}"
    # `ray stop` signals what it takes for Ray's processes; from a session of its own it cannot hit the
    # test process (a run of the suite ended Terminated here)
    subprocess.run([ray_cli, "stop"], env=env, capture_output=True, timeout=120, start_new_session=True)


def test_the_same_batch_on_a_ray_cluster(tmp_path, tree, onnx_model, ray_cluster):
    root, x = tree
    out = tmp_path / "out"
    model = onnx_model(gain=0.5)
    done = run_cli("--in", str(root), "--out", str(out), "--model", model, "--ray", ray_cluster, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "3 enhanced, 0 already done, 1 failed" in done.stderr and f"failed: {root}/sub/bad.wav" in done.stderr
    assert listing(out) == ["a.wav", "sub/b.flac", "sub/deep/c.ogg"]
    np.testing.assert_allclose(sf.read(str(out / "a.wav"), dtype="float32", always_2d=True)[0], 0.5 * x["a.wav"], atol=1e-4)
    again = run_cli("--in", str(root), "--out", str(out), "--model", model, "--ray", ray_cluster, timeout=300)
    assert "0 enhanced, 3 already done, 1 failed" in again.stderr


def test_an_unreachable_ray_cluster_is_one_line(tmp_path, tree):
    pytest.importorskip("ray")
    root, _ = tree
    done = run_cli("--in", str(root), "--out", str(tmp_path / "o"), "--model", "passthrough", "--ray", "127.0.0.1:9")
    assert done.returncode == 2 and "cannot reach the Ray cluster at 127.0.0.1:9" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
