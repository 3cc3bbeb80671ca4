"""A stop signal while the main thread is stuck inside a C library (a JACK server that never answers, here a
mutex locked twice) still ends the run, within StopSignals.STUCK_SECONDS, with one line and no file replaced."""

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import write_noise_wav


def partial_files(folder) -> list[str]:
    return [os.path.join(folder, f) for f in os.listdir(folder) if ".partial-" in f]


STUCK = """
import ctypes, sys
from rt_enhance.realtime.audio_io import FileSink
from rt_enhance.realtime.cli import StopSignals

StopSignals.STUCK_SECONDS = 1.0
with StopSignals() as stop:
    stop.sinks = [FileSink(sys.argv[1], rate=48000, channels=1)]
    print("ready", flush=True)
    libc = ctypes.CDLL(None)
    mutex = ctypes.create_string_buffer(64)  # zeros: a default glibc mutex
    libc.pthread_mutex_lock(mutex)
    libc.pthread_mutex_lock(mutex)  # locked twice: the main thread waits in C for ever, as in a hung libjack
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_main_thread_is_stuck_in_c_ends_the_run_and_replaces_nothing(tmp_path, signum):
    take = tmp_path / "take.wav"
    write_noise_wav(str(take), rate=48000, channels=1, seconds=0.2)
    good = take.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", STUCK, str(take)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    assert partial_files(tmp_path) != []  # the output was opened: there is something to clean up
    time.sleep(0.2)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum
    assert err.strip().splitlines() == [
        f"rt-enhance: interrupted ({signum.name}) while the audio device was opening, and it never returned; no output file was replaced"
    ]
    assert take.read_bytes() == good and partial_files(tmp_path) == []
