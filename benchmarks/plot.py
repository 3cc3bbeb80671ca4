"""``--plot PATH.png``: the distribution of per-hop times, with the budget line.

matplotlib is imported here only (it is no dependency of the runtime); without it the benchmark
still runs and says what to install.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from rt_enhance.realtime.errors import RtEnhanceError

logger = logging.getLogger(__name__)


class PlotUnavailable(RtEnhanceError, RuntimeError):
    """matplotlib is missing; one line for the user."""


def plot_distribution(path: str, series: Sequence[tuple[str, np.ndarray, float]], title: str) -> None:
    """Histograms of ``(label, ms [hops], budget_ms)`` series on one log-count axis.

    With one budget for all series the x axis is milliseconds and the budget a vertical line;
    with several it is the share of each series' own budget, the line at 100 %.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable("--plot needs matplotlib: pip install matplotlib") from None
    budgets = {round(b, 6) for _, _, b in series}
    same = len(budgets) == 1
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=110)
    top = max(float(np.max(ms) / (1 if same else b)) for _, ms, b in series if len(ms)) if series else 1.0
    limit = max(top, budgets.pop() if same else 1.0) * 1.05
    bins = np.linspace(0.0, limit, 120).tolist()
    for label, ms, budget in series:
        x = ms if same else ms / budget
        ax.hist(x, bins=bins, histtype="step", linewidth=1.4, label=f"{label} (p99 {np.percentile(ms, 99):.3f} ms)")
    line = series[0][2] if same else 1.0
    ax.axvline(line, color="red", linestyle="--", linewidth=1.5, label=f"budget {series[0][2]:.2f} ms" if same else "budget")
    ax.set_yscale("log")
    ax.set_xlabel("time per hop (ms)" if same else "time per hop / budget")
    ax.set_ylabel("hops")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    logger.info("wrote %s", path)
