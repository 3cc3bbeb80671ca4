"""rt-export, rt-train and rt-data without their extras: one line naming what to install, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Runs a command's entry point with every package of the train and corpus extras made missing,
# as after `pip install .` (the runtime only).
WITHOUT_EXTRAS = """
import importlib, importlib.abc, sys

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "onnx", "scipy", "tqdm", "pyroomacoustics", "pesq", "pystoi",
                                  "tensorboard", "matplotlib", "piper", "music21"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Missing())
module, function = sys.argv[1].split(":")
sys.argv = sys.argv[1:]
sys.exit(getattr(importlib.import_module(module), function)())
"""


@pytest.mark.parametrize(
    "command, entry",
    [
        ("rt-export", "rt_enhance.export.command:main"),
        ("rt-train", "rt_enhance.training.command:train"),
        ("rt-data", "rt_enhance.training.command:data"),
    ],
)
def test_help_without_the_train_extra_names_it(command, entry):
    done = subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS, entry, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (f"{command}: needs the 'train' extra (torch is not installed): pip install \"rt-enhance[train]\"") or (
        command == "rt-data" and 'pip install "rt-enhance[train]"' in done.stderr and "\n" not in done.stderr.strip()
    )
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("entry", ["rt_enhance.export.command:main", "rt_enhance.training.command:train"])
def test_help_with_the_extra_installed(entry):
    module, function = entry.split(":")
    code = f"import sys; sys.argv = ['x', '--help']; from {module} import {function} as f; sys.exit(f())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr


@pytest.mark.parametrize(
    "entry", ["rt_enhance.export.command:main", "rt_enhance.training.command:train", "rt_enhance.training.command:data"]
)
def test_help_imports_neither_torch_nor_onnx(entry):
    """``--help`` answers from the flags alone (issue 21: under a second), torch and onnx stay unloaded."""
    module, function = entry.split(":")
    code = (
        f"import sys; sys.argv = ['x', '--help']; from {module} import {function} as f\n"
        "try:\n    f()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
