"""Fuzzing the file reader: any byte string either reads as finite float32 audio or raises AudioFileError.

The default run tries 150 mutated files; ``RT_FUZZ_EXAMPLES=20000 pytest tests/realtime/test_fuzz_reader.py``
is the long run recorded in the README.
"""

import io
import os

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rt_enhance.realtime.audio_io import AudioFileError, FileSource

EXAMPLES = int(os.environ.get("RT_FUZZ_EXAMPLES", "150"))


def seed_files() -> list[bytes]:
    rng = np.random.default_rng(0)
    seeds = []
    for fmt, subtype in [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_24"), ("OGG", "VORBIS")]:
        buf = io.BytesIO()
        sf.write(buf, (0.3 * rng.standard_normal((2400, 2))).astype(np.float32), 48000, format=fmt, subtype=subtype)
        seeds.append(buf.getvalue())
    return seeds


SEEDS = seed_files()


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "zero"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif data:
            data[at : at + 4] = b"\0\0\0\0"
    return bytes(data)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(blob=mutated(), suffix=st.sampled_from([".wav", ".flac", ".ogg"]))
def test_reader_never_crashes_on_mutated_files(tmp_path, blob, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(blob)
    try:
        source = FileSource(str(path))
        for block in source.blocks(1024):
            assert block.dtype == np.float32 and block.shape[0] == source.channels
            assert np.isfinite(block).all()
    except AudioFileError as exc:
        assert "\n" not in str(exc)
