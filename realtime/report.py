"""The end-of-run report: what the user needs to trust a live tool, as text and as JSON."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import numpy as np

from rt_enhance.realtime.streamer import Streamer

logger = logging.getLogger(__name__)


def compute_stats(streamer: Streamer) -> dict[str, float]:
    """Per-hop compute time (model + crossfade) against the hop budget, in ms."""
    g = streamer.geometry
    per_hop = streamer.timer.per_hop_ms()
    budget = g.ms(g.hop)
    hops = int(np.sum(streamer.timer.hops)) if per_hop.size else 0
    if per_hop.size == 0:
        return {"hops": 0, "budget_ms": budget}
    weights = np.asarray(streamer.timer.hops, float)
    total_ms = float(np.sum(per_hop * weights))
    return {
        "hops": hops,
        "budget_ms": budget,
        "p50_ms": float(np.percentile(per_hop, 50)),
        "p99_ms": float(np.percentile(per_hop, 99)),
        "max_ms": float(per_hop.max()),
        "model_ms_total": 1000.0 * streamer.timer.model_seconds,
        "compute_ms_total": total_ms,
        "rtf": total_ms / max(hops * budget, 1e-9),
    }


def render(record: dict[str, Any]) -> str:
    """The human-readable report: one 'key: value' line per figure."""
    lines = []
    for key, value in record.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "none"
        lines.append(f"  {key.replace('_', ' ')}: {value}")
    return "\n".join(lines)


def write_json(path: str, record: dict[str, Any]) -> None:
    """Write the report atomically."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
