"""Batch mode: every audio file in a folder tree (or matching a glob) enhanced into another folder.

``rt-enhance --in DIR|GLOB --out DIR``: the output keeps the tree, the file names and the
formats. Each file runs through the same file-mode chain as ``--in FILE --out FILE`` (aligned,
written to a temporary file and renamed into place), so an output that exists is complete: a
rerun skips it and does only what is missing. A file that fails is listed at the end and the rest
go on; the exit code is 1 if any failed.

Files go to a process pool (``--jobs``), each process opening the model once. With ``--ray
ADDRESS`` the same work runs as Ray tasks on an existing cluster instead (``pip install
"rt-enhance[ray]"``); every node must see the input and output folders at the same paths.
"""

from __future__ import annotations

import glob
import logging
import os
import socket
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context

from rt_enhance.realtime.audio_io import AUDIO_EXTENSIONS, FileSink, FileSource, output_subtype
from rt_enhance.realtime.errors import RtEnhanceError, first_line
from rt_enhance.realtime.offline import enhance_file, output_rate
from rt_enhance.realtime.processor import open_processor
from rt_enhance.realtime.streamer import build_streamer

logger = logging.getLogger(__name__)

EXIT_FAILURES = 1


class BatchError(RtEnhanceError):
    """The batch cannot start (no inputs, an unwritable output folder); one line for the user."""


@dataclass(frozen=True)
class Settings:
    """What every file is enhanced with (plain values: they travel to worker processes)."""

    model: str
    threads: int = 1
    provider: str = "cpu"
    preset: str | None = None
    hop: str | None = None
    lookahead: str | None = None
    crossfade: str | None = None
    strength: float = 1.0
    compensate: bool = True
    subtype: str | None = None


@dataclass
class Outcome:
    src: str
    dst: str
    error: str | None = None
    audio_seconds: float = 0.0


@dataclass
class Summary:
    done: list[Outcome] = field(default_factory=list)
    failed: list[Outcome] = field(default_factory=list)
    skipped: int = 0
    seconds: float = 0.0

    def as_record(self) -> dict:
        audio = sum(o.audio_seconds for o in self.done)
        return {
            "mode": "batch",
            "enhanced": len(self.done),
            "skipped": self.skipped,
            "failed": len(self.failed),
            "audio_s": audio,
            "wall_s": self.seconds,
            "speed_x_realtime": audio / max(self.seconds, 1e-9),
            "failures": {o.src: o.error for o in self.failed},
        }


# ----------------------------------------------------------------------------- planning


def is_batch(inp: str, outs: list[str]) -> bool:
    """``--in`` is a folder or a glob pattern (with one ``--out``): batch mode."""
    return os.path.isdir(inp) or (glob.has_magic(inp) and not os.path.exists(inp))


def _inputs(inp: str) -> tuple[list[str], str]:
    """The audio files under ``inp`` (a folder, or a glob with ``**`` for any depth) and the base
    folder their relative paths start from."""
    if os.path.isdir(inp):
        base = inp
        found = [os.path.join(root, name) for root, _, names in os.walk(inp) for name in names]
    else:
        parts = inp.split(os.sep)
        fixed = next(i for i, part in enumerate(parts) if glob.has_magic(part))
        base = os.sep.join(parts[:fixed]) or "."
        found = [p for p in glob.glob(inp, recursive=True) if os.path.isfile(p)]
    return sorted(p for p in found if os.path.splitext(p)[1].lower() in AUDIO_EXTENSIONS), base


def plan(inp: str, out_dir: str) -> tuple[list[tuple[str, str]], int]:
    """``([(input, output), ...] still to do, number already done)``; outputs mirror the tree.

    Files inside ``out_dir`` are never inputs, so an output folder inside the input tree works.
    """
    files, base = _inputs(inp)
    out_abs = os.path.abspath(out_dir) + os.sep
    todo, done = [], 0
    for src in files:
        if os.path.abspath(src).startswith(out_abs):
            continue
        dst = os.path.join(out_dir, os.path.relpath(src, base))
        if os.path.exists(dst):
            done += 1
        else:
            todo.append((src, dst))
    if not todo and not done:
        raise BatchError(f"no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) found in {inp}")
    return todo, done


def prepare_output(out_dir: str) -> None:
    """Create ``out_dir`` if needed; raise BatchError when it cannot be created or written."""
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise BatchError(f"cannot create the output folder {out_dir}: {exc.strerror or exc}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise BatchError(f"the output folder {out_dir} is not writable; choose another --out or fix its permissions")


# ----------------------------------------------------------------------------- one file

_processors: dict[tuple, object] = {}  # per process: the model, opened once


def _processor(settings: Settings, rate: int):
    key = (settings.model, rate if settings.model == "passthrough" else None)
    if key not in _processors:
        _processors[key] = open_processor(settings.model, threads=settings.threads, provider=settings.provider, rate_hint=rate)
    return _processors[key]


def enhance_one(settings: Settings, src: str, dst: str) -> Outcome:
    """Enhance one file; any failure becomes the outcome's one-line ``error`` (never raised)."""
    try:
        source = FileSource(src)
        streamer = build_streamer(
            _processor(settings, source.rate),
            source.channels,
            preset=settings.preset,
            hop=settings.hop,
            lookahead=settings.lookahead,
            crossfade=settings.crossfade,
            strength=settings.strength,
        )
        os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
        subtype = output_subtype(dst, settings.subtype, source.subtype)
        info = streamer.processor.info
        rate = output_rate(source.rate, info.sample_rate, info.extra.get("task"))
        sink = FileSink(dst, rate=rate, channels=source.channels, subtype=subtype)
        try:
            enhance_file(source, [sink], streamer, compensate=settings.compensate, rate_out=rate)
        except BaseException:
            sink.abort()
            raise
        sink.close()
        return Outcome(src, dst, None, source.duration)
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch; the reason is listed
        return Outcome(src, dst, first_line(exc).replace(f"{src}: ", ""))


# ----------------------------------------------------------------------------- running


class Progress:
    """``  12/40 files [#####.....] 1 failed`` on one terminal line; silent elsewhere."""

    WIDTH = 30

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.count, self.failed = total, 0, 0
        self.enabled = enabled and sys.stderr.isatty()

    def update(self, outcome: Outcome) -> None:
        self.count += 1
        self.failed += outcome.error is not None
        if self.enabled:
            filled = self.WIDTH * self.count // max(self.total, 1)
            sys.stderr.write(
                f"\r  {self.count}/{self.total} files [{'#' * filled}{'.' * (self.WIDTH - filled)}]"
                + (f" {self.failed} failed" if self.failed else "")
                + "  "
            )
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _local(settings: Settings, todo: list[tuple[str, str]], jobs: int):
    """Outcomes as they complete, from ``jobs`` worker processes (in this process for one job)."""
    if jobs <= 1 or len(todo) <= 1:
        for src, dst in todo:
            yield enhance_one(settings, src, dst)
        return
    # spawn: a fresh interpreter per worker, never a fork of onnxruntime's or numba's threads
    with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(enhance_one, settings, src, dst) for src, dst in todo]
        for future in as_completed(futures):
            yield future.result()


def _on_ray(settings: Settings, todo: list[tuple[str, str]], address: str):
    """Outcomes as they complete, from Ray tasks on the cluster at ``address``."""
    try:
        import ray
    except ImportError:
        raise BatchError('--ray needs Ray: pip install "rt-enhance[ray]"') from None
    _check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except Exception as exc:  # noqa: BLE001 - ray raises ConnectionError, RuntimeError, ...
        raise BatchError(f"cannot reach the Ray cluster at {address}: {first_line(exc)}") from None
    task = ray.remote(num_cpus=settings.threads)(enhance_one)
    # workers run in folders of their own: they get absolute paths, the summary keeps the user's
    names = {task.remote(settings, os.path.abspath(src), os.path.abspath(dst)): (src, dst) for src, dst in todo}
    pending = list(names)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            outcome = ray.get(ready[0])
            outcome.src, outcome.dst = names[ready[0]]
            if outcome.error:
                outcome.error = outcome.error.replace(f"{os.path.abspath(outcome.src)}: ", "")
            yield outcome
    finally:
        ray.shutdown()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """``host:port`` or ``ray://host:port``: a TCP connection within ``timeout`` s, since Ray
    itself retries an unreachable address for minutes. ``auto`` is left to Ray (it fails fast)."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise BatchError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}; check the address (ray status on the head node)"
        ) from None


def run_batch(
    inp: str, out_dir: str, settings: Settings, *, jobs: int = 1, ray_address: str | None = None, progress: bool = True
) -> Summary:
    """Enhance every audio file under ``inp`` into ``out_dir``; failures are in the summary, not raised."""
    prepare_output(out_dir)
    todo, skipped = plan(inp, out_dir)
    summary = Summary(skipped=skipped)
    bar = Progress(len(todo), progress)
    start = time.perf_counter()
    outcomes = _on_ray(settings, todo, ray_address) if ray_address else _local(settings, todo, jobs)
    try:
        for outcome in outcomes:
            (summary.failed if outcome.error else summary.done).append(outcome)
            bar.update(outcome)
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - start
    return summary


def render(summary: Summary, inp: str, out_dir: str) -> str:
    """The end-of-batch lines: counts, then one line per failed file."""
    lines = [
        f"rt-enhance: {inp} -> {out_dir}: {len(summary.done)} enhanced, {summary.skipped} already done, "
        f"{len(summary.failed)} failed ({summary.seconds:.1f} s)"
    ]
    lines += [f"  failed: {o.src}: {o.error}" for o in sorted(summary.failed, key=lambda o: o.src)]
    return "\n".join(lines)
