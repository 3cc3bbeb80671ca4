"""Keeping the measuring instrument steady: the loopback client and a private JACK server stand in
for a sound card, so on a loaded machine they run at a raised priority (a lower nice value) while
rt-enhance and the competing load stay at the default. Best effort: without the permission (not
root) nothing changes and the record says so.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

INSTRUMENT_NICE = -10


def set_nice(pid: int, nice: int) -> bool:
    """Set the nice value of every thread of process ``pid`` (Linux nice is per thread)."""
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.setpriority(os.PRIO_PROCESS, int(tid), nice)
    except (OSError, ValueError) as exc:  # PermissionError without root; a thread may have ended
        logger.info("cannot set nice %d on %d: %s", nice, pid, exc)
        return False
    return True


def default_priority() -> None:
    """For ``preexec_fn``: a child runs at nice 0 whatever its parent's value."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except OSError:
        pass
