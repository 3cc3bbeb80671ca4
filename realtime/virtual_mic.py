"""A virtual microphone on PipeWire (through pipewire-pulse) or PulseAudio: ``--out virtual-mic``.

How it is made (the way NoiseTorch does it, with the server's own modules, no sound server of
ours): ``module-null-sink`` gives a sink the enhanced audio is played into, and
``module-remap-source`` turns that sink's monitor into a real source, so every application lists
it as a microphone (many hide monitors). Both go through ``pactl``, which speaks to plain
PulseAudio and to PipeWire's PulseAudio interface alike. The physical microphone is read and the
enhanced signal written with libpulse-simple (:mod:`pulse`), from one thread that calls the live
engine's duplex callback once per block: the record stream's clock drives the engine exactly as a
device callback would.

Clean-up, whatever ends the run:

* normal end, Ctrl-C, SIGTERM: the modules are unloaded and the streams closed (the physical
  microphone is released) before the report;
* a crash or SIGKILL: a watchdog process (``sh``, in its own session) waits for the tool's end of
  a pipe to close, which the kernel does when the tool dies, then unloads the modules;
* if even that failed (the machine lost power), the modules carry ``rt_enhance.pid``: the next
  run finds modules whose process is gone and unloads them before making its own.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from dataclasses import dataclass

from rt_enhance.realtime.devices import Device
from rt_enhance.realtime.pulse import PulseDuplex, ServerError, names, pactl

__all__ = ["ServerError", "VirtualMic", "engine", "input_device"]

logger = logging.getLogger(__name__)

HOSTAPI = "PulseAudio"


def slug(model: str) -> str:
    """A model name or path as a device-name part: ``speech``, ``my-model`` (from my-model.onnx)."""
    stem = os.path.splitext(os.path.basename(model))[0]
    return re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-") or "model"


def _modules() -> list[tuple[int, str, str]]:
    """``(index, module name, arguments)`` of every loaded module."""
    rows = []
    for line in pactl("list", "short", "modules").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0].isdigit():
            rows.append((int(parts[0]), parts[1], parts[2] if len(parts) > 2 else ""))
    return rows


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ----------------------------------------------------------------------------- the device


@dataclass
class VirtualMic:
    """The null sink + remap source pair named after the tool and the model.

    ``source_name`` is what a recording client opens (``rt_enhance.speech``); applications show
    the description, ``rt-enhance (speech)``.
    """

    model: str
    rate: int = 48000
    channels: int = 1

    def __post_init__(self) -> None:
        self.source_name = f"rt_enhance.{slug(self.model)}"
        self.sink_name = f"{self.source_name}.sink"
        self.description = f"rt-enhance ({slug(self.model)})"
        self.modules: list[int] = []
        self._watchdog: subprocess.Popen | None = None

    def create(self) -> VirtualMic:
        """Check the server, replace leftovers of dead runs, refuse a clash, load both modules."""
        self.server = pactl("info")
        self._remove_leftovers()
        taken = (names("sources") | names("sinks")) & {self.source_name, self.sink_name}
        if taken:
            raise ServerError(
                f"a device named {sorted(taken)[0]} already exists and is not a leftover of rt-enhance; "
                "remove it (pactl unload-module) or pick another model name"
            )
        mark = f"rt_enhance.pid={os.getpid()}"
        self.modules.append(
            int(
                pactl(
                    "load-module",
                    "module-null-sink",
                    f"sink_name={self.sink_name}",
                    f"rate={self.rate}",
                    f"channels={self.channels}",
                    _props(f"{self.description} output", mark),
                ).strip()
            )
        )
        self._start_watchdog()
        self.modules.append(
            int(
                pactl(
                    "load-module",
                    "module-remap-source",
                    f"master={self.sink_name}.monitor",
                    f"source_name={self.source_name}",
                    f"channels={self.channels}",
                    f"rate={self.rate}",
                    _props(self.description, mark, "source"),
                ).strip()
            )
        )
        self._start_watchdog()
        logger.info("virtual microphone %s (modules %s)", self.source_name, self.modules)
        return self

    def _remove_leftovers(self) -> None:
        for index, _, args in _modules():
            match = re.search(r"rt_enhance\.pid=(\d+)", args)
            if not match or (self.source_name not in args and self.sink_name not in args):
                continue
            pid = int(match.group(1))
            if pid != os.getpid() and _alive(pid):
                raise ServerError(
                    f"another rt-enhance (pid {pid}) runs the virtual microphone {self.source_name}; stop it first or use another --model"
                )
            logger.warning("removing a virtual microphone left by an earlier run (module %d)", index)
            pactl("unload-module", str(index))

    def _start_watchdog(self) -> None:
        """(Re)start a process that unloads our modules when this process dies, however it dies."""
        self._stop_watchdog()
        unload = "; ".join(f"pactl unload-module {m}" for m in reversed(self.modules))
        self._watchdog = subprocess.Popen(
            ["sh", "-c", f"cat >/dev/null; {unload}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.kill()
            self._watchdog.wait()
            self._watchdog = None

    def remove(self) -> None:
        """Unload the modules (the device disappears for every application)."""
        self._stop_watchdog()
        for index in reversed(self.modules):
            try:
                pactl("unload-module", str(index))
            except ServerError as exc:
                logger.warning("could not remove module %d of the virtual microphone: %s", index, exc)
        self.modules.clear()

    def __enter__(self) -> VirtualMic:
        return self.create()

    def __exit__(self, *exc) -> None:
        self.remove()

    def device(self) -> Device:
        """The virtual mic as the engine's output device."""
        return Device(-1, self.source_name, HOSTAPI, self.channels, self.rate, 0.0)


def _props(description: str, mark: str, kind: str = "sink") -> str:
    """``sink_properties=...`` quoted so that PulseAudio and pipewire-pulse both read a description with spaces."""
    return f"{kind}_properties=\"device.description='{description}' {mark}\""


def input_device(name: str, channels: int, rate: int) -> Device:
    """``mic``/``default`` -> the server's default source, by name (resolved before the virtual
    microphone exists: a server may make the newest source its default); else a source whose name
    contains ``name``. rt-enhance's own virtual microphones are never an input (feedback)."""
    if name.lower() in ("mic", "default"):
        default = pactl("get-default-source").strip()
        if default.startswith("rt_enhance."):
            raise ServerError(
                f"the default source is rt-enhance's own virtual microphone {default}; "
                "name the real microphone with --in (pactl list short sources)"
            )
        return Device(-1, default, HOSTAPI, channels, rate, 0.0)
    sources = sorted(n for n in names("sources") if name.lower() in n.lower() and not n.startswith("rt_enhance."))
    exact = [n for n in sources if n == name]
    if exact or len(sources) == 1:
        return Device(-1, (exact or sources)[0], HOSTAPI, channels, rate, 0.0)
    if not sources:
        raise ServerError(f"no source matches '{name}'; list them with: pactl list short sources")
    raise ServerError(f"'{name}' is ambiguous ({', '.join(sources)}); give the full source name")


# ----------------------------------------------------------------------------- the engine


def engine(*, block: int, **kwargs):
    """A :class:`~rt_enhance.realtime.live.LiveEngine` whose stream is a :class:`PulseDuplex`:
    ``input_device`` from :func:`input_device` (or a file ``source``), ``output_device`` from
    :meth:`VirtualMic.device`, ``block`` samples per callback; other arguments as LiveEngine's."""
    from rt_enhance.realtime.live import LiveEngine

    class VirtualMicEngine(LiveEngine):
        def _stream(self) -> PulseDuplex:
            duplex = self.input_device is not None
            assert self.output_device is not None  # the virtual microphone's sink
            stream = PulseDuplex(
                source=self.input_device.name if self.input_device is not None else None,
                sink=f"{self.output_device.name}.sink",
                rate=self.rate,
                channels=self.channels,
                block=block,
                duplex=duplex,
                callback=self.callbacks.duplex if duplex else self.callbacks.playback,
            )
            self._pulse = stream
            return stream

        def _result(self, seconds: float):
            self.device_latency = self._pulse.latency
            self.device_latency_max = self._pulse.latency_max
            return super()._result(seconds)

    return VirtualMicEngine(**kwargs)
