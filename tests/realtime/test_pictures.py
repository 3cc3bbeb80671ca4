"""--spectrogram: a PNG of the input's and the output's spectrograms, and the one-line errors."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from helpers import run_cli, write_noise_wav

from rt_enhance.realtime.pictures import spectrogram_db


def write_tone(path: str, *, freq: float = 3000.0, amp: float = 1.0, rate: int = 48000, seconds: float = 1.0) -> None:
    t = np.arange(int(rate * seconds)) / rate
    sf.write(path, (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, subtype="FLOAT")


def test_a_full_scale_tone_reads_zero_dbfs_at_its_frequency(tmp_path):
    path = str(tmp_path / "tone.wav")
    write_tone(path, freq=3000.0, amp=1.0)
    db, seconds, rate = spectrogram_db(path)
    assert rate == 48000 and seconds == pytest.approx(1.0) and db.shape[0] == 513
    column = db[:, db.shape[1] // 2]
    assert int(column.argmax()) == 64  # 3000 Hz / (48000 / 1024)
    assert column.max() == pytest.approx(0.0, abs=0.5)
    assert np.median(column) < -60


def test_long_files_are_thinned_to_a_bounded_width(tmp_path):
    path = str(tmp_path / "long.wav")
    write_tone(path, seconds=120.0, rate=8000)
    db, _, _ = spectrogram_db(path, max_frames=500)
    assert 400 <= db.shape[1] <= 501


def test_cli_writes_the_picture(tmp_path, onnx_model):
    src, dst, png = (str(tmp_path / n) for n in ("in.wav", "out.wav", "ba.png"))
    write_tone(src, amp=0.5)
    done = run_cli("--in", src, "--out", dst, "--model", onnx_model(gain=0.5), "--spectrogram", png, "-q")
    assert done.returncode == 0, done.stderr
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(png) > 20000
    before, after = spectrogram_db(src)[0], spectrogram_db(dst)[0]
    assert before.max() - after.max() == pytest.approx(6.02, abs=0.1)  # the picture shows what the model did


def test_picture_needs_file_mode_and_matplotlib(tmp_path):
    src = str(tmp_path / "in.wav")
    write_noise_wav(src, rate=16000, channels=1, seconds=0.2)
    done = run_cli("--in", src, "--out", "speakers", "--spectrogram", str(tmp_path / "x.png"))
    assert done.returncode == 2 and "--spectrogram needs file mode" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    hidden = (
        "import sys; sys.modules['matplotlib'] = None; from rt_enhance.realtime.cli import main; "
        f"sys.exit(main(['--in', {src!r}, '--out', {str(tmp_path / 'o.wav')!r}, '--spectrogram', 'x.png']))"
    )
    done = subprocess.run([sys.executable, "-c", hidden], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and 'pip install "rt-enhance[plot]"' in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "o.wav").exists()


def test_unwritable_picture_is_one_line(tmp_path):
    src = str(tmp_path / "in.wav")
    write_noise_wav(src, rate=16000, channels=1, seconds=0.2)
    done = run_cli("--in", src, "--out", str(tmp_path / "o.wav"), "--spectrogram", str(tmp_path / "no" / "x.png"), "-q")
    assert done.returncode == 2 and "--spectrogram" in done.stderr and "folder does not exist" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_picture_never_overwrites_the_audio(tmp_path):
    src, dst = str(tmp_path / "in.wav"), str(tmp_path / "out.wav")
    x = write_noise_wav(src, rate=16000, channels=1, seconds=0.2)
    for png in (src, dst):
        done = run_cli("--in", src, "--out", dst, "--spectrogram", png, "--model", "passthrough", "-q")
        assert done.returncode == 2 and "--spectrogram" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    np.testing.assert_array_equal(sf.read(src, dtype="float32", always_2d=True)[0], x)
    assert not os.path.exists(dst)


def test_with_duration_both_pictures_cover_the_enhanced_part(tmp_path):
    src, dst = str(tmp_path / "in.wav"), str(tmp_path / "out.wav")
    write_tone(src, seconds=2.0)
    done = run_cli("--in", src, "--out", dst, "--duration", "0.5", "--spectrogram", str(tmp_path / "p.png"), "--model", "passthrough", "-q")
    assert done.returncode == 0, done.stderr
    assert spectrogram_db(src, seconds=0.5)[1] == pytest.approx(0.5) == spectrogram_db(dst)[1]
