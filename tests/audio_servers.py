"""Real sound servers with no sound card, private to the tests: PipeWire (with pipewire-pulse and
WirePlumber, on a session bus of its own) and plain PulseAudio.

Each lives in its own runtime folder, so it never meets the user's server or another test run.
``env`` is what a client (pactl, parec, pw-record, rt-enhance) needs to reach it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

PIPEWIRE_TOOLS = ("dbus-daemon", "pipewire", "wireplumber", "pipewire-pulse", "pactl", "pw-record", "pw-link", "paplay")


class ServerUnavailable(RuntimeError):
    pass


@dataclass
class SoundServer:
    kind: str
    root: str
    env: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)

    def pactl(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, timeout=15)
        if check and done.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def names(self, kind: str) -> set[str]:
        return {line.split("\t")[1] for line in self.pactl("list", "short", kind).splitlines() if "\t" in line}

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def _wait_ready(server: SoundServer, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done = subprocess.run(["pactl", "info"], env=server.env, capture_output=True, text=True, timeout=15)
        if done.returncode == 0 and "Server Name" in done.stdout:
            return
        if any(p.poll() is not None for p in server.procs):
            break
        time.sleep(0.2)
    logs = {p.args[0]: open(os.path.join(server.root, f"{os.path.basename(p.args[0])}.log")).read()[-500:] for p in server.procs}
    server.stop()
    raise ServerUnavailable(f"{server.kind} did not start: {logs}")


def _base_env(root: str) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("PULSE_SERVER", "PIPEWIRE_REMOTE", "DISPLAY", "DBUS_SESSION_BUS_ADDRESS"):
        env.pop(key, None)
    env.update(
        XDG_RUNTIME_DIR=root,
        PIPEWIRE_RUNTIME_DIR=root,
        PULSE_RUNTIME_PATH=os.path.join(root, "pulse"),
        XDG_STATE_HOME=os.path.join(root, "state"),
        XDG_CONFIG_HOME=os.path.join(root, "config"),
        PULSE_SERVER=f"unix:{os.path.join(root, 'pulse', 'native')}",
    )
    return env


def _spawn(server: SoundServer, *cmd: str) -> None:
    log = open(os.path.join(server.root, f"{os.path.basename(cmd[0])}.log"), "w")
    server.procs.append(
        subprocess.Popen(list(cmd), env=server.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    )


def start_pipewire() -> SoundServer:
    """PipeWire + WirePlumber + pipewire-pulse on a private session bus; no card, a dummy driver."""
    missing = [tool for tool in PIPEWIRE_TOOLS if shutil.which(tool) is None]
    if missing:
        raise ServerUnavailable(
            f"missing {', '.join(missing)}: apt-get install pipewire pipewire-pulse wireplumber pulseaudio-utils pipewire-bin dbus-daemon"
        )
    root = tempfile.mkdtemp(prefix="rt-enhance-pw-")
    os.chmod(root, 0o700)
    server = SoundServer("PipeWire", root, _base_env(root))
    bus = os.path.join(root, "bus")
    server.env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={bus}"
    _spawn(server, "dbus-daemon", "--session", "--nofork", f"--address=unix:path={bus}")
    for _ in range(100):
        if os.path.exists(bus):
            break
        time.sleep(0.05)
    _spawn(server, "pipewire")
    time.sleep(0.5)
    _spawn(server, "wireplumber")
    _spawn(server, "pipewire-pulse")
    _wait_ready(server)
    return server


def pulseaudio_binary() -> str | None:
    return os.environ.get("RT_PULSEAUDIO") or shutil.which("pulseaudio")


def start_pulseaudio() -> SoundServer:
    """Plain PulseAudio, no card (a null sink is its only device), private runtime folder."""
    binary = pulseaudio_binary()
    if binary is None:
        raise ServerUnavailable("pulseaudio is not installed")
    root = tempfile.mkdtemp(prefix="rt-enhance-pa-")
    os.chmod(root, 0o700)
    server = SoundServer("PulseAudio", root, _base_env(root))
    config = os.path.join(root, "default.pa")
    with open(config, "w") as f:
        f.write(
            "load-module module-native-protocol-unix\nload-module module-null-sink sink_name=card_null\nload-module module-always-sink\n"
        )
    _spawn(
        server,
        binary,
        "-n",
        "--daemonize=no",
        "--exit-idle-time=-1",
        "--disallow-exit",
        f"--file={config}",
        "--use-pid-file=no",
        "--system=no",
        "--log-target=stderr",
        *os.environ.get("RT_PULSEAUDIO_ARGS", "").split(),
    )
    _wait_ready(server)
    return server
