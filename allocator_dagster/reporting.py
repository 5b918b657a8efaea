"""Markdown a treasurer reads at a glance: allocation tables, a bar chart, the binding limits.

Plain text, no Dagster import: the assets put it in materialisation metadata.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from allocator_dagster.allocation_report import AllocationReport
from allocator_dagster.pool_labels import pool_label
from allocator_dagster.reconciliation import Reconciliation
from allocator_dagster.terminal import shown

BAR_WIDTH = 24


def _bar(fraction: float) -> str:
    full = max(0, min(BAR_WIDTH, round(fraction * BAR_WIDTH)))
    return "█" * full + "·" * (BAR_WIDTH - full)


def allocation_markdown(report: AllocationReport, limit: int = 25) -> str:
    rows = [
        "| pool | symbol | project | chain | amount USD | weight | delta USD | APY % | yield USD/day |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for line in report.lines[:limit]:
        rows.append(
            f"| `{line.pool[:12]}` | {line.symbol} | {line.project} | {line.chain} | "
            f"{line.amount_usd:,.2f} | {line.weight:.2%} | {line.delta_usd:+,.2f} | {line.apy_used:.2f} | "
            f"{line.daily_yield_usd:,.2f} |"
        )
    if len(report.lines) > limit:
        rows.append(f"| … {len(report.lines) - limit} more | | | | | | | | |")
    return "\n".join(rows)


def allocation_chart_markdown(report: AllocationReport, limit: int = 15) -> str:
    """A text bar chart of the weights (renders in the Dagster UI without images)."""
    lines = ["```"]
    for line in [entry for entry in report.lines if entry.amount_usd > 0][:limit]:
        label = f"{line.symbol[:14]} {line.project[:14]}"
        lines.append(f"{label:<30} {_bar(line.weight)} {line.weight:6.2%}")
    lines.append("```")
    return "\n".join(lines)


def binding_limits_markdown(report: AllocationReport, limit: int = 10) -> str:
    if not report.binding_limits:
        return "No limit binds: the allocation is not constrained by any cap."
    return "\n".join(f"- {b.description}" for b in report.binding_limits[:limit])


def decision_markdown(report: AllocationReport) -> str:
    reasons = "\n".join(f"- {r}" for r in report.reasons)
    return f"**{report.decision}** ({report.status})\n\n{reasons}"


def _largest_tvl(universe: pd.DataFrame, limit: int) -> pd.DataFrame:
    """The `limit` rows of the largest TVL, ties by pool id (NaN last): the head of the whole
    frame sorted so, sorting only the rows at or above the limit-th TVL (a few of 20,000)."""
    tvl = universe["tvlUsd"]
    if len(universe) > 4 * limit > 0:
        largest = tvl.dropna().nlargest(limit)
        if len(largest) == limit:  # (fewer: NaN rows would be part of the head)
            universe = universe[tvl >= largest.iloc[-1]]
    return universe.sort_values(["tvlUsd", "pool"], ascending=[False, True]).head(limit)


def top_pools_markdown(universe: pd.DataFrame, limit: int = 10) -> str:
    if universe.empty:
        return "(no pools)"
    top = _largest_tvl(universe, limit)
    rows = ["| pool | TVL USD | APY % |", "|---|---:|---:|"]
    for r in top.to_dict("records"):
        # the pool's label, as in every other table (two pools of one symbol, project and chain
        # differ by poolMeta and id)
        label = pool_label(r["pool"], r["symbol"], r["project"], r["chain"], r.get("poolMeta"))
        cell = label.replace("|", "\\|")  # a "|" of outside text would split the row
        rows.append(f"| {cell} | {float(r['tvlUsd']):,.0f} | {float(r['apy']):.2f} |")
    return "\n".join(rows)


def allocation_table_rows(
    report: AllocationReport, labels: dict[str, str], limit: int = 50
) -> list[dict[str, str | float]]:
    """One row per pool with money or a move, largest first, each named by its readable label."""
    lines = [entry for entry in report.lines if entry.amount_usd > 0 or entry.delta_usd != 0]
    return [
        {
            "pool": labels.get(entry.pool, entry.pool),
            "amount_usd": f"{entry.amount_usd:,.2f}",
            "weight_pct": round(entry.weight * 100, 4),
            "delta_usd": f"{entry.delta_usd:+,.2f}",
            "apy_pct": round(entry.apy_used, 4),
            "yield_usd_per_day": round(entry.daily_yield_usd, 2),
        }
        for entry in lines[:limit]
    ]


def drift_markdown(day: dt.date, reconciliation: Reconciliation) -> str:
    """The pools whose observed holding differs from what the day before's plan expected."""
    rows = [
        f"Drift on {day} (observed - expected by the plan of {day - dt.timedelta(days=1)}): "
        f"{reconciliation.total_drift_usd:+,.2f} USD in total "
        f"(expected {reconciliation.expected.total_usd:,.2f}, observed "
        f"{reconciliation.observed.total_usd:,.2f})",
        "",
        "| pool | expected USD | observed USD | drift USD |",
        "|---|---:|---:|---:|",
    ]
    for p in reconciliation.drifted:
        pool = shown(p.pool).replace("|", "\\|")
        rows.append(
            f"| `{pool}` | {p.expected_usd:,.2f} | {p.observed_usd:,.2f} | {p.drift_usd:+,.2f} |"
        )
    if not reconciliation.drifted:
        rows.append("| (none: the plan was executed as expected) | | | |")
    return "\n".join(rows)
