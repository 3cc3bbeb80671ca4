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


SWALLOWED = """
import os, signal, sys
from rt_enhance.realtime import cli

def start_up(argv, stop):
    how = sys.argv[1]
    if how == "callback":  # raised inside a C callback (numba's compiler does this): Python reports it as unraisable
        import ctypes

        ctypes.CFUNCTYPE(None)(lambda: os.kill(os.getpid(), signal.SIGINT) or sum(range(10000)))()
    else:
        try:
            os.kill(os.getpid(), signal.SIGINT)  # the handler raises Interrupted here, in the middle of start-up
            for _ in range(10000):
                pass
        except KeyboardInterrupt:
            if how == "converted":  # a C extension's import turns it into an ImportError
                raise ImportError("PyCapsule_Import could not import module datetime") from None
            # "swallowed": an optional import that gives up quietly
    stop.check()  # before the outputs are opened, and when a live engine is attached
    print("started anyway", flush=True)
    return 0

cli._main = start_up
sys.exit(cli.main([]))
"""


@pytest.mark.parametrize("how", ["converted", "swallowed", "callback"])
def test_a_stop_asked_for_during_start_up_is_never_lost(how):
    """The exception a signal handler raises lands wherever the main thread is; start-up code may turn it into
    another error or swallow it, and the run must still end as interrupted: one line, exit 130, nothing started."""
    done = subprocess.run([sys.executable, "-c", SWALLOWED, how], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130, (done.returncode, done.stderr)
    assert "started anyway" not in done.stdout and "Traceback" not in done.stderr
    assert done.stderr.strip() == "rt-enhance: interrupted (SIGINT) before the run finished; no output file was replaced"
