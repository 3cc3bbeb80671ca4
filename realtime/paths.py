"""Which file a path names, and whether the user's files may be read or written there.

Paths are compared by the file they are, never by their spelling: ``a.wav``, ``./a.wav``,
``/proc/self/cwd/a.wav``, a symlink to it and a hard link to it are all one file. A file that
exists is its device and inode (after following links); one that does not exist yet is the
identity of the folder it would be created in plus its name.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from rt_enhance.realtime.errors import UsageError

logger = logging.getLogger(__name__)


class PathError(UsageError, ValueError):
    """A path the run cannot use; the message is one line for the user."""


def make_folder(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` and its parents (nothing when it exists); a :class:`PathError` in one line when it cannot
    be (a file in its path, no permission, a read-only or virtual file system)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise PathError(f"{folder}: cannot create this folder: a file stands in its path; choose another folder") from None
    except OSError as err:
        raise PathError(f"{folder}: cannot create this folder ({err.strerror}); choose a folder you can write to") from None
    return folder


def identity(path: str) -> tuple:
    """``(device, inode)`` of the file ``path`` names, or ``(device, inode, name)`` of the
    folder and name it would be created as."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
        return (st.st_dev, st.st_ino)
    except FileNotFoundError:
        folder = os.stat(os.path.dirname(real) or ".")
        return (folder.st_dev, folder.st_ino, os.path.basename(real))
    except OSError as exc:
        raise PathError(f"{path}: {exc.strerror}") from None


def check_distinct(reads: Iterable[tuple[str, str]], writes: Iterable[tuple[str, str]]) -> None:
    """Refuse any write that aliases a file read or another write.

    ``reads`` and ``writes`` are ``(flag, path)`` pairs, e.g. ``("--in", "take.wav")``.
    """
    read_ids = {identity(path): (flag, path) for flag, path in reads}
    written: dict[tuple, tuple[str, str]] = {}
    for flag, path in writes:
        key = identity(path)
        if key in read_ids:
            other_flag, other = read_ids[key]
            noun = {"--in": "input"}.get(other_flag, other_flag.lstrip("-") + " file")
            raise PathError(
                f"{flag} {path} is the same file as {other_flag} {other}: it would overwrite the {noun}; choose another output file"
            )
        if key in written:
            other_flag, other = written[key]
            raise PathError(f"{flag} {path} and {other_flag} {other} are the same file; name each output once")
        written[key] = (flag, path)


def check_readable_file(path: str, what: str = "input") -> None:
    """A regular file to read, or one line saying what ``path`` is instead."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise PathError(f"{what} file not found: {path}") from None
    except OSError as exc:
        raise PathError(f"{what} file {path}: {exc.strerror}") from None
    kind = _kind(mode)
    if kind:
        raise PathError(
            f"{what} {path} is {kind}, not an audio file; name an audio file"
            + (" (for an audio device give its index or name: --list-devices)" if "device" in kind else "")
        )


def _kind(mode: int) -> str:
    """'' for a regular file, else what it is, in words."""
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_writable_target(path: str, flag: str) -> str:
    """The folder a new ``path`` will be written in, after checking that a file can be created
    there and that ``path`` is not a folder or special file. Raises :class:`PathError`."""
    kind = _kind(os.stat(path).st_mode) if os.path.exists(path) else ""
    if kind:
        hint = f"e.g. {os.path.join(path, 'out.wav')}" if kind == "a folder" else "a regular file"
        raise PathError(f"{flag} {path} is {kind}; name a file ({hint})")
    folder = os.path.dirname(os.path.realpath(path))
    if not os.path.isdir(folder):
        raise PathError(f"{flag} {path}: output folder does not exist: {folder}")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise PathError(f"{flag} {path}: cannot create files in {folder} ({exc.strerror}); choose a writable folder") from None
    return folder
