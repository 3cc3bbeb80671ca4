"""The error family: every error rt-enhance raises on purpose derives from :class:`RtEnhanceError`.

Each command (``rt-enhance``, ``rt-export``, ``rt-train``, ``rt-data``, ``rt-bench``) catches the base
in one place and prints :func:`error_line` with :func:`report`: one line, no traceback, a non-zero
exit. :class:`UsageError` is a mistake the user can fix (a flag, a file, a device). Errors keep
their older built-in base too (``class PathError(RtEnhanceError, ValueError)``), so code that
catches ``ValueError`` or ``RuntimeError`` behaves as before.

This module and :mod:`rt_enhance.realtime.fileio` import nothing of the project, so every package
(the runtime too, which has no torch) can import them.
"""

from __future__ import annotations

import logging
import sys

logger = logging.getLogger(__name__)


class RtEnhanceError(Exception):
    """Base of every error the project raises on purpose; the message is one line for the user."""


class UsageError(RtEnhanceError):
    """Anything the user can fix (a flag, a file, a device); printed as one line, exit status 2."""


class GeometryError(RtEnhanceError, ValueError):
    """A hop, lookahead, crossfade, window or length that cannot work, for the engine or for a model;
    the message is one line for the user."""


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of ``exc``'s message, cut to ``limit`` characters; its type's name when it has none.

    For wrapping a library's error (onnxruntime, libsndfile, torch) into one line of ours.
    """
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def error_line(command: str, exc: BaseException, label: str = "error") -> str:
    """``COMMAND: LABEL: MESSAGE``, or ``COMMAND: MESSAGE`` when ``label`` is empty."""
    return f"{command}: {label}: {exc}" if label else f"{command}: {exc}"


def report(command: str, exc: BaseException, code: int, label: str = "error") -> int:
    """Print :func:`error_line` on stderr and return ``code``, the exit status for it."""
    print(error_line(command, exc, label), file=sys.stderr)
    return code
