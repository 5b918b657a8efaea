"""The backtest loop: every strategy replays the same days on the same paper ledger.

Day D's frame is what `pool_daily_metrics` would store for D: the validated universe with the
forecast made from the days before D only. Each strategy starts with the capital idle. On day
D it holds h_D, which earns D's realised APY from the recording (`apy` of D's frame; a pool
missing on D earns nothing); at the end of D its decision x_D is executed with MODEL.md's gas
and conversion costs, so x_D is held during D+1. This is the chain's own ledger
(`day_payouts.paper_ledger` and `paper_trading.roll_forward`). The decision of the last day
is not executed: it could earn only after the range. Everything runs in memory; nothing is
written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd

from allocator_dagster.day_payouts import DayInputError
from allocator_dagster.model import Holdings
from allocator_dagster.money import CENT, to_cents
from allocator_dagster.paper_trading import realised_yield, roll_forward
from allocator_dagster.parameters import AllocationParameters, DynamicLists
from allocator_dagster.risk import (
    VOLATILITY_DAYS,
    Concentration,
    PoolFacts,
    concentration,
    pool_facts,
)
from allocator_dagster.solvers import Backend

# A day's frame: DefiLlama's yields columns plus the forecast columns, one row per pool.
FrameOf = Callable[[dt.date], pd.DataFrame]


class BacktestError(ValueError):
    """The backtest cannot run as asked; the message names the input at fault."""


class DecisionFailure(RuntimeError):
    """A strategy's decision failed on a day (as the chain's run would fail that day); the
    message names the strategy, the day and why."""


@dataclass(frozen=True)
class Market:
    """The days of a backtest, each day's frame computed once and shared by every strategy."""

    days: tuple[dt.date, ...]
    frames: tuple[pd.DataFrame, ...]

    @classmethod
    def load(cls, frame_of: FrameOf, start: dt.date, end: dt.date) -> Market:
        if end < start:
            raise BacktestError(f"--start {start} is after --end {end}")
        days = tuple(start + dt.timedelta(days=k) for k in range((end - start).days + 1))
        frames = []
        for day in days:
            frame = frame_of(day)
            if frame.empty:
                raise BacktestError(f"{day}: no pools on this day; choose a range the data covers")
            frames.append(frame)
        return cls(days, tuple(frames))

    def realised_apy(self, k: int) -> dict[str, float]:
        frame = self.frames[k]
        return dict(zip(frame["pool"].astype(str), frame["apy"].astype(float), strict=True))


@dataclass(frozen=True)
class DayContext:
    """What a strategy sees when it decides on day `market.days[k]`."""

    market: Market
    k: int
    holdings: Holdings
    parameters: AllocationParameters
    lists: DynamicLists
    backend: Backend

    @property
    def day(self) -> dt.date:
        return self.market.days[self.k]

    @property
    def universe(self) -> pd.DataFrame:
        return self.market.frames[self.k]


@dataclass(frozen=True)
class Execution:
    """What a strategy executes at the end of a day; `amounts` None: nothing (it holds)."""

    amounts: Mapping[str, Decimal] | None
    gas_usd: Mapping[str, float] = field(default_factory=dict)
    conversion_usd: Mapping[str, float] = field(default_factory=dict)
    expected_yield_usd: float = 0.0  # the model's daily yield of what is held afterwards
    decision: str = ""


@dataclass(frozen=True)
class DayRecord:
    """One day of one strategy (the JSON's `days` entry, plus what the report needs)."""

    day: dt.date
    positions: dict[str, Decimal]
    idle_usd: Decimal
    realised_yield_usd: Decimal
    expected_yield_usd: float
    gas_usd: Decimal
    conversion_usd: Decimal
    moved_usd: Decimal
    trades: int
    decision: str
    risk: Concentration

    @property
    def costs_usd(self) -> Decimal:
        return self.gas_usd + self.conversion_usd


@dataclass(frozen=True)
class StrategyRun:
    name: str
    capital_usd: Decimal
    days: tuple[DayRecord, ...]


class Strategy:
    """A way to decide each day; `execute` books the decision on the paper ledger."""

    name = ""

    def decide(self, ctx: DayContext) -> Execution:
        raise NotImplementedError

    def execute(self, ctx: DayContext, execution: Execution) -> Holdings:
        observed = ctx.market.realised_apy(ctx.k)
        if execution.amounts is None:
            return roll_forward(ctx.holdings, None, observed)
        placed = sum(execution.amounts.values(), Decimal("0"))
        left = ctx.holdings.total_usd - placed  # capital no pool had room for stays idle
        after = roll_forward(
            ctx.holdings,
            execution.amounts,
            observed,
            gas_usd=execution.gas_usd,
            conversion_usd=execution.conversion_usd,
        )
        return Holdings(positions=after.positions, idle_usd=after.idle_usd + left)


def _moves(start: Holdings, amounts: Mapping[str, Decimal] | None) -> tuple[Decimal, int]:
    """USD moved and the number of pools traded from `start` to `amounts`."""
    if amounts is None:
        return Decimal("0.00"), 0
    held = start.held()
    moved, trades = Decimal("0.00"), 0
    for pool in sorted(set(held) | set(amounts)):
        delta = abs(amounts.get(pool, Decimal("0")) - held.get(pool, Decimal("0")))
        if delta >= CENT:
            moved += delta
            trades += 1
    return moved, trades


def _trailing_apy(market: Market, k: int) -> pd.DataFrame:
    """(date, pool, apy) of the realised days before day k, at most VOLATILITY_DAYS of them."""
    first = max(0, k - VOLATILITY_DAYS)
    parts = [
        pd.DataFrame(
            {
                "date": market.days[j],
                "pool": market.frames[j]["pool"],
                "apy": market.frames[j]["apy"],
            }
        )
        for j in range(first, k)
    ]
    return (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["date", "pool", "apy"])
    )


def run_strategy(
    strategy: Strategy,
    market: Market,
    capital_usd: Decimal,
    parameters: AllocationParameters,
    lists: DynamicLists,
    backend: Backend,
    facts: Mapping[str, PoolFacts],
) -> StrategyRun:
    """Replay `strategy` over the market's days from `capital_usd` held idle."""
    holdings = Holdings.idle(capital_usd)
    expected = 0.0
    records = []
    last = len(market.days) - 1
    for k, day in enumerate(market.days):
        ctx = DayContext(market, k, holdings, parameters, lists, backend)
        earned = sum(realised_yield(holdings, market.realised_apy(k)).values(), Decimal("0"))
        if k < last:
            try:
                execution = strategy.decide(ctx)
            except DayInputError as exc:
                raise BacktestError(f"{strategy.name}: {exc}") from None
            except RuntimeError as exc:  # e.g. an answer that breaks the model: the chain stops
                raise DecisionFailure(f"{strategy.name} on {day}: {exc}") from exc
        else:
            execution = Execution(None, expected_yield_usd=expected, decision="last day")
        moved, trades = _moves(holdings, execution.amounts)
        gas = sum((to_cents(g) for g in execution.gas_usd.values() if g > 0), Decimal("0"))
        conversion = sum(
            (to_cents(c) for c in execution.conversion_usd.values() if c > 0),
            Decimal("0"),
        )
        held = holdings.held()
        records.append(
            DayRecord(
                day=day,
                positions=held,
                idle_usd=holdings.idle_usd,
                realised_yield_usd=earned,
                expected_yield_usd=expected,
                gas_usd=gas,
                conversion_usd=conversion,
                moved_usd=moved,
                trades=trades,
                decision=execution.decision,
                risk=concentration(held, facts, _trailing_apy(market, k)),
            )
        )
        if k < last:
            holdings = strategy.execute(ctx, execution)
            expected = execution.expected_yield_usd
    return StrategyRun(strategy.name, capital_usd, tuple(records))


def market_facts(market: Market) -> dict[str, PoolFacts]:
    """Each pool's protocol, chain and tokens as last seen in the range."""
    out: dict[str, PoolFacts] = {}
    for frame in market.frames:
        out.update(pool_facts(frame))
    return out


def run_backtest(
    market: Market,
    strategies: Sequence[Strategy],
    capital_usd: Decimal,
    parameters: AllocationParameters,
    lists: DynamicLists,
    backend: Backend = Backend.CONVEX,
) -> list[StrategyRun]:
    """Every strategy over the same market, in the order given."""
    facts = market_facts(market)
    return [
        run_strategy(s, market, capital_usd, parameters, lists, backend, facts) for s in strategies
    ]
