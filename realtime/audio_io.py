"""Audio files: lazy block reading, incremental atomic writing, and streaming resampling.

Files go through soundfile (WAV, FLAC, OGG and everything libsndfile reads). Writers write to a
temporary file next to the target and rename it into place only when the stream ends well, so a
good file is never replaced by a damaged one.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator

import numpy as np
import soundfile as sf
import soxr

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au", ".caf", ".w64", ".rf64", ".mp3", ".opus"}
INT_SUBTYPES = {"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "ULAW", "ALAW"}


class AudioFileError(ValueError):
    """An audio file that cannot be read or written; the message is one line for the user."""


def looks_like_path(text: str) -> bool:
    """True if ``--in`` / ``--out`` names a file rather than a device."""
    return os.sep in text or os.path.splitext(text)[1].lower() in AUDIO_EXTENSIONS or os.path.exists(text)


class FileSource:
    """Reads an audio file lazily in blocks of float32 ``[channels, n]``."""

    def __init__(self, path: str) -> None:
        if not os.path.isfile(path):
            raise AudioFileError(f"input file not found: {path}")
        try:
            info = sf.info(path)
        except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
            raise AudioFileError(f"{path}: not a readable audio file ({_first_line(exc)})") from None
        if info.frames <= 0 or info.channels <= 0:
            raise AudioFileError(f"{path}: the file holds no audio samples")
        self.path = path
        self.rate = int(info.samplerate)
        self.channels = int(info.channels)
        self.frames = int(info.frames)
        self.subtype = info.subtype
        self.format = info.format
        self.read = 0

    @property
    def duration(self) -> float:
        return self.frames / self.rate

    def blocks(self, blocksize: int) -> Iterator[np.ndarray]:
        """Yield float32 ``[channels, n]`` blocks; a NaN/Inf sample or a short read is an error."""
        try:
            with sf.SoundFile(self.path) as f:
                while True:
                    data = f.read(blocksize, dtype="float32", always_2d=True)
                    if data.shape[0] == 0:
                        break
                    if not np.isfinite(data).all():
                        at = (self.read + int(np.argmin(np.isfinite(data).all(axis=1)))) / self.rate
                        raise AudioFileError(f"{self.path}: NaN or infinite sample at {at:.3f} s; repair the file first")
                    self.read += data.shape[0]
                    yield data.T
        except sf.LibsndfileError as exc:
            raise AudioFileError(f"{self.path}: read failed after {self.read} frames ({_first_line(exc)})") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


class FileSink:
    """Writes float32 ``[channels, n]`` blocks to a temporary file, renamed into place on ``close``.

    The temporary file sits next to the target as ``NAME.partial-XXXX.EXT`` and its header is kept
    current every ``sync_seconds``, so even after a SIGKILL or a power cut it is a readable file
    missing at most that much audio.
    """

    def __init__(self, path: str, *, rate: int, channels: int, subtype: str | None = None, sync_seconds: float = 0.5) -> None:
        self.path = path
        ext = os.path.splitext(path)[1].lower()
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise AudioFileError(f"output folder does not exist: {folder}")
        fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".oga": "OGG"}.get(ext)
        if fmt is None:
            raise AudioFileError(f"{path}: unsupported output type {ext or '(none)'}; use .wav, .flac or .ogg")
        if subtype is None or not sf.check_format(fmt, subtype):
            subtype = {"WAV": "PCM_24", "FLAC": "PCM_24", "OGG": "VORBIS"}[fmt]
        self.subtype = subtype
        self.clip = subtype in INT_SUBTYPES
        stem = os.path.splitext(os.path.basename(path))[0]
        fd, self.tmp_path = tempfile.mkstemp(prefix=f"{stem}.partial-", suffix=ext, dir=folder)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it private; a recording gets the usual mode
        os.close(fd)
        try:
            self._file = sf.SoundFile(self.tmp_path, "w", samplerate=rate, channels=channels, format=fmt, subtype=subtype)
        except Exception as exc:
            os.unlink(self.tmp_path)
            raise AudioFileError(f"{path}: cannot write ({_first_line(exc)})") from None
        self.written = 0
        self._sync_every = max(1, int(sync_seconds * rate))
        self._unsynced = 0

    def write(self, block: np.ndarray) -> None:
        """Append float32 ``[channels, n]``; a full disk or a file size limit raises AudioFileError."""
        if block.shape[1] == 0:
            return
        data = np.clip(block, -1.0, 1.0) if self.clip else block
        try:
            self._file.write(np.ascontiguousarray(data.T))
            self._unsynced += block.shape[1]
            if self._unsynced >= self._sync_every:
                self._file.flush()  # libsndfile rewrites the header: the file is valid up to here
                self._unsynced = 0
        except Exception as exc:  # libsndfile reports a short write in several ways
            raise AudioFileError(
                f"{self.path}: writing failed after {self.written / self._file.samplerate:.1f} s "
                f"({_first_line(exc)}); is the disk full? What was recorded is kept"
            ) from None
        self.written += block.shape[1]

    def close(self) -> None:
        """Finish the file and move it into place (once; later calls do nothing)."""
        if self._file.closed and not os.path.exists(self.tmp_path):
            return
        self._file.close()
        os.replace(self.tmp_path, self.path)

    def abort(self) -> None:
        """Drop the temporary file; the target is left as it was."""
        try:
            self._file.close()
        finally:
            if os.path.exists(self.tmp_path):
                os.unlink(self.tmp_path)


class StreamResampler:
    """soxr's streaming resampler on ``[channels, n]`` blocks; the identity when rates match.

    soxr compensates its own filter delay: the output is time-aligned with the input, released in
    bursts once enough input has arrived. ``flush`` returns what is still held back.
    """

    def __init__(self, rate_in: int, rate_out: int, channels: int, quality: str = "HQ") -> None:
        self.rate_in, self.rate_out, self.channels = rate_in, rate_out, channels
        self._stream = None if rate_in == rate_out else soxr.ResampleStream(rate_in, rate_out, channels, dtype="float32", quality=quality)

    @property
    def identity(self) -> bool:
        return self._stream is None

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return block
        out = self._stream.resample_chunk(np.ascontiguousarray(block.T), last=last)
        return np.ascontiguousarray(out.T)

    def flush(self) -> np.ndarray:
        return self(np.zeros((self.channels, 0), np.float32), last=True)
