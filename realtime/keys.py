"""Single key presses from the terminal, without Enter and without blocking (for the status line)."""

from __future__ import annotations

import logging
import os
import select
import sys
from typing import Any

logger = logging.getLogger(__name__)


class TerminalKeys:
    """``with TerminalKeys() as keys: keys.read()`` returns the keys pressed since the last read.

    Only when stdin is a terminal: it is put in cbreak mode (keys arrive one by one, no echo;
    Ctrl-C still sends SIGINT) and restored on exit, whatever ends the block. Elsewhere ``read``
    always returns ``""``.
    """

    def __init__(self, stream=None, *, enabled: bool = True) -> None:
        self.stream = stream if stream is not None else sys.stdin
        self.enabled = enabled
        self._saved: list[Any] | None = None  # termios attributes while cbreak is on

    def __enter__(self) -> TerminalKeys:
        try:
            import termios
            import tty

            if self.enabled and self.stream.isatty():
                fd = self.stream.fileno()
                self._saved = termios.tcgetattr(fd)
                tty.setcbreak(fd)
        except (ImportError, OSError, ValueError) as exc:  # no termios (Windows), closed stdin
            logger.debug("no key control on the status line: %s", exc)
            self._saved = None
        return self

    @property
    def active(self) -> bool:
        return self._saved is not None

    def read(self) -> str:
        if self._saved is None:
            return ""
        fd = self.stream.fileno()
        keys = b""
        while select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, 64)
            if not chunk:
                break
            keys += chunk
        return keys.decode(errors="ignore")

    def __exit__(self, *exc) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None
