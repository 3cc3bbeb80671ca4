"""``rt-enhance`` and ``python -m rt_enhance.realtime``: quiet about signals from the first instruction.

Importing the engine (numpy, numba, onnxruntime) takes a second or more. A SIGINT or SIGTERM
then ends the process with one line instead of a traceback: nothing has been opened yet.
Once :func:`rt_enhance.realtime.cli.main` runs, its own handlers take over.
"""

from __future__ import annotations

import logging
import signal
import sys

logger = logging.getLogger(__name__)


def _starting(signum: int, frame) -> None:
    sys.stderr.write(f"rt-enhance: interrupted ({signal.Signals(signum).name}) while starting; nothing was written\n")
    raise SystemExit(128 + signum)


def main() -> int:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _starting)
    from rt_enhance.realtime.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
