"""Benchmark records: timing statistics against a hop budget, the machine, and the JSON file.

Every subcommand produces a list of flat records (one per configuration). Timing records carry
the same keys whatever the subcommand, so one reader serves all files::

    provider, threads, window, hop, budget_ms, p50_ms, p90_ms, p99_ms, p999_ms, max_ms,
    mean_ms, rtf, headroom_ms, over_budget_pct

A configuration that could not run (no GPU, a package missing) is still a record, with
``status`` saying why and ``None`` for its figures.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import sys
import time
from typing import Any

import numpy as np

from rt_enhance.realtime.fileio import atomic_write_text

logger = logging.getLogger(__name__)

TIMING_KEYS = ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms", "rtf", "headroom_ms", "over_budget_pct")
CONFIG_KEYS = ("provider", "threads", "window", "hop", "budget_ms")


def timing_stats(ms: np.ndarray, budget_ms: float) -> dict[str, float | None]:
    """Percentiles of per-hop times ``ms`` (float ``[hops]``, milliseconds) against ``budget_ms``.

    ``rtf`` is mean time over budget (compute per second of audio); ``headroom_ms`` is
    budget - p99; ``over_budget_pct`` the share of hops that took longer than the budget.
    """
    ms = np.asarray(ms, np.float64)
    if ms.size == 0:
        return dict.fromkeys(TIMING_KEYS)
    p50, p90, p99, p999 = np.percentile(ms, [50, 90, 99, 99.9])
    return {
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "p999_ms": float(p999),
        "max_ms": float(ms.max()),
        "mean_ms": float(ms.mean()),
        "rtf": float(ms.mean() / budget_ms),
        "headroom_ms": float(budget_ms - p99),
        "over_budget_pct": float(100.0 * np.mean(ms > budget_ms)),
    }


def skipped(section: str, reason: str, **config: Any) -> dict[str, Any]:
    """A record for a configuration that did not run, with every timing key set to None."""
    record = {"section": section, **dict.fromkeys(CONFIG_KEYS), **config, **dict.fromkeys(TIMING_KEYS)}
    record["status"] = f"skipped: {reason}"
    return record


def cpu_model() -> str:
    """The CPU's model name as ``lscpu`` shows it (from /proc/cpuinfo), else platform's guess."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """Where the numbers were measured: CPU, cores, and the versions that set the speed."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (None, None, None)
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_avg_1m": load[0],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "onnxruntime": _version("onnxruntime") or _version("onnxruntime-gpu"),
        "numpy": _version("numpy"),
        "numba": _version("numba"),
        "torch": _version("torch"),
    }


def write_json(path: str, subcommand: str, records: list[dict[str, Any]], argv: list[str]) -> None:
    """Write ``{"tool", "subcommand", "command", "machine", "time", "records"}`` atomically."""
    doc = {
        "tool": "rt-bench",
        "subcommand": subcommand,
        "command": "rt-bench " + " ".join(argv),
        "machine": machine_info(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "records": records,
    }
    atomic_write_text(path, json.dumps(doc, indent=2, default=_plain))
    logger.info("wrote %s (%d records)", path, len(records))


def _plain(value: Any) -> Any:
    """JSON for numpy scalars and arrays."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def command_line(argv: list[str] | None) -> list[str]:
    """The arguments as given (for the record of how a figure was made)."""
    return list(sys.argv[1:] if argv is None else argv)
