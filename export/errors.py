"""The exporter's one error type."""

from __future__ import annotations

import logging

from rt_enhance.realtime.errors import RtEnhanceError

logger = logging.getLogger(__name__)


class ExportError(RtEnhanceError, RuntimeError):
    """An export that must not ship (checker failure, parity mismatch, bad geometry); one line for the user."""
