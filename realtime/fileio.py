"""Atomic file writes: a file is written under a temporary name in its own folder, synced to disk,
then ``os.replace``d onto its name, so a reader (or a crash) sees the old file or the whole new
one, never half of it. The temporary name is hidden (``.NAME.XXXXXXXX.tmp``) and removed when the
write fails.

Live recordings are not written this way: they grow in a crash-safe ``NAME.partial-XXXX.wav``
(:class:`rt_enhance.realtime.audio_io.FileSink`) that stays readable if the process dies.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from rt_enhance.realtime.paths import PathError, make_folder

logger = logging.getLogger(__name__)


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (not yet created) for the caller to write; when the block
    ends without an error, sync the file and ``os.replace`` it onto ``path``. The temporary file is
    removed in every case, and the folder created if missing.

    The caller may check the temporary file before it replaces anything (exported models are run
    once there); an error in the block leaves ``path`` as it was.
    """
    path = Path(path)
    make_folder(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        _sync(tmp)
        os.replace(tmp, path)
    except OSError as err:
        if err.filename not in (str(tmp), str(path)):
            raise  # the caller's own error (an input it read), not this write's
        raise PathError(f"{path}: cannot write this file ({err.strerror}); choose a folder you can write to") from None
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write`` on a binary file that replaces ``path`` only once it is complete and synced."""
    with replacing(path) as tmp, open(tmp, "xb") as f:
        write(f)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
