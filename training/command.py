"""The ``rt-train`` and ``rt-data`` commands: their CLIs, or one line naming the extra to install."""

from __future__ import annotations

import logging

from rt_enhance.realtime.extras import run_with_extra

logger = logging.getLogger(__name__)


def train() -> int:
    return run_with_extra("rt-train", "rt_enhance.training.options", "train", needs=("torch", "onnx"))


def data() -> int:
    return run_with_extra("rt-data", "rt_enhance.training.corpus.build", "corpus", needs=("scipy",))  # the renderer's filters
