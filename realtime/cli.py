"""``rt-enhance``: enhance a microphone live, or files faster than real time.

Examples::

    rt-enhance --in mic --out virtual-mic            # live, as a microphone other apps pick
    rt-enhance --in mic --out speakers               # live, the default model
    rt-enhance --in mic --out take.wav --out speakers
    rt-enhance --in noisy.wav --out clean.wav        # file mode, aligned sample for sample
    rt-enhance --in demo --out demo-enhanced.wav     # the bundled demo clip
    rt-enhance --in talks/ --out clean/ --jobs 2     # every audio file in a tree
    rt-enhance --list-devices
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rt_enhance.realtime import geometry as geo
from rt_enhance.realtime import limits, paths
from rt_enhance.realtime.devices import Device, DeviceError, find_device, list_devices, sounddevice
from rt_enhance.realtime.errors import RtEnhanceError, UsageError, report
from rt_enhance.realtime.keys import TerminalKeys
from rt_enhance.realtime.providers import PROVIDERS

# The engine (numpy, soundfile, onnxruntime...) is imported where a run needs it, so that --help
# and --list-devices answer at once.
if TYPE_CHECKING:
    from rt_enhance.realtime.audio_io import FileSink, FileSource
    from rt_enhance.realtime.live import LiveEngine
    from rt_enhance.realtime.streamer import Streamer

logger = logging.getLogger("rt_enhance")

EXIT_USAGE = 2  # a user mistake: bad file, device, model or flag
EXIT_DEVICE_LOST = 3  # the audio device or server went away mid-stream
EXIT_WRITE_FAILED = 4  # a recording could not be written to the end (disk full, size limit)
DEMO_CLIP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "demo.wav")


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM before a live engine was running: nothing is replaced."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """SIGINT and SIGTERM handled from the start of a run, before any output is opened.

    Until a live engine is attached they raise :class:`Interrupted` (file outputs opened so far
    are dropped and no target is replaced); once it is attached they stop it cleanly, so every
    captured sample is written. Outside the main thread (rt-enhance called as a library from a
    worker thread) Python cannot install handlers and the caller's stay.

    Python runs a handler only between the main thread's bytecodes, so a signal that arrives while
    that thread is stuck inside a C library (a JACK server that never answers a client's registration)
    would go unanswered for ever. A watchdog thread hears every signal through ``signal.set_wakeup_fd``;
    if the handler has not run STUCK_SECONDS later and no audio was captured yet, it drops the
    output files opened so far (``sinks``: no target is replaced) and ends the process with one line.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    STUCK_SECONDS = 5.0

    def __init__(self) -> None:
        self.engine: LiveEngine | None = None
        self.sinks: list[FileSink] = []
        self.pending: int | None = None  # a signal heard before a live engine was attached
        self._previous: dict[int, Any] = {}
        self._heard = threading.Event()
        self._wakeup: tuple[socket.socket, socket.socket] | None = None
        self._previous_fd = -1
        self._previous_hook = sys.unraisablehook

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
            self._previous_hook = sys.unraisablehook
            sys.unraisablehook = self._unraisable
            self._start_watchdog()
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if self._previous:
            sys.unraisablehook = self._previous_hook
        if self._wakeup is not None:
            signal.set_wakeup_fd(self._previous_fd)
            read, write = self._wakeup
            write.send(b"\0")  # no signal has number 0: the watchdog ends
            write.close()

    def _handle(self, signum: int, frame) -> None:
        self._heard.set()
        if self.engine is None:
            self.pending = signum
            raise Interrupted(signum)
        self.engine.stop(f"signal {signal.Signals(signum).name}")

    def _unraisable(self, report: Any) -> None:
        """Python reports an exception it cannot raise (one from a C callback, such as numba's compiler's) as
        "Exception ignored" with a traceback. Ours is not lost (``pending`` holds it for :meth:`check`), so it
        is not reported; anything else is, as before."""
        if not isinstance(report.exc_value, Interrupted):
            self._previous_hook(report)

    def check(self) -> None:
        """Raise :class:`Interrupted` if a signal came before a live engine was attached. The exception a handler
        raises lands wherever the main thread is, and code there may swallow it: a C extension whose import it
        interrupts reports an ImportError instead, which an optional import then ignores. Checked before outputs
        are opened and when the engine is attached, so a stop asked for during start-up is never lost."""
        if self.pending is not None:
            raise Interrupted(self.pending)

    def attach(self, engine: LiveEngine) -> None:
        """From here on a signal stops ``engine`` and keeps what it captured (one heard before: :meth:`check`)."""
        self.check()
        self.engine = engine

    def _start_watchdog(self) -> None:
        read, write = socket.socketpair()
        write.setblocking(False)
        try:
            self._previous_fd = signal.set_wakeup_fd(write.fileno(), warn_on_full_buffer=False)
        except ValueError:  # another wakeup descriptor may not be replaced here
            read.close()
            write.close()
            return
        self._wakeup = (read, write)
        threading.Thread(target=self._watchdog, args=(read,), name="rt-enhance-stop-watchdog", daemon=True).start()

    def _watchdog(self, read: socket.socket) -> None:
        with read:
            while True:
                try:
                    data = read.recv(64)
                except OSError:
                    return
                if not data or 0 in data:
                    return
                stops = [signum for signum in data if signum in self.SIGNALS]
                if not stops or self._heard.wait(self.STUCK_SECONDS):
                    self._heard.clear()
                    continue
                engine = self.engine
                if engine is not None and engine.callbacks.block_seen:
                    continue  # audio was captured: only the main thread may finish those files
                for sink in self.sinks:
                    try:
                        sink.abort()
                    except Exception:  # noqa: BLE001 - exiting anyway; the target is untouched
                        pass
                name = signal.Signals(stops[0]).name
                os.write(
                    2,
                    f"rt-enhance: interrupted ({name}) while the audio device was opening, and it never returned; "
                    "no output file was replaced\n".encode(),
                )
                os._exit(128 + stops[0])


@dataclass(frozen=True)
class Endpoints:
    source_file: FileSource | None
    input_device: Device | None
    output_device: Device | None
    output_files: tuple[str, ...]

    @property
    def input_name(self) -> str:
        """The input device's name, or the input file's path."""
        if self.input_device is not None:
            return str(self.input_device)
        assert self.source_file is not None  # a file or a device
        return self.source_file.path


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (no usage dump) and exit code 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="rt-enhance",
        description="Real-time audio enhancement with an ONNX model: the bundled speech models remove noise "
        "and leave clean audio alone, the music and speech-restore models restore the highs a low-pass took from music "
        "and from voices; "
        "models you train can also remove room echo.",
        epilog="Durations (--hop, --lookahead, --crossfade) are samples at the model rate, or milliseconds "
        "with 'ms' (e.g. 5ms). A flag that does not apply to a run is refused. Exit codes: 0 ok, 1 some files of "
        "a batch failed (listed), 2 bad input, "
        "3 audio device lost or never started, 4 an output could not be written to the end (live: what was "
        "written is kept; file to file: nothing is replaced), 130/143 SIGINT/SIGTERM before the run was under "
        "way (nothing replaced). Recordings are crash-safe WAV files (NAME.partial-XXXX.wav) until the run ends.",
    )
    io = p.add_argument_group("input and output")
    io.add_argument("--in", dest="inp", default="mic", help="mic | default | DEVICE (index or name substring) | FILE | demo (default: mic)")
    io.add_argument(
        "--out",
        action="append",
        help="speakers | default | virtual-mic | DEVICE | FILE; repeat for "
        "several (default: speakers). virtual-mic: a microphone named 'rt-enhance (MODEL)' that any app "
        "(browser call, Discord, OBS) can pick, on PipeWire or PulseAudio; --in is then mic, a server "
        "source name or a file",
    )
    io.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    io.add_argument(
        "--duration", type=float, help="stop a live run after this many seconds; file to file: enhance the first this many seconds"
    )
    io.add_argument("--channels", type=int, help="channels to capture from a device (default: up to 2; at most 64)")
    io.add_argument(
        "--rate",
        type=int,
        help="device sample rate (default: the model's, else the device's); file "
        "to file: write the output at this rate (default: the input's, or the model's when the model "
        "restores bandwidth, e.g. music on a 16 kHz file writes 48 kHz)",
    )
    io.add_argument("--blocksize", type=int, default=0, help="device callback block in samples (default 0: the host's; at most 65536)")
    io.add_argument(
        "--subtype",
        help="output file sample format, e.g. PCM_16, PCM_24, FLOAT (default: the input's "
        "if linear PCM or float, else PCM_24; VORBIS for .ogg)",
    )
    io.add_argument(
        "--no-compensate",
        dest="compensate",
        action="store_false",
        help="file to file: keep the engine's delay instead of aligning output with input",
    )
    io.add_argument(
        "--spectrogram",
        metavar="PNG",
        help="file mode: also write a picture of the input's and the "
        "output's spectrograms, one above the other (needs matplotlib: the plot extra)",
    )
    io.add_argument("--no-limiter", dest="limiter", action="store_false", help="turn off the soft limiter on live output")
    b = p.add_argument_group("batch mode (--in DIR or a glob such as 'talks/**/*.wav', --out DIR)")
    b.add_argument("--jobs", type=int, help="files enhanced in parallel, one process each (default: the number of CPUs / --threads)")
    b.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the files as tasks on an existing Ray cluster (e.g. auto); "
        "needs the ray extra and the folders at the same paths on every node",
    )
    m = p.add_argument_group("model and latency")
    m.add_argument(
        "--model",
        help="speech | speech-monitor | music | speech-restore | passthrough | PATH.onnx (default: speech if "
        "bundled, speech-monitor with --latency monitor; else passthrough)",
    )
    m.add_argument(
        "--latency",
        choices=sorted(geo.PRESETS),
        help="preset: " + "; ".join(f"{k}: hop {v[0]:g} ms, lookahead {v[1]:g} ms" for k, v in geo.PRESETS.items()),
    )
    m.add_argument("--hop", help="new samples per model call (e.g. 480 or 10ms)")
    m.add_argument("--lookahead", help="future context the kept output sees (e.g. 10ms)")
    m.add_argument("--crossfade", help="crossfade between consecutive windows (at most the lookahead)")
    m.add_argument(
        "--strength",
        type=_strength,
        default=1.0,
        metavar="S|NdB",
        help="how much of the model's change to keep, mixed with the aligned input at no added latency: "
        "0 = the input unchanged, 1 = the full effect (default); or the most it may remove, e.g. 12dB "
        "(= 0.75; DeepFilterNet's --atten-lim). A mix rather than a gain floor, so it works for every "
        "model. "
        "Live in a terminal, + and - change it while you listen",
    )
    m.add_argument(
        "--threads",
        type=int,
        default=1,
        help="onnxruntime threads (default 1; at most the CPU cores); with 2 or more, file mode runs a recurrent "
        "streaming model (speech, speech-monitor, music, speech-restore) as a two-stage pipeline on two cores",
    )
    m.add_argument("--provider", default="cpu", choices=sorted(PROVIDERS), help="execution provider (default cpu)")
    r = p.add_argument_group("report")
    r.add_argument("--stats-json", help="write the end-of-run report to this JSON file")
    r.add_argument("-q", "--quiet", action="store_true", help="no status line and no report")
    r.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _strength(text: str) -> float:
    from rt_enhance.realtime import strength as mixing

    try:
        return mixing.parse_strength(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# ----------------------------------------------------------------------------- endpoints


def _endpoints(args: argparse.Namespace) -> Endpoints:
    from rt_enhance.realtime.audio_io import FileSource, looks_like_path

    outs = args.out or ["speakers"]
    source = None
    input_device = None
    if args.inp == "demo" and not os.path.exists("demo"):
        source = FileSource(DEMO_CLIP)
    elif looks_like_path(args.inp):
        source = FileSource(args.inp)
    else:
        input_device = find_device(args.inp, "input")
    devices = [o for o in outs if not looks_like_path(o)]
    if len(devices) > 1:
        raise UsageError(f"--out names {len(devices)} devices ({', '.join(devices)}); give at most one device")
    files = tuple(o for o in outs if looks_like_path(o))
    _check_files(args, source, files)
    output_device = find_device(devices[0], "output") if devices else None
    return Endpoints(source, input_device, output_device, files)


def _check_files(args: argparse.Namespace, source: FileSource | None, files: tuple[str, ...]) -> None:
    """Every file written is a new name for no file read or written: compared by identity
    (device and inode after links), so symlinks, hard links and /proc/self/cwd are caught;
    and each can be created where it is named, before any work is done."""
    extra = (("--stats-json", args.stats_json), ("--spectrogram", args.spectrogram))
    writes = [("--out", f) for f in files] + [(flag, path) for flag, path in extra if path]
    for flag, path in writes:
        paths.check_writable_target(path, flag)
    from rt_enhance.realtime.processor import bundled_model_path

    reads = [("--in", source.path)] if source is not None else []
    model = bundled_model_path(args.model or "") or args.model
    if model and os.path.isfile(model):
        reads.append(("--model", model))
    paths.check_distinct(reads, writes)


def _channels(args: argparse.Namespace, ends: Endpoints) -> int:
    if ends.source_file is not None:
        return ends.source_file.channels
    assert ends.input_device is not None  # live input: a file or a device
    available = ends.input_device.channels
    channels = args.channels or min(2, available, limits.bounds("channels")[1])
    if not 1 <= channels <= available:
        raise UsageError(f"--channels {channels}: {ends.input_device} has {available} input channels")
    return channels


def _device_rate(args: argparse.Namespace, ends: Endpoints, channels: int, model_rate: int | None) -> int:
    """The first rate both devices accept: --rate, else the model's, else the devices' default."""
    sd = sounddevice()
    device = ends.input_device or ends.output_device
    assert device is not None  # live: at least one device
    wanted = [args.rate] if args.rate else [r for r in (model_rate, device.default_rate) if r]
    for rate in dict.fromkeys(wanted):
        try:
            if ends.input_device is not None:
                sd.check_input_settings(ends.input_device.index, channels=channels, samplerate=rate, dtype="float32")
            if ends.output_device is not None:
                sd.check_output_settings(ends.output_device.index, channels=channels, samplerate=rate, dtype="float32")
            return int(rate)
        except sd.PortAudioError as exc:
            last = exc
    names = " / ".join(str(d) for d in (ends.input_device, ends.output_device) if d is not None)
    raise DeviceError(f"{names} cannot open at {', '.join(map(str, dict.fromkeys(wanted)))} Hz ({last}); try --rate")


def _io_rate(args, ends: Endpoints, channels: int, model_rate: int | None, task: str | None = None) -> int:
    """The rate of the outputs: the device's, or in file to file :func:`offline.output_rate`."""
    if not _is_live(ends):
        from rt_enhance.realtime.offline import output_rate

        assert ends.source_file is not None  # file to file
        return output_rate(ends.source_file.rate, model_rate, task, args.rate)
    return _device_rate(args, ends, channels, model_rate)


def _is_live(ends: Endpoints) -> bool:
    return ends.input_device is not None or ends.output_device is not None


def _check_mode(args: argparse.Namespace, ends: Endpoints) -> None:
    """A flag that does not apply to this kind of run is refused, never silently ignored."""
    live = _is_live(ends)
    if ends.source_file is not None and args.channels is not None:
        raise UsageError(
            f"--channels applies to a device input; {ends.source_file.path} is read with its own {ends.source_file.channels} channel(s)"
        )
    if not live and args.blocksize:
        raise UsageError("--blocksize applies to audio devices; file to file has no device callbacks")
    if live and not args.compensate:
        raise UsageError("--no-compensate applies to file to file; a live run plays and records in real time")
    if not live and not args.limiter:
        raise UsageError("--no-limiter applies to live output; file to file never limits")
    if args.subtype is not None and not ends.output_files:
        raise UsageError(f"--subtype {args.subtype} applies to output files; no --out names a file")
    if args.duration is not None and not live:
        assert ends.source_file is not None  # file to file
        ends.source_file.limit(args.duration)


# ----------------------------------------------------------------------------- run


def _model_name(args: argparse.Namespace) -> str:
    """``--model``, else the bundled speech model: ``speech-monitor`` (2.5 ms steps) for ``--latency
    monitor`` when it is bundled, since the default ``speech`` model steps in 5 ms."""
    from rt_enhance.realtime.processor import bundled_model_path

    if args.model:
        return args.model
    if args.latency == "monitor" and bundled_model_path("speech-monitor"):
        return "speech-monitor"
    if bundled_model_path("speech"):
        return "speech"
    logger.warning("no trained model is bundled in this install; running 'passthrough'")
    return "passthrough"


def _streamer(args, processor, channels: int) -> Streamer:
    from rt_enhance.realtime.streamer import build_streamer

    return build_streamer(
        processor, channels, preset=args.latency, hop=args.hop, lookahead=args.lookahead, crossfade=args.crossfade, strength=args.strength
    )


def _sinks(ends: Endpoints, args, rate: int, channels: int) -> list[FileSink]:
    from rt_enhance.realtime.audio_io import AudioFileError, FileSink, output_subtype

    source_subtype = ends.source_file.subtype if ends.source_file else None
    sinks: list[FileSink] = []
    try:
        for path in ends.output_files:
            subtype = output_subtype(path, args.subtype, source_subtype)
            sinks.append(FileSink(path, rate=rate, channels=channels, subtype=subtype))
    except AudioFileError:
        for sink in sinks:
            sink.abort()
        raise
    return sinks


def _record(args, model: str, streamer: Streamer, extra: dict) -> dict:
    from rt_enhance.realtime import report

    g = streamer.geometry
    rec: dict[str, Any] = {
        "model": model,
        "model_rate": g.sample_rate,
        "channels": streamer.channels,
        "window": g.window,
        "hop": g.hop,
        "lookahead": g.lookahead,
        "crossfade": g.crossfade,
        "strength": streamer.mix.strength,
    }
    rec.update(extra)
    rec.update(report.compute_stats(streamer))
    rec["deadline_misses"] = rec.get("miss_events", 0) + streamer.dry_hops
    rec["bad_model_hops"] = streamer.bad_hops
    return rec


def _run_files(args, ends: Endpoints, streamer: Streamer, sinks: list[FileSink], rate: int) -> dict:
    from rt_enhance.realtime.audio_io import WriteError
    from rt_enhance.realtime.offline import enhance_file

    src = ends.source_file
    assert src is not None  # file to file
    try:
        result = enhance_file(src, sinks, streamer, compensate=args.compensate, rate_out=rate)
        for sink in sinks:
            sink.close()
    except WriteError as exc:  # all or nothing: the run can be repeated, a half file is no result
        raise WriteError(f"{exc}; no output file was replaced") from None
    g = streamer.geometry
    return {
        "mode": "file",
        "input": src.path,
        "input_rate": src.rate,
        "io_rate": rate,
        "duration_s": src.duration,
        "latency_samples": g.latency,
        "latency_ms": g.ms(g.latency),
        "compensated": result.compensated,
        "wall_s": result.seconds,
        "speed_x_realtime": src.duration / max(result.seconds, 1e-9),
        "outputs": list(ends.output_files),
    }


def _status_line(engine, keys: TerminalKeys | None = None) -> None:
    from rt_enhance.realtime import strength as mixing

    mix = engine.streamer.mix
    if keys is not None:
        mix.strength = mixing.apply_keys(mix.strength, keys.read())
    inp, out = engine.levels_db()
    status = engine.status()
    sys.stderr.write(
        f"\r  {status.seconds:7.1f} s   in {inp:6.1f} dBFS   out {out:6.1f} dBFS   "
        f"misses {status.misses}   xruns {status.xruns}   "
        f"strength {mix.strength:.1f}" + (f" ({mixing.KEYS_HELP})  " if keys is not None and keys.active else "  ")
    )
    sys.stderr.flush()


def _run_live(args, ends: Endpoints, streamer: Streamer, sinks: list[FileSink], rate: int, stop: StopSignals, make_engine=None) -> dict:
    from rt_enhance.realtime.live import LiveEngine

    engine = (make_engine or LiveEngine)(
        streamer=streamer,
        device_rate=rate,
        input_device=ends.input_device,
        output_device=ends.output_device,
        source=ends.source_file,
        sinks=sinks,
        blocksize=args.blocksize,
        limit_knee=0.9 if args.limiter else 0.0,
    )
    stop.attach(engine)  # from here on a signal stops the stream and keeps what it captured
    show = sys.stderr.isatty() and not args.quiet
    try:
        with TerminalKeys(enabled=show) as keys:
            tick = (lambda eng: _status_line(eng, keys)) if show else None
            result = engine.run(duration=args.duration, on_tick=tick)
    finally:
        if show:
            sys.stderr.write("\n")
    if engine.device_lost:
        logger.error("%s; exit code %d", result.stop_reason, EXIT_DEVICE_LOST)
    for sink in engine.worker.sinks:
        if not sink.close():
            logger.warning("%s: nothing was recorded (%s); the file was left as it was", sink.path, result.stop_reason)
    g = streamer.geometry
    # From a device, the constant delay of the stream; from a file, the engine's algorithmic latency.
    d = result.delay_samples if ends.input_device is not None else round(g.latency * rate / g.sample_rate)
    return {
        "mode": "live",
        "io_rate": rate,
        "input": ends.input_name,
        "output": str(ends.output_device) if ends.output_device else None,
        "outputs": list(ends.output_files),
        "duration_s": result.input_samples / rate if ends.input_device else result.seconds,
        "latency_samples": d,
        "latency_ms": 1000.0 * d / rate,
        "blocksize": result.blocksize,
        "device_latency_in_ms": 1000.0 * result.device_latency[0],
        "device_latency_out_ms": 1000.0 * result.device_latency[1],
        "device_latency_in_max_ms": 1000.0 * result.device_latency_max[0],
        "device_latency_out_max_ms": 1000.0 * result.device_latency_max[1],
        "missed_samples": result.missed_samples,
        "miss_events": result.miss_events,
        "dry_hops": result.dry_hops,
        "overrun_samples": result.overrun_samples,
        "xruns": result.xruns,
        "stop_reason": result.stop_reason,
        "failed_outputs": result.failed_outputs,
        "exit_code": _live_exit(result),
    }


def _live_exit(result) -> int:
    from rt_enhance.realtime.live import NEVER_STARTED, STREAM_ENDED

    if result.stop_reason in (STREAM_ENDED, NEVER_STARTED):
        return EXIT_DEVICE_LOST
    return EXIT_WRITE_FAILED if result.failed_outputs else 0


def run(args: argparse.Namespace, stop: StopSignals | None = None) -> int:
    if args.list_devices:
        return _list_devices()
    stop = stop or StopSignals()
    from rt_enhance.realtime import report
    from rt_enhance.realtime.processor import open_processor

    _check_args(args)
    from rt_enhance.realtime import batch

    if batch.is_batch(args.inp, args.out or []):
        return _run_batch(args)
    if args.jobs is not None or args.ray:
        raise UsageError("--jobs and --ray are for batch mode: give a folder or a glob as --in and a folder as --out")
    if any(o.lower() in VIRTUAL_MIC for o in args.out or []):
        return _run_virtual_mic(args, stop)
    ends = _endpoints(args)
    _check_mode(args, ends)
    channels = _channels(args, ends)
    name = _model_name(args)
    probe = None if name == "passthrough" else open_processor(name, threads=args.threads, provider=args.provider)
    rate = _io_rate(args, ends, channels, probe.info.sample_rate if probe else None, probe.info.extra.get("task") if probe else None)
    processor = probe or open_processor(name, rate_hint=rate)
    streamer = _streamer(args, processor, channels)
    live = _is_live(ends)
    _check_picture(args, live, ends)
    stop.check()
    sinks = stop.sinks = _sinks(ends, args, rate, channels)
    try:
        extra = _run_live(args, ends, streamer, sinks, rate, stop) if live else _run_files(args, ends, streamer, sinks, rate)
    except BaseException:
        # A live recording keeps what it captured; a file-to-file result is all or nothing.
        for sink in sinks:
            _keep(sink) if live else sink.abort()
        raise
    record = _record(args, name, streamer, extra)
    if args.spectrogram:
        from rt_enhance.realtime import pictures

        pictures.write_before_after(
            args.spectrogram, ends.input_name, ends.output_files[0], title=f"rt-enhance --model {name}", before_seconds=args.duration
        )
        record["spectrogram"] = args.spectrogram
    if not args.quiet:
        print("rt-enhance report:\n" + report.render(record), file=sys.stderr)
    if args.stats_json:
        _write_stats(args.stats_json, record)
    return int(record.get("exit_code", 0))


def _list_devices() -> int:
    table = list_devices()
    print(
        table
        or "no audio devices found: PortAudio sees no sound card and no running audio server "
        "(JACK, PulseAudio, PipeWire); file to file works without one"
    )
    return 0


def _write_stats(path: str, record: dict) -> None:
    from rt_enhance.realtime import report
    from rt_enhance.realtime.audio_io import WriteError

    try:
        report.write_json(path, record)
    except OSError as exc:
        raise WriteError(f"--stats-json {path}: cannot write the report ({exc.strerror})") from None


BATCH_UNUSED = {"duration": "--duration", "spectrogram": "--spectrogram", "channels": "--channels", "rate": "--rate"}


def _run_batch(args: argparse.Namespace) -> int:
    from rt_enhance.realtime import batch
    from rt_enhance.realtime.processor import open_processor

    given = [flag for key, flag in BATCH_UNUSED.items() if getattr(args, key) is not None]
    if given or args.blocksize or not args.limiter:
        raise UsageError(f"{', '.join(given) or 'device flags'}: not used in batch mode (a folder or glob in, a folder out)")
    if not args.out or len(args.out) != 1 or os.path.splitext(args.out[0])[1].lower() in batch.AUDIO_EXTENSIONS:
        raise UsageError(f"--in {args.inp} is a folder or a glob: give one folder as --out")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    if args.stats_json:
        paths.check_writable_target(args.stats_json, "--stats-json")
    settings = batch.Settings(
        model=_model_name(args),
        threads=args.threads,
        provider=args.provider,
        preset=args.latency,
        hop=args.hop,
        lookahead=args.lookahead,
        crossfade=args.crossfade,
        strength=args.strength,
        compensate=args.compensate,
        subtype=args.subtype,
    )
    if settings.model != "passthrough":  # a bad model or geometry flag is one line now, not a failure per file
        _streamer(args, open_processor(settings.model, threads=args.threads, provider=args.provider), 1)
    jobs = args.jobs or max(1, (os.cpu_count() or 1) // args.threads)
    summary = batch.run_batch(args.inp, args.out[0], settings, jobs=jobs, ray_address=args.ray, progress=not args.quiet)
    if not args.quiet or summary.failed:
        print(batch.render(summary, args.inp, args.out[0]), file=sys.stderr)
    if args.stats_json:
        _write_stats(args.stats_json, summary.as_record())
    return batch.EXIT_FAILURES if summary.failed else 0


VIRTUAL_MIC = ("virtual-mic", "virtual-microphone")  # --out spellings


def _run_virtual_mic(args: argparse.Namespace, stop: StopSignals) -> int:
    """--out virtual-mic: the enhanced microphone (or file) as a source other applications record."""
    from rt_enhance.realtime import report, virtual_mic
    from rt_enhance.realtime.audio_io import FileSource, looks_like_path
    from rt_enhance.realtime.processor import open_processor

    files = tuple(o for o in args.out if o.lower() not in VIRTUAL_MIC)
    _check_virtual_mic_flags(args, files)
    from_file = args.inp == "demo" or looks_like_path(args.inp)
    source = FileSource(DEMO_CLIP if args.inp == "demo" else args.inp) if from_file else None
    _check_files(args, source, files)
    name = _model_name(args)
    processor = open_processor(name, threads=args.threads, provider=args.provider)
    rate = processor.info.sample_rate
    channels = source.channels if source else (args.channels or 1)
    streamer = _streamer(args, processor, channels)
    block = args.blocksize or max(1, round(rate * 0.005))
    mic = None if source else virtual_mic.input_device(args.inp, channels, rate)  # before the device exists
    with virtual_mic.VirtualMic(name, rate=rate, channels=channels) as vmic:
        ends = Endpoints(source, mic, vmic.device(), files)
        stop.check()
        sinks = stop.sinks = _sinks(ends, args, rate, channels)
        try:
            make_engine = lambda **kw: virtual_mic.engine(block=block, **kw)  # noqa: E731
            extra = _run_live(args, ends, streamer, sinks, rate, stop, make_engine)
        except BaseException:
            for sink in sinks:
                _keep(sink)
            raise
    extra["virtual_mic"] = vmic.source_name
    extra["latency_total_ms"] = extra["latency_ms"] + extra["device_latency_in_ms"] + extra["device_latency_out_ms"]
    record = _record(args, name, streamer, extra)
    if not args.quiet:
        print("rt-enhance report:\n" + report.render(record), file=sys.stderr)
    if args.stats_json:
        _write_stats(args.stats_json, record)
    return int(record.get("exit_code", 0))


def _check_virtual_mic_flags(args: argparse.Namespace, files: tuple[str, ...]) -> None:
    """--out virtual-mic takes files beside it; flags that cannot apply are refused."""
    from rt_enhance.realtime.audio_io import looks_like_path

    if any(not looks_like_path(f) for f in files) or args.spectrogram:
        raise UsageError(
            "--out virtual-mic goes with files only (no second device, no --spectrogram); "
            "to hear yourself, monitor the virtual mic in your call app"
        )
    if args.rate is not None:
        raise UsageError(
            "--rate does not apply to --out virtual-mic: it runs at the model's rate and the server converts for each application"
        )
    if not args.compensate:
        raise UsageError("--no-compensate applies to file to file; a virtual microphone runs in real time")
    if args.subtype is not None and not files:
        raise UsageError(f"--subtype {args.subtype} applies to output files; no --out names a file")


def _check_picture(args, live: bool, ends: Endpoints) -> None:
    if not args.spectrogram:
        return
    if live or not ends.output_files:
        raise UsageError("--spectrogram needs file mode: a file in and a file out (--in FILE --out FILE)")
    from rt_enhance.realtime import pictures

    pictures.check_available()


def _keep(sink: FileSink) -> None:
    """A live run that failed: finalise what it recorded (an empty recording replaces nothing)."""
    try:
        sink.close()
    except Exception as exc:  # noqa: BLE001 - say where the audio is instead
        logger.error("%s: could not finalise (%s); the recording is in %s", sink.path, exc, sink.tmp_path)


def _check_args(args: argparse.Namespace) -> None:
    if args.duration is not None and not (args.duration > 0 and math.isfinite(args.duration)):
        raise UsageError(f"--duration must be a positive number of seconds, got {args.duration}")
    if args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    if args.blocksize < 0:
        raise UsageError(f"--blocksize must be 0 (host default) or positive, got {args.blocksize}")
    if args.rate is not None and args.rate <= 0:
        raise UsageError(f"--rate must be positive, got {args.rate}")
    if args.channels is not None and args.channels < 1:
        raise UsageError(f"--channels must be at least 1, got {args.channels}")
    for what, value in (("threads", args.threads), ("blocksize", args.blocksize), ("sample rate", args.rate), ("channels", args.channels)):
        if value is not None:
            limits.check(what, value, "--rate" if what == "sample rate" else f"--{what}")


def main(argv: list[str] | None = None) -> int:
    with StopSignals() as stop:  # before any output is opened
        try:
            return _main(argv, stop)
        except KeyboardInterrupt as exc:
            return _interrupted(getattr(exc, "signum", signal.SIGINT))
        except Exception:
            if stop.pending is None:
                raise
            return _interrupted(stop.pending)  # the signal's exception turned into another one on its way out


def _interrupted(signum: int) -> int:
    print(f"rt-enhance: interrupted ({signal.Signals(signum).name}) before the run finished; no output file was replaced", file=sys.stderr)
    return 128 + signum


def _main(argv: list[str] | None, stop: StopSignals) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file size limit is a write error, not a kill
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="rt-enhance: %(message)s")
    from rt_enhance.realtime.audio_io import WriteError

    try:
        code = run(args, stop)
    except WriteError as exc:
        return report("rt-enhance", exc, EXIT_WRITE_FAILED)
    except RtEnhanceError as exc:  # every other error of ours is a user mistake here
        return report("rt-enhance", exc, EXIT_USAGE)
    if code == EXIT_DEVICE_LOST:
        # PortAudio may hang in its exit handler after losing a server: the recording is
        # already finalised and the report written, so leave without it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
