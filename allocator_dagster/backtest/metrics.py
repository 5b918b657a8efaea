"""What a backtest measured: net and gross yield, costs, turnover, forecast error, margins.

Net yield is realised yield minus gas and conversion, in exact cents, and equals the ledger's
end value minus the capital. The annual rate is simple: the net over the days the capital can
earn (day 1 starts idle) times 365. Turnover and trades count the moves after day 1 (the first
placement is the same kind of cost for every strategy that invests). The expected daily yield
of a day is what the decision that made its positions expected, with the forecast; its error is
measured on the days after day 1.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from allocator_dagster.backtest.engine import StrategyRun

DAYS_PER_YEAR = 365


@dataclass(frozen=True)
class Summary:
    name: str
    net_usd: Decimal
    gross_usd: Decimal
    gas_usd: Decimal
    conversion_usd: Decimal
    net_apy_pct: float
    turnover_usd: Decimal
    trades: int
    expected_usd: float  # sum of the expected daily yields after day 1
    mean_abs_error_usd: float  # mean |realised - expected| per day after day 1
    effective_positions: float  # mean over the days with money invested
    decisions: dict[str, int]  # what each day decided (the last day decides nothing)

    @property
    def costs_usd(self) -> Decimal:
        return self.gas_usd + self.conversion_usd

    @property
    def realised_over_expected(self) -> float | None:
        """Total realised yield after day 1 over total expected (1.0: unbiased)."""
        return float(self.gross_usd) / self.expected_usd if self.expected_usd > 0 else None


def summarise(run: StrategyRun) -> Summary:
    days = run.days
    gross = sum((d.realised_yield_usd for d in days), Decimal("0"))
    gas = sum((d.gas_usd for d in days), Decimal("0"))
    conversion = sum((d.conversion_usd for d in days), Decimal("0"))
    net = gross - gas - conversion
    earning_days = len(days) - 1
    rate = (
        float(net / run.capital_usd) * DAYS_PER_YEAR / earning_days * 100
        if earning_days > 0 and run.capital_usd > 0
        else 0.0
    )
    later = days[1:]
    errors = [abs(float(d.realised_yield_usd) - d.expected_yield_usd) for d in later]
    invested = [d.risk.effective_positions for d in days if d.risk.positions]
    return Summary(
        name=run.name,
        net_usd=net,
        gross_usd=gross,
        gas_usd=gas,
        conversion_usd=conversion,
        net_apy_pct=rate,
        turnover_usd=sum((d.moved_usd for d in later), Decimal("0")),
        trades=sum(d.trades for d in later),
        expected_usd=sum(d.expected_yield_usd for d in later),
        mean_abs_error_usd=sum(errors) / len(errors) if errors else 0.0,
        effective_positions=sum(invested) / len(invested) if invested else 0.0,
        decisions=dict(sorted(Counter(d.decision for d in days[:-1]).items())),
    )


def _usd(amount: Decimal) -> float:
    return float(amount)


def as_json(
    start: str, end: str, capital_usd: Decimal, runs: Sequence[StrategyRun]
) -> dict[str, object]:
    """The object `allocator backtest --format json` prints (amounts in USD as numbers)."""
    strategies: dict[str, object] = {}
    for run in runs:
        s = summarise(run)
        strategies[run.name] = {
            "net_usd": _usd(s.net_usd),
            "gross_usd": _usd(s.gross_usd),
            "gas_usd": _usd(s.gas_usd),
            "conversion_usd": _usd(s.conversion_usd),
            "net_apy_pct": round(s.net_apy_pct, 6),
            "turnover_usd": _usd(s.turnover_usd),
            "trades": s.trades,
            "days": [
                {
                    "date": d.day.isoformat(),
                    "positions": {p: _usd(a) for p, a in sorted(d.positions.items())},
                    "idle_usd": _usd(d.idle_usd),
                    "realised_yield_usd": _usd(d.realised_yield_usd),
                    "expected_yield_usd": round(d.expected_yield_usd, 6),
                    "costs_usd": _usd(d.costs_usd),
                }
                for d in run.days
            ],
        }
    return {
        "start": start,
        "end": end,
        "capital_usd": _usd(capital_usd),
        "strategies": strategies,
    }


def _margin(mine: Summary, other: Summary | None) -> str:
    if other is None:
        return "-"
    return (
        f"{mine.net_usd - other.net_usd:+,.0f} USD ({mine.net_apy_pct - other.net_apy_pct:+.2f} pt)"
    )


def summary_rows(runs: Sequence[StrategyRun]) -> list[dict[str, str]]:
    """One row per strategy with the measured figures, formatted for people."""
    summaries = [summarise(r) for r in runs]
    by_name = {s.name: s for s in summaries}
    rows = []
    for s in summaries:
        ratio = s.realised_over_expected
        mean_expected = s.expected_usd / max(1, len(runs[0].days) - 1)
        rows.append(
            {
                "strategy": s.name,
                "net USD": f"{s.net_usd:,.2f}",
                "net APY %": f"{s.net_apy_pct:.2f}",
                "gross USD": f"{s.gross_usd:,.2f}",
                "gas USD": f"{s.gas_usd:,.2f}",
                "conversion USD": f"{s.conversion_usd:,.2f}",
                "turnover USD": f"{s.turnover_usd:,.0f}",
                "trades": f"{s.trades:,d}",
                "eff. positions": f"{s.effective_positions:.1f}",
                "realised / expected": "-" if ratio is None else f"{ratio:.3f}",
                "daily error (MAE)": f"{s.mean_abs_error_usd:,.0f} USD"
                + (
                    f" ({s.mean_abs_error_usd / mean_expected:.0%})"
                    if mean_expected > 0 and math.isfinite(mean_expected)
                    else ""
                ),
                "decisions": ", ".join(f"{k} {v}" for k, v in s.decisions.items()),
                "vs greedy": "-" if s.name == "greedy" else _margin(s, by_name.get("greedy")),
                "vs hold": "-" if s.name == "hold" else _margin(s, by_name.get("hold")),
            }
        )
    return rows


def markdown_table(rows: Sequence[dict[str, str]]) -> str:
    if not rows:
        return "(no strategy)"
    names = list(rows[0])
    out = [
        "| " + " | ".join(names) + " |",
        "|" + "|".join("---" if n == "strategy" else "---:" for n in names) + "|",
    ]
    out += ["| " + " | ".join(r[n] for n in names) + " |" for r in rows]
    return "\n".join(out)


def text_table(rows: Sequence[dict[str, str]]) -> str:
    """The rows as aligned columns for a terminal."""
    if not rows:
        return "(no strategy)"
    names = list(rows[0])
    widths = {n: max(len(n), *(len(r[n]) for r in rows)) for n in names}
    line = "  ".join(n.ljust(widths[n]) if n == "strategy" else n.rjust(widths[n]) for n in names)
    out = [line, "-" * len(line)]
    for r in rows:
        out.append(
            "  ".join(
                r[n].ljust(widths[n]) if n == "strategy" else r[n].rjust(widths[n]) for n in names
            )
        )
    return "\n".join(out)
