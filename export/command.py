"""The ``rt-export`` command: the export CLI, or one line naming the extra to install."""

from __future__ import annotations

import logging

from rt_enhance.realtime.extras import run_with_extra

logger = logging.getLogger(__name__)


def main() -> int:
    return run_with_extra("rt-export", "rt_enhance.export.options", "train", needs=("torch", "onnx"))
