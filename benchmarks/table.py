"""Printed tables: records as Markdown, so a run's output pastes straight into RESULTS.md."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Column:
    """One column: the record key, its header, and a format for numbers (``None`` prints ``-``)."""

    key: str
    header: str
    fmt: str = "{}"

    def cell(self, record: dict[str, Any]) -> str:
        value = record.get(self.key)
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, (int, float)):
            return self.fmt.format(value)
        return str(value)


def render(records: Sequence[dict[str, Any]], columns: Sequence[Column], title: str | None = None) -> str:
    """A Markdown table of ``records``; a record with a ``status`` other than ok prints it in the last column."""
    status = any(r.get("status", "ok") != "ok" for r in records)
    headers = [c.header for c in columns] + (["status"] if status else [])
    rows = [[c.cell(r) for c in columns] + ([r.get("status", "ok")] if status else []) for r in records]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |" for row in rows]
    return "\n".join(lines)


TIMING_COLUMNS = (
    Column("budget_ms", "budget ms", "{:.2f}"),
    Column("p50_ms", "p50", "{:.3f}"),
    Column("p90_ms", "p90", "{:.3f}"),
    Column("p99_ms", "p99", "{:.3f}"),
    Column("p999_ms", "p99.9", "{:.3f}"),
    Column("max_ms", "max", "{:.3f}"),
    Column("rtf", "RTF", "{:.3f}"),
    Column("headroom_ms", "headroom ms", "{:.2f}"),
    Column("over_budget_pct", "over budget %", "{:.2f}"),
)
