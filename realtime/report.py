"""The end-of-run report: what the user needs to trust a live tool, as text and as JSON."""

from __future__ import annotations

import json
import logging
from typing import Any

from rt_enhance.realtime.fileio import atomic_write_text
from rt_enhance.realtime.streamer import Streamer

logger = logging.getLogger(__name__)


def compute_stats(streamer: Streamer) -> dict[str, float]:
    """Per-hop compute time (model + crossfade) against the hop budget, in ms."""
    g = streamer.geometry
    timer = streamer.timer
    budget = g.ms(g.hop)
    if timer.batches == 0:
        return {"hops": 0, "budget_ms": budget}
    return {
        "hops": timer.hops,
        "budget_ms": budget,
        "p50_ms": timer.percentile_ms(50),
        "p99_ms": timer.percentile_ms(99),
        "max_ms": timer.max_ms,
        "model_ms_total": 1000.0 * timer.model_seconds,
        "compute_ms_total": timer.total_ms,
        "rtf": timer.total_ms / max(timer.hops * budget, 1e-9),
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
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True))
