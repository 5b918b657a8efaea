"""The stored days an operator plots: allocation by pool and by protocol, expected and realised yield.

Plain values read from storage (`storage/history.py`) and drawn by `charts.py`; no Dagster import.
A day without a new allocation (held, infeasible) keeps the allocation in force, so the areas
do not drop to zero on the days nothing moved.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from allocator_dagster.model import Holdings
from allocator_dagster.paper_trading import realised_yield

HISTORY_DAYS = 90
OTHER = "other"


@dataclass(frozen=True)
class Position:
    """One pool of a day's allocation, named for a person."""

    label: str
    protocol: str
    amount_usd: float


@dataclass(frozen=True)
class HistoryDay:
    """One stored day. `positions` None: the day stored no new allocation (the previous stays);
    `expected_yield_usd` is the day's allocation's forecast yield per day, `realised_yield_usd`
    what the day's start holdings earned at the day's observed APY (None: no ledger)."""

    day: dt.date
    decision: str
    positions: tuple[Position, ...] | None
    expected_yield_usd: float | None
    realised_yield_usd: float | None


def realised_usd(holdings: Holdings, observed_apy: Mapping[str, float]) -> Decimal:
    """What `holdings` earned over one day at the observed APYs (paper trading's rule, in cents)."""
    return sum(realised_yield(holdings, observed_apy).values(), Decimal("0.00"))


def in_force(days: Sequence[HistoryDay]) -> list[tuple[Position, ...]]:
    """The allocation in force on each day: a day without a new one keeps the one before."""
    current: tuple[Position, ...] = ()
    out = []
    for day in days:
        if day.positions is not None:
            current = day.positions
        out.append(current)
    return out


def stacked_series(
    days: Sequence[HistoryDay], key: Callable[[Position], str], top: int
) -> dict[str, list[float]]:
    """USD per series per day: the `top` largest series by total amount over the window, in
    that order, and the rest summed as `other` (last). Ties break by name: same days, same chart."""
    allocations = in_force(days)
    totals: dict[str, float] = {}
    for positions in allocations:
        for p in positions:
            totals[key(p)] = totals.get(key(p), 0.0) + p.amount_usd
    ranked = sorted(totals, key=lambda name: (-totals[name], name))
    kept = ranked[:top]
    series: dict[str, list[float]] = {name: [0.0] * len(days) for name in kept}
    if len(ranked) > top:
        series[OTHER] = [0.0] * len(days)
    for k, positions in enumerate(allocations):
        for p in positions:
            name = key(p)
            series[name if name in kept else OTHER][k] += p.amount_usd
    return series


def by_pool(days: Sequence[HistoryDay], top: int) -> dict[str, list[float]]:
    return stacked_series(days, lambda p: p.label, top)


def by_protocol(days: Sequence[HistoryDay], top: int) -> dict[str, list[float]]:
    return stacked_series(days, lambda p: p.protocol, top)


def expected_vs_realised(
    days: Sequence[HistoryDay],
) -> tuple[list[float | None], list[float | None]]:
    """Per day D: what the allocation in force going into D was expected to earn per day (decided
    on the day before) and what D's start holdings earned. The same money on both lines."""
    expected: list[float | None] = []
    previous: float | None = None
    for day in days:
        expected.append(previous)
        if day.expected_yield_usd is not None:
            previous = day.expected_yield_usd
    return expected, [day.realised_yield_usd for day in days]
