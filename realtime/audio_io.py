"""Audio files: lazy block reading and incremental atomic writing.

Files go through soundfile (WAV, FLAC, OGG and everything libsndfile reads). Writers write to a
temporary file next to the target and rename it into place only when the stream ends well, so a
good file is never replaced by a damaged one.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator

import numpy as np
import soundfile as sf

from rt_enhance.realtime import limits
from rt_enhance.realtime.errors import RtEnhanceError, first_line
from rt_enhance.realtime.paths import PathError, check_readable_file

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au", ".caf", ".w64", ".rf64", ".mp3", ".opus"}
INT_SUBTYPES = {"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "ULAW", "ALAW"}


class AudioFileError(RtEnhanceError, ValueError):
    """An audio file that cannot be read or written; the message is one line for the user."""


def looks_like_path(text: str) -> bool:
    """True if ``--in`` / ``--out`` names a file rather than a device."""
    return os.sep in text or os.path.splitext(text)[1].lower() in AUDIO_EXTENSIONS or os.path.exists(text)


class FileSource:
    """Reads an audio file lazily in blocks of float32 ``[channels, n]``."""

    def __init__(self, path: str) -> None:
        try:
            check_readable_file(path)
        except PathError as exc:
            raise AudioFileError(str(exc)) from None
        try:
            info = sf.info(path)
        except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
            raise AudioFileError(f"{path}: not a readable audio file ({first_line(exc, 200)})") from None
        if info.frames <= 0 or info.channels <= 0:
            raise AudioFileError(f"{path}: the file holds no audio samples")
        try:
            limits.check("sample rate", int(info.samplerate))
            limits.check("channels", int(info.channels))
        except limits.LimitError as exc:
            raise AudioFileError(f"{path}: {exc}; convert the file first") from None
        self.path = path
        self.rate = int(info.samplerate)
        self.channels = int(info.channels)
        self.frames = int(info.frames)
        self.subtype = info.subtype
        self.format = info.format
        self.read = 0
        _warn_if_truncated(path, info)

    @property
    def duration(self) -> float:
        return self.frames / self.rate

    def limit(self, seconds: float) -> None:
        """Read at most the first ``seconds`` of the file."""
        self.frames = max(1, min(self.frames, math.ceil(seconds * self.rate)))

    def blocks(self, blocksize: int) -> Iterator[np.ndarray]:
        """Yield float32 ``[channels, n]`` blocks; a NaN/Inf sample or a short read is an error."""
        try:
            with sf.SoundFile(self.path) as f:
                while self.read < self.frames:
                    data = f.read(min(blocksize, self.frames - self.read), dtype="float32", always_2d=True)
                    if data.shape[0] == 0:
                        break
                    if not np.isfinite(data).all():
                        at = (self.read + int(np.argmin(np.isfinite(data).all(axis=1)))) / self.rate
                        raise AudioFileError(f"{self.path}: NaN or infinite sample at {at:.3f} s; repair the file first")
                    self.read += data.shape[0]
                    yield data.T
        except sf.LibsndfileError as exc:
            raise AudioFileError(f"{self.path}: read failed after {self.read} frames ({first_line(exc, 200)})") from None


def _warn_if_truncated(path: str, info) -> None:
    """libsndfile reads what a cut-short file holds; say that the header promised more."""
    match = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", info.extra_info or "", re.MULTILINE)
    if match and int(match.group(1)) > int(match.group(2)):
        promised = int(match.group(1)) / max(int(match.group(2)), 1) * info.frames / info.samplerate
        logger.warning(
            "%s is truncated: its header promises %.3f s but the file holds %.3f s; enhancing the %.3f s that are there",
            path,
            promised,
            info.frames / info.samplerate,
            info.frames / info.samplerate,
        )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class WriteError(AudioFileError):
    """A recording that could not be written to the end (disk full, file size limit)."""


FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".oga": "OGG"}
DEFAULT_SUBTYPES = {"WAV": "PCM_24", "FLAC": "PCM_24", "OGG": "VORBIS"}
LINEAR_SUBTYPES = {"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"}
SFC_UPDATE_HEADER_NOW = 0x1060  # libsndfile: rewrite the header for what is written so far


def output_format(path: str) -> str:
    """libsndfile's major format for an output file name, or AudioFileError."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise AudioFileError(f"{path}: unsupported output type {ext or '(none)'}; use .wav, .flac or .ogg")
    return FORMATS[ext]


def output_subtype(path: str, requested: str | None, source_subtype: str | None = None) -> str:
    """The sample format to write ``path`` in: ``--subtype`` if the format has it (else an
    error), else the input's if it is linear PCM or float and the format takes it, else the
    format's default (PCM_24, or VORBIS for OGG)."""
    fmt = output_format(path)
    if requested is not None:
        if requested.upper() not in sf.available_subtypes(fmt):
            raise AudioFileError(
                f"--subtype {requested}: not a sample format of {fmt} files; choose one of {', '.join(sf.available_subtypes(fmt))}"
            )
        return requested.upper()
    if source_subtype in LINEAR_SUBTYPES and sf.check_format(fmt, source_subtype):
        return source_subtype
    return DEFAULT_SUBTYPES[fmt]


class FileSink:
    """Writes float32 ``[channels, n]`` blocks to a temporary file, moved into place on ``close``.

    Crash safety: whatever the target format, the recording goes to a WAV file next to the
    target, ``NAME.partial-XXXX.wav``, whose header is rewritten for everything written every
    ``sync_seconds`` (and the file synced to disk), so after a SIGKILL or a power cut it is a
    valid WAV that every reader (sox, Python's wave, scipy, libsndfile) opens, missing at most
    the last ``sync_seconds``. Faster than real time (file mode) it syncs every ``sync_seconds`` of wall
    time instead, which loses nothing more (the input is still there) and keeps file mode from
    waiting on the disk a hundred times a second. A FLAC or OGG target is encoded from that WAV when the run ends
    (FLAC and Vorbis encoders hold seconds of audio back, so they are never the recording itself).
    """

    def __init__(self, path: str, *, rate: int, channels: int, subtype: str | None = None, sync_seconds: float = 0.5) -> None:
        self.path = path
        self.target = os.path.realpath(path)  # a symlinked target keeps its link; the file it names is replaced
        self.format = output_format(path)
        self.subtype = subtype or DEFAULT_SUBTYPES[self.format]
        if not sf.check_format(self.format, self.subtype):
            raise AudioFileError(f"{path}: {self.format} files cannot hold {self.subtype} samples")
        self.clip = self.subtype in INT_SUBTYPES
        wav_subtype = self.subtype if self.format == "WAV" or self.subtype in LINEAR_SUBTYPES else "FLOAT"
        self.tmp_path = self._make_temp(".wav")
        try:
            self._file = sf.SoundFile(self.tmp_path, "w", samplerate=rate, channels=channels, format="WAV", subtype=wav_subtype)
        except Exception as exc:
            os.unlink(self.tmp_path)
            raise AudioFileError(f"{path}: cannot write ({first_line(exc, 200)})") from None
        self.rate = rate
        self.written = 0
        self._sync_every = max(1, int(sync_seconds * rate))
        self._sync_seconds = sync_seconds
        self._unsynced = 0
        self._synced_at = time.monotonic()

    def _make_temp(self, ext: str) -> str:
        folder = os.path.dirname(self.target)
        stem = os.path.splitext(os.path.basename(self.target))[0]
        try:
            fd, tmp = tempfile.mkstemp(prefix=f"{stem}.partial-", suffix=ext, dir=folder)
        except FileNotFoundError:
            raise AudioFileError(f"output folder does not exist: {folder}") from None
        except OSError as exc:
            raise AudioFileError(f"{self.path}: cannot create files in {folder} ({exc.strerror}); choose a writable folder") from None
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it private; a recording gets the usual mode
        os.close(fd)
        return tmp

    def write(self, block: np.ndarray) -> None:
        """Append float32 ``[channels, n]``; a full disk or a file size limit raises WriteError."""
        if block.shape[1] == 0:
            return
        data = np.clip(block, -1.0, 1.0) if self.clip else block
        try:
            self._file.write(np.ascontiguousarray(data.T))
            self._unsynced += block.shape[1]
            if self._unsynced >= self._sync_every and time.monotonic() - self._synced_at >= self._sync_seconds:
                self.sync()
        except Exception as exc:  # libsndfile reports a short write in several ways
            raise WriteError(
                f"{self.path}: writing failed after {self.written / self.rate:.1f} s ({first_line(exc, 200)}); is the disk full?"
            ) from None
        self.written += block.shape[1]

    def sync(self) -> None:
        """Make the file on disk a valid WAV of everything written so far."""
        sf._snd.sf_command(self._file._file, SFC_UPDATE_HEADER_NOW, sf._ffi.NULL, 0)
        self._file.flush()  # fsync
        self._unsynced = 0
        self._synced_at = time.monotonic()

    def close(self) -> bool:
        """Finish the file and move it into place; True if the target was replaced. A sink that
        received no audio is dropped instead: an empty run never replaces a file. Once only."""
        if self._file.closed and not os.path.exists(self.tmp_path):
            return False
        if self.written == 0:
            self.abort()
            return False
        try:
            self.sync()
            self._file.close()
        except Exception as exc:  # noqa: BLE001 - libsndfile's error types
            raise WriteError(f"{self.path}: finishing the file failed ({first_line(exc, 200)}); is the disk full?") from None
        os.replace(self._encoded() if self.format != "WAV" else self.tmp_path, self.target)
        return True

    def _encoded(self) -> str:
        """Encode the finished WAV recording into the target format; returns the encoded file."""
        out = self._make_temp(os.path.splitext(self.target)[1])
        try:
            with (
                sf.SoundFile(self.tmp_path) as src,
                sf.SoundFile(out, "w", samplerate=src.samplerate, channels=src.channels, format=self.format, subtype=self.subtype) as dst,
            ):
                for block in src.blocks(1 << 16, dtype="float32", always_2d=True):
                    dst.write(block)
        except Exception as exc:  # a full disk while encoding: the WAV recording stays
            os.unlink(out)
            raise WriteError(
                f"{self.path}: encoding {self.format} failed ({first_line(exc, 200)}); is the disk full? "
                f"The recording is kept as {self.tmp_path}"
            ) from None
        os.unlink(self.tmp_path)
        return out

    def abort(self) -> None:
        """Drop the temporary file; the target is left as it was."""
        try:
            self._file.close()
        finally:
            if os.path.exists(self.tmp_path):
                os.unlink(self.tmp_path)
