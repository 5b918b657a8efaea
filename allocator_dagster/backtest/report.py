"""The backtest report: the summary table, risk, and four charts, as Markdown with PNG files.

Charts are drawn with matplotlib's Agg canvas (no pyplot state, no timestamps in the files), so
the same backtest gives the same bytes. The Dagster asset puts the same PNGs inline in its
metadata (`charts.png_markdown`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from allocator_dagster.backtest.engine import StrategyRun
from allocator_dagster.backtest.metrics import markdown_table, summary_rows
from allocator_dagster.risk import concentration_markdown
from allocator_dagster.terminal import shown

DPI = 80
TOP_PROTOCOLS = 6
CHART_FILES = {
    "cumulative_net_yield": "Cumulative net yield per strategy",
    "expected_vs_realised": "Expected vs realised daily yield",
    "turnover": "USD moved per day",
    "protocol_concentration": "Concentration by protocol",
}


@dataclass(frozen=True)
class Report:
    markdown: str
    charts: dict[str, bytes | None]  # file stem -> PNG (None: nothing to draw)
    risk_csv: str = ""  # one row per strategy and day (`risk_rows`)


RISK_COLUMNS = (
    "strategy", "date", "invested_usd", "positions", "effective_positions", "largest_weight",
    "apy_volatility_pct", "top_protocol", "top_protocol_share", "top_chain", "top_chain_share",
    "top_token", "top_token_share",
)  # fmt: skip


def risk_csv(runs: Sequence[StrategyRun]) -> str:
    """Concentration and risk of every strategy on every day, as CSV (a treasurer's sheet)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(RISK_COLUMNS)
    for run in runs:
        for d in run.days:
            r = d.risk

            def top(shares: dict[str, float]) -> list[str]:
                if not shares:
                    return ["", ""]
                name, share = next(iter(shares.items()))
                return [shown(name), f"{share:.6f}"]

            writer.writerow(
                [
                    run.name,
                    d.day.isoformat(),
                    f"{r.invested_usd:.2f}",
                    r.positions,
                    f"{r.effective_positions:.4f}",
                    f"{r.largest_weight:.6f}",
                    "" if r.apy_volatility_pct is None else f"{r.apy_volatility_pct:.6f}",
                    *top(r.by_protocol),
                    *top(r.by_chain),
                    *top(r.by_token),
                ]
            )
    return buffer.getvalue()


def _figure(height: float = 3.6):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.0, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def cumulative_net_png(runs: Sequence[StrategyRun]) -> bytes | None:
    if not runs or not runs[0].days:
        return None
    figure = _figure()
    axes = figure.subplots()
    for run in runs:
        total, points = Decimal("0"), []
        for d in run.days:
            total += d.realised_yield_usd - d.costs_usd
            points.append(float(total))
        axes.plot([d.day for d in run.days], points, label=run.name, linewidth=1.3)
    axes.set_ylabel("cumulative net yield, USD")
    axes.axhline(0, color="#777777", linewidth=0.5)
    axes.legend(fontsize=8)
    figure.autofmt_xdate()
    return _png(figure)


def expected_vs_realised_png(run: StrategyRun | None) -> bytes | None:
    if run is None or len(run.days) < 2:
        return None
    days = run.days[1:]
    figure = _figure()
    axes = figure.subplots()
    axes.plot([d.day for d in days], [d.expected_yield_usd for d in days], label="expected")
    axes.plot([d.day for d in days], [float(d.realised_yield_usd) for d in days], label="realised")
    axes.set_ylabel(f"{run.name}: yield per day, USD")
    axes.legend(fontsize=8)
    figure.autofmt_xdate()
    return _png(figure)


def turnover_png(runs: Sequence[StrategyRun]) -> bytes | None:
    if not runs or len(runs[0].days) < 2:
        return None
    figure = _figure()
    axes = figure.subplots()
    for run in runs:
        total, points = Decimal("0"), []
        for d in run.days[1:]:
            total += d.moved_usd
            points.append(float(total))
        axes.plot([d.day for d in run.days[1:]], points, label=run.name, linewidth=1.3)
    axes.set_ylabel("cumulative USD moved after day 1")
    axes.legend(fontsize=8)
    figure.autofmt_xdate()
    return _png(figure)


def protocol_png(run: StrategyRun | None) -> bytes | None:
    if run is None or not any(d.risk.positions for d in run.days):
        return None
    totals: dict[str, float] = {}
    for d in run.days:
        for name, share in d.risk.by_protocol.items():
            totals[name] = totals.get(name, 0.0) + share
    top = sorted(totals, key=lambda n: (-totals[n], n))[:TOP_PROTOCOLS]
    series = [[d.risk.by_protocol.get(n, 0.0) * 100 for d in run.days] for n in top]
    other = [
        max(0.0, 100 * sum(d.risk.by_protocol.values()) - sum(s[k] for s in series))
        if d.risk.positions
        else 0.0
        for k, d in enumerate(run.days)
    ]
    figure = _figure()
    axes = figure.subplots()
    axes.stackplot(
        [d.day for d in run.days],
        *series,
        other,
        labels=[shown(n)[:30] for n in top] + ["other"],
    )
    axes.set_ylabel(f"{run.name}: share of invested, %")
    axes.set_ylim(0, 100)
    axes.legend(fontsize=7, loc="lower left")
    figure.autofmt_xdate()
    return _png(figure)


def build_report(
    title: str,
    start: str,
    end: str,
    capital_usd: Decimal,
    runs: Sequence[StrategyRun],
    notes: Sequence[str] = (),
) -> Report:
    """The report's Markdown (charts referenced as `<stem>.png`) and the PNGs."""
    focus = next((r for r in runs if r.name == "allocator"), runs[0] if runs else None)
    charts = {
        "cumulative_net_yield": cumulative_net_png(runs),
        "expected_vs_realised": expected_vs_realised_png(focus),
        "turnover": turnover_png(runs),
        "protocol_concentration": protocol_png(focus),
    }
    lines = [
        f"# {shown(title)}",
        "",
        f"{start} .. {end}, capital {capital_usd:,.2f} USD. Net = realised yield - gas - "
        "conversion; turnover and trades count the moves after day 1; the daily error compares "
        "the yield each decision expected with what its positions realised the next day.",
        "",
        *[f"- {shown(n)}" for n in notes],
        "",
        markdown_table(summary_rows(runs)),
        "",
    ]
    if focus is not None:
        last = next((d for d in reversed(focus.days) if d.risk.positions), None)
        if last is not None:
            lines += [
                f"## Risk of {focus.name} on {last.day}",
                "",
                concentration_markdown(last.risk),
                "",
            ]
    for stem, caption in CHART_FILES.items():
        if charts[stem] is not None:
            lines += [f"## {caption}", "", f"![{caption}]({stem}.png)", ""]
    lines += [
        "Concentration and risk of every strategy on every day (exposure by protocol, chain and "
        "token, effective number of positions, APY volatility of the holdings): `risk.csv`.",
        "",
    ]
    return Report("\n".join(lines), charts, risk_csv(runs))


def write_report(report: Report, folder: str | Path) -> list[Path]:
    """`report.md`, `risk.csv` and the chart PNGs in `folder` (created); returns the files."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    written = [target / "report.md", target / "risk.csv"]
    written[0].write_text(report.markdown, encoding="utf-8")
    written[1].write_text(report.risk_csv, encoding="utf-8")
    for stem, png in report.charts.items():
        if png is not None:
            path = target / f"{stem}.png"
            path.write_bytes(png)
            written.append(path)
    return written
