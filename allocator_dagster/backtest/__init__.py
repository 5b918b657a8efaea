"""Backtest: the product's own daily decision replayed over past days against baselines.

`engine` (days, the paper ledger, the loop), `strategies` (the allocator and the baselines),
`days` (a recording, the sample, the stored days), `metrics` (net yield, costs, turnover,
forecast error, the JSON) and `report` (Markdown and charts). No Dagster import: the command
`allocator backtest` and the `backtest_report` asset both call `run`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from allocator_dagster.backtest.engine import (
    BacktestError,
    FrameOf,
    Market,
    StrategyRun,
    run_backtest,
)
from allocator_dagster.backtest.strategies import STRATEGY_NAMES, make_strategies
from allocator_dagster.parameters import AllocationParameters, DynamicLists
from allocator_dagster.solvers import Backend


@dataclass(frozen=True)
class Backtest:
    start: dt.date
    end: dt.date
    capital_usd: Decimal
    lists: DynamicLists
    runs: list[StrategyRun]
    market: Market


def run(
    frame_of: FrameOf,
    start: dt.date,
    end: dt.date,
    *,
    capital_usd: Decimal,
    parameters: AllocationParameters,
    lists: DynamicLists | None,
    strategies: list[str],
    backend: Backend = Backend.CONVEX,
) -> Backtest:
    """Load the days, pick the lists (None: approve everything the days hold), run each
    strategy. Raises BacktestError (or ValueError for an unknown strategy) before any work."""
    chosen = make_strategies(strategies)
    if capital_usd <= 0:
        raise BacktestError(f"capital must be positive, got {capital_usd}")
    market = Market.load(frame_of, start, end)
    if lists is None:
        from allocator_dagster.backtest.days import approve_everything

        lists = approve_everything(market.frames)
    runs = run_backtest(market, chosen, capital_usd, parameters, lists, backend)
    return Backtest(start, end, capital_usd, lists, runs, market)


__all__ = ["STRATEGY_NAMES", "Backtest", "BacktestError", "run"]
