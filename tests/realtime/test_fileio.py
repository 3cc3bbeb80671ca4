"""Atomic writes: the old file or the whole new one, never half, and no temporary file left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rt_enhance.realtime.errors import UsageError
from rt_enhance.realtime.fileio import atomic_write, atomic_write_text, make_folder, replacing


def test_atomic_write_text_makes_the_folder_and_the_usual_mode(tmp_path: Path) -> None:
    target = tmp_path / "new" / "report.json"
    atomic_write_text(target, "{}\n")
    assert target.read_text() == "{}\n"
    assert os.listdir(target.parent) == ["report.json"]
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask  # not the private mode of a temp file


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")

    def half(f) -> None:
        f.write(b"ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.onnx"]


def test_replacing_checks_before_it_replaces(tmp_path: Path) -> None:
    target = tmp_path / "clip.wav"
    target.write_bytes(b"old")
    with pytest.raises(ValueError):
        with replacing(target) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".clip.wav.") and not tmp.exists()
            tmp.write_bytes(b"unverified")
            raise ValueError("parity failed")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["clip.wav"]
    with replacing(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["clip.wav"]


def test_a_place_that_cannot_hold_the_file_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("kept")
    with pytest.raises(UsageError, match="a file stands in its path"):
        atomic_write_text(blocker / "report.json", "{}")
    with pytest.raises(UsageError, match="a file stands in its path"):
        make_folder(blocker / "runs" / "x")
    with pytest.raises(UsageError, match=r"/proc/report.json: cannot write this file \(No such file or directory\)"):
        atomic_write_text("/proc/report.json", "{}")  # the folder exists, the file system takes no new files
    assert blocker.read_text() == "kept" and os.listdir(tmp_path) == ["notes.txt"]
