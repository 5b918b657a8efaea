"""Charts as small PNG images for the Dagster UI (markdown with an embedded data URI).

Rendered with matplotlib's Agg canvas, no pyplot global state and no timestamps in the file,
so the same day gives the same bytes. No Dagster import.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping

from allocator_dagster.rebalance import AllocationReport

CHART_POOLS = 12
DPI = 72


def weights_and_deltas_png(
    report: AllocationReport, labels: Mapping[str, str], limit: int = CHART_POOLS
) -> bytes | None:
    """Today's weight and USD moved per pool (largest positions and moves first); None: nothing to draw."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    lines = [entry for entry in report.lines if entry.amount_usd > 0 or entry.delta_usd != 0]
    lines.sort(key=lambda entry: (-max(entry.amount_usd, abs(entry.delta_usd)), entry.pool))
    lines = lines[:limit]
    if not lines:
        return None
    lines.reverse()  # barh draws bottom-up: the largest at the top
    names = [labels.get(entry.pool, entry.pool[:8]) for entry in lines]
    weights = [entry.weight * 100 for entry in lines]
    deltas = [float(entry.delta_usd) for entry in lines]
    figure = Figure(figsize=(9.5, 0.32 * len(lines) + 1.1), dpi=DPI)
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [1, 1]})
    left.barh(names, weights, color="#3b6ea8")
    left.set_xlabel("weight %")
    left.tick_params(axis="y", labelsize=8)
    right.barh(names, deltas, color=["#2e8b57" if d >= 0 else "#c0392b" for d in deltas])
    right.axvline(0, color="#555555", linewidth=0.6)
    right.set_xlabel("delta USD (bought + / sold -)")
    right.xaxis.set_major_locator(MaxNLocator(5))
    right.xaxis.set_major_formatter(lambda value, _: f"{value / 1000:,.0f}k")
    figure.suptitle(f"{report.decision}: {float(report.total_usd):,.0f} USD", fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def png_markdown(png: bytes | None, alt: str) -> str:
    """Markdown that shows the PNG inline in the Dagster UI (a data URI, no file to serve)."""
    if png is None:
        return f"_{alt}: nothing to draw_"
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
