"""Files are compared by what they are, not how they are named: no alias of the input is ever written."""

import os

import pytest
from helpers import one_line, run_cli, write_noise_wav

from rt_enhance.realtime import paths


def one_line_error(done, *needles):
    one_line(done, 2, *needles)


@pytest.fixture
def victim(tmp_path, monkeypatch):
    """A good recording, with a symlink and a hard link to it, in the current folder."""
    monkeypatch.chdir(tmp_path)
    write_noise_wav("victim.wav", rate=48000, channels=1, seconds=0.3, subtype="PCM_16")
    os.symlink("victim.wav", "link.wav")
    os.link("victim.wav", "hard.wav")
    os.mkdir("sub")
    return open("victim.wav", "rb").read()


ALIASES = [
    ("link.wav", "victim.wav"),  # the input through a symlink, the output by name
    ("victim.wav", "link.wav"),  # the output through a symlink
    ("victim.wav", "hard.wav"),  # a hard link
    ("victim.wav", "/proc/self/cwd/victim.wav"),
    ("victim.wav", "./sub/../victim.wav"),
    ("victim.wav", "VICTIM"),  # replaced by the absolute path below
]


@pytest.mark.parametrize("inp, out", ALIASES)
def test_every_alias_of_the_input_is_refused(tmp_path, victim, inp, out):
    out = str(tmp_path / "victim.wav") if out == "VICTIM" else out
    done = run_cli("--in", inp, "--out", out, "--model", "passthrough", cwd=tmp_path)
    one_line_error(done, "would overwrite the input")
    assert open(tmp_path / "victim.wav", "rb").read() == victim
    assert [p for p in os.listdir(tmp_path) if "partial" in p] == []


def test_two_outputs_that_are_one_file_and_a_report_over_the_model(tmp_path, victim, onnx_model):
    model = onnx_model("m.onnx")
    one_line_error(
        run_cli("--in", "victim.wav", "--out", "a.wav", "--out", "/proc/self/cwd/a.wav", "--model", "passthrough", cwd=tmp_path),
        "are the same file",
    )
    one_line_error(
        run_cli("--in", "victim.wav", "--out", "a.wav", "--stats-json", "link.wav", "--model", "passthrough", cwd=tmp_path),
        "--stats-json link.wav",
        "overwrite the input",
    )
    one_line_error(
        run_cli("--in", "victim.wav", "--out", "a.wav", "--stats-json", model, "--model", model, cwd=tmp_path), "overwrite the model file"
    )
    assert not os.path.exists(tmp_path / "a.wav")


def test_identity_of_files_not_yet_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkdir("sub")
    assert paths.identity("new.wav") == paths.identity(str(tmp_path / "sub" / ".." / "new.wav"))
    assert paths.identity("new.wav") == paths.identity("/proc/self/cwd/new.wav")
    assert paths.identity("new.wav") != paths.identity("sub/new.wav")
    paths.check_distinct([("--in", "a.wav")], [("--out", "b.wav"), ("--stats-json", "c.json")])


def test_a_symlinked_output_keeps_its_link(tmp_path, victim):
    """Writing through a symlink that names another file replaces that file, not the link."""
    os.symlink("target.wav", tmp_path / "to-target.wav")
    done = run_cli("--in", "victim.wav", "--out", "to-target.wav", "--model", "passthrough", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert os.path.islink(tmp_path / "to-target.wav") and os.path.getsize(tmp_path / "target.wav") > 44
