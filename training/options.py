"""The ``rt-train`` entry point: the flags are parsed before torch is imported, so ``--help`` and mistakes in
the flags answer at once; then :func:`rt_enhance.training.cli.main` runs (and parses them again, cheaply)."""

from __future__ import annotations

import logging

from rt_enhance.realtime.errors import RtEnhanceError, report
from rt_enhance.training.config import parse_flags

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    try:
        parse_flags(argv)
    except RtEnhanceError as exc:
        return report("rt-train", exc, 2, label="")
    from rt_enhance.training import cli

    return cli.main(argv)
