"""Audio devices through sounddevice (PortAudio): lazy import, lookup by index or name, listing."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rt_enhance.realtime.errors import RtEnhanceError

logger = logging.getLogger(__name__)

DEFAULT_NAMES = {"mic", "default", "speakers"}


class DeviceError(RtEnhanceError, RuntimeError):
    """A device problem; the message is one line for the user."""


def sounddevice():
    """Import sounddevice, turning a missing PortAudio into one actionable line."""
    try:
        import sounddevice as sd
    except OSError as exc:
        raise DeviceError(f"PortAudio is not installed ({exc}); on Debian/Ubuntu run: apt-get install libportaudio2") from None
    return sd


@dataclass(frozen=True)
class Device:
    index: int
    name: str
    hostapi: str
    channels: int
    default_rate: int
    low_latency: float

    def __str__(self) -> str:
        return f"[{self.index}] {self.name} ({self.hostapi})"


def _describe(sd, index: int, kind: str) -> Device:
    info = sd.query_devices(index)
    hostapi = sd.query_hostapis(info["hostapi"])["name"]
    channels = info["max_input_channels"] if kind == "input" else info["max_output_channels"]
    latency = info["default_low_input_latency"] if kind == "input" else info["default_low_output_latency"]
    return Device(index, info["name"], hostapi, int(channels), int(info["default_samplerate"]), float(latency))


def _default_index(sd, kind: str) -> int:
    index = sd.default.device[0 if kind == "input" else 1]
    if index is None or index < 0:
        raise DeviceError(f"there is no default {kind} device; pick one with --list-devices")
    return int(index)


def _matches(sd, text: str, kind: str) -> list[int]:
    needle = text.lower()
    found = []
    for index, info in enumerate(sd.query_devices()):
        channels = info["max_input_channels"] if kind == "input" else info["max_output_channels"]
        hostapi = sd.query_hostapis(info["hostapi"])["name"]
        if channels > 0 and (needle in info["name"].lower() or needle in hostapi.lower()):
            found.append(index)
    return found


def _pick(sd, text: str, found: list[int], kind: str) -> int:
    """Several devices match: prefer the matched host API's default device, then an exact name."""
    for index in found:
        hostapi = sd.query_hostapis(sd.query_devices(index)["hostapi"])
        default = hostapi["default_input_device" if kind == "input" else "default_output_device"]
        if text.lower() in hostapi["name"].lower() and default in found:
            return int(default)
    exact = [i for i in found if sd.query_devices(i)["name"].lower() == text.lower()]
    if len(exact) == 1:
        return exact[0]
    names = "; ".join(str(_describe(sd, i, kind)) for i in found[:6])
    raise DeviceError(f"{kind} device {text!r} is ambiguous ({names}); give its index (see --list-devices)")


def find_device(text: str, kind: str) -> Device:
    """``text``: 'mic'/'speakers'/'default', an index, or a substring of a device or host API name."""
    sd = sounddevice()
    if text.lower() in DEFAULT_NAMES:
        return _describe(sd, _default_index(sd, kind), kind)
    if text.isdigit():
        index = int(text)
        if index >= len(sd.query_devices()):
            raise DeviceError(f"no audio device with index {index}; list them with --list-devices")
        device = _describe(sd, index, kind)
        if device.channels <= 0:
            raise DeviceError(f"device {device} has no {kind} channels; list them with --list-devices")
        return device
    found = _matches(sd, text, kind)
    if not found:
        raise DeviceError(f"no {kind} device matches {text!r}; list them with --list-devices")
    return _describe(sd, found[0] if len(found) == 1 else _pick(sd, text, found, kind), kind)


def list_devices() -> str:
    """PortAudio's device table, as the user sees it."""
    sd = sounddevice()
    return str(sd.query_devices())
