"""The allocator and the baselines it is measured against, on one universe, one set of caps.

- `allocator`: the chain's own decision (`day_decision.decide_day`) and ledger
  (`day_payouts.paper_ledger`), exactly as the Dagster chain runs a day.
- `greedy`: every day, fill the eligible pools with the highest forecast APY up to their caps
  (pool limits, group caps, `min_position_usd`), whatever it costs.
- `equal`: equal amounts over the eligible pools (water-filled under the caps; when the
  shares would fall below `min_position_usd`, over the largest pools by TVL), rebalanced
  every `EQUAL_REBALANCE_DAYS` days; in between, a held pool that is no longer eligible (or
  missing from the day's data) is exited as MODEL.md's forced exit and the cash waits.
- `hold`: the allocator's day-1 allocation, never traded again (yield stays idle).
- `oracle`: the allocator's decision fed the APY and TVL that the next day realises (x_D is
  held during D+1): an upper bound no forecast can reach.

Every baseline's costs are MODEL.md's (`evaluate` on the day's `Problem`: gas per moved pool,
conversion on the amount moved into a non-base pool, gas of forced exits). Like the chain, every
strategy that trades keeps a held pool that is missing from the day's data where it is until
its absence is confirmed (`vanished_confirmation_days`, `day_decision.held_aside_for`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd

from allocator_dagster.allocation_report import AllocationReport
from allocator_dagster.backtest.engine import DayContext, Execution, Strategy
from allocator_dagster.day_decision import decide_day, held_aside_for
from allocator_dagster.day_payouts import paper_ledger
from allocator_dagster.model import Holdings, Problem, build_problem, evaluate
from allocator_dagster.model.eligibility import effective_apy_columns
from allocator_dagster.money import from_whole_cents, int_cents
from allocator_dagster.rebalance import HeldAside, set_aside
from allocator_dagster.storage.pool_listings import LAST_SEEN_WINDOW_DAYS
from allocator_dagster.vanished import unlisted_held

EQUAL_REBALANCE_DAYS = 30
STRATEGY_NAMES = ("allocator", "greedy", "equal", "hold", "oracle")


def held_aside(ctx: DayContext) -> dict[str, HeldAside]:
    """`day_decision.held_aside_for` with the earlier listings taken from the market's days
    (a day before the range has no stored snapshot: no evidence, as in a new deployment)."""
    unlisted = unlisted_held(ctx.holdings.held(), ctx.universe["pool"].tolist())
    if not unlisted:
        return {}
    missing = list(unlisted)
    frames, day = ctx.market.frames, ctx.day
    earlier: dict[dt.date, frozenset[str] | None] = {}
    for back in range(1, ctx.parameters.vanished_confirmation_days):
        j = ctx.k - back
        there = set(frames[j]["pool"].astype(str)) if j >= 0 else None
        earlier[day - dt.timedelta(days=back)] = (
            None if there is None else frozenset(p for p in missing if p in there)
        )
    seen: dict[str, tuple[str, str, str]] = {}
    for j in range(ctx.k - 1, max(-1, ctx.k - 1 - LAST_SEEN_WINDOW_DAYS), -1):
        rows = frames[j][frames[j]["pool"].isin([p for p in missing if p not in seen])]
        for pool, chain, project, symbol in zip(
            rows["pool"], rows["chain"], rows["project"], rows["symbol"], strict=True
        ):
            seen[str(pool)] = (str(chain), str(project), str(symbol))
    return held_aside_for(day, unlisted, ctx.parameters, earlier, seen)


def _report_execution(report: AllocationReport, ctx: DayContext) -> Execution:
    if not report.is_new_allocation:
        return _holding(ctx, str(report.decision))
    return Execution(
        amounts={line.pool: line.amount_usd for line in report.lines if line.amount_usd > 0},
        gas_usd={line.pool: line.gas_usd for line in report.lines},
        conversion_usd={line.pool: line.conversion_usd for line in report.lines},
        expected_yield_usd=report.daily_yield_usd,
        decision=str(report.decision),
    )


def _holding(ctx: DayContext, decision: str) -> Execution:
    """Nothing is executed; expected yield: the model's for the eligible holdings."""
    problem, _ = build_problem(ctx.universe, ctx.holdings, ctx.parameters, ctx.lists)
    return Execution(
        None, expected_yield_usd=evaluate(problem, problem.held).daily_yield_usd, decision=decision
    )


class Allocator(Strategy):
    """The product's daily decision and paper ledger, unchanged."""

    name = "allocator"

    def __init__(self) -> None:
        self.reports: dict[int, AllocationReport] = {}

    def report(self, ctx: DayContext) -> AllocationReport:
        if ctx.k not in self.reports or self.reports[ctx.k].total_usd != ctx.holdings.total_usd:
            self.reports[ctx.k] = decide_day(
                ctx.day,
                ctx.universe,
                ctx.holdings,
                ctx.parameters,
                ctx.lists,
                ctx.backend,
                held_aside=held_aside(ctx),
            )
        return self.reports[ctx.k]

    def decide(self, ctx: DayContext) -> Execution:
        return _report_execution(self.report(ctx), ctx)

    def execute(self, ctx: DayContext, execution: Execution) -> Holdings:
        return paper_ledger(ctx.universe, ctx.holdings, self.report(ctx))


def _placed_problem(ctx: DayContext) -> tuple[Problem, dict[str, Decimal]]:
    """The day's problem over the capital to place, and the set-aside positions (`held_aside`:
    kept where they are, no trade, no forecast yield)."""
    placed, kept = set_aside(ctx.holdings, held_aside(ctx))
    problem, _ = build_problem(ctx.universe, placed, ctx.parameters, ctx.lists)
    return problem, kept


def _model_execution(
    problem: Problem, cents: np.ndarray, decision: str, kept: dict[str, Decimal]
) -> Execution:
    """Amounts (integer cents over the problem's pools, plus the set-aside positions) with
    MODEL.md's costs and yield."""
    x = cents.astype(float) / 100.0
    scored = evaluate(problem, x)
    gas = {str(p): float(g) for p, g in zip(problem.pool_ids, scored.gas_per_pool, strict=True)}
    gas.update({e.pool: e.gas_usd for e in problem.forced_exits})
    return Execution(
        amounts={
            **{
                str(p): from_whole_cents(int(c))
                for p, c in zip(problem.pool_ids, cents, strict=True)
                if c > 0
            },
            **kept,
        },
        gas_usd=gas,
        conversion_usd={
            str(p): float(c)
            for p, c in zip(problem.pool_ids, scored.conversion_per_pool, strict=True)
        },
        expected_yield_usd=scored.daily_yield_usd,
        decision=decision,
    )


def _limits(problem: Problem) -> tuple[np.ndarray, list[int], int, int]:
    """(pool limits, group caps, capital, min_position) in integer cents."""
    upper = np.array([int_cents(float(u)) if np.isfinite(u) else 10**18 for u in problem.upper])
    caps = [int_cents(float(g)) for g in problem.group_caps_usd]
    return upper, caps, int_cents(problem.total_usd), int_cents(problem.min_position_usd)


def greedy_cents(problem: Problem) -> np.ndarray:
    """Highest forecast APY first (ties by pool id), each pool filled to its limit."""
    upper, room, left, floor = _limits(problem)
    out = np.zeros(problem.n, dtype=np.int64)
    for i in sorted(range(problem.n), key=lambda i: (-problem.apy[i], problem.pool_ids[i])):
        g = int(problem.group[i]) - 1
        amount = min(int(upper[i]), left, room[g])
        if amount <= 0 or amount < max(floor, 1):
            continue
        out[i] = amount
        left -= amount
        room[g] -= amount
        if left == 0:
            break
    return out


def equal_cents(problem: Problem) -> np.ndarray:
    """Equal amounts over the eligible pools that can take `min_position_usd`, water-filled
    under each pool's limit and each group's cap; capital with no room left stays idle."""
    upper, caps, total, floor = _limits(problem)
    usable = upper >= max(floor, 1)
    most = total // floor if floor > 0 else problem.n
    if int(usable.sum()) > most:  # equal shares below min_position_usd: the largest pools
        by_tvl = sorted(
            np.flatnonzero(usable), key=lambda i: (-problem.tvl[i], problem.pool_ids[i])
        )
        usable[:] = False
        usable[by_tvl[:most]] = True
    out = np.zeros(problem.n, dtype=np.int64)
    group = problem.group.astype(int) - 1
    active = usable.copy()
    left = total
    room = list(caps)
    # water-fill: a pool or a group that reaches its limit is frozen there, the rest share on
    while left > 0 and active.any():
        share = left // int(active.sum())
        if share == 0:
            break
        progressed = False
        for i in np.flatnonzero(active):
            take = min(share, int(upper[i] - out[i]), room[group[i]])
            if take > 0:
                out[i] += take
                room[group[i]] -= take
                left -= take
                progressed = True
            if out[i] >= upper[i] or room[group[i]] == 0:
                active[i] = False
        if not progressed:
            break
    for i in np.flatnonzero(usable):  # the last cents of an uneven split
        if left == 0:
            break
        take = min(left, int(upper[i] - out[i]), room[group[i]])
        if take > 0 and out[i] > 0:
            out[i] += take
            room[group[i]] -= take
            left -= take
    return out


class Greedy(Strategy):
    name = "greedy"

    def decide(self, ctx: DayContext) -> Execution:
        problem, kept = _placed_problem(ctx)
        return _model_execution(problem, greedy_cents(problem), "greedy", kept)


class Equal(Strategy):
    name = "equal"

    def decide(self, ctx: DayContext) -> Execution:
        problem, kept = _placed_problem(ctx)
        if ctx.k % EQUAL_REBALANCE_DAYS == 0:
            return _model_execution(problem, equal_cents(problem), "rebalance", kept)
        if not problem.forced_exits:
            return Execution(
                None,
                expected_yield_usd=evaluate(problem, problem.held).daily_yield_usd,
                decision="hold",
            )
        held = np.array([int_cents(float(h)) for h in problem.held], dtype=np.int64)
        return _model_execution(problem, held, "forced exit", kept)


class Hold(Strategy):
    """Day 1: the allocator's allocation; afterwards nothing is ever traded."""

    name = "hold"

    def __init__(self, allocator: Allocator) -> None:
        self.allocator = allocator

    def decide(self, ctx: DayContext) -> Execution:
        if ctx.k == 0:
            return self.allocator.decide(ctx)
        return _holding(ctx, "hold")

    def execute(self, ctx: DayContext, execution: Execution) -> Holdings:
        if ctx.k == 0:
            return self.allocator.execute(ctx, execution)
        return super().execute(ctx, execution)


def foresight_frame(today: pd.DataFrame, tomorrow: pd.DataFrame) -> pd.DataFrame:
    """`today` with its forecast columns set to what `tomorrow` realises: APY 0 for a pool
    missing tomorrow (it would earn nothing), TVL today's when tomorrow has none."""
    apy, base, reward = effective_apy_columns(tomorrow)
    pools = tomorrow["pool"].astype(str).tolist()
    frame = today.copy()
    ids = frame["pool"].astype(str)

    def mapped(values: np.ndarray) -> pd.Series:
        lookup = dict(zip(pools, np.where(np.isfinite(values), values, 0.0).tolist(), strict=True))
        return ids.map(lookup).fillna(0.0).astype(float)

    frame["apy_forecast"] = mapped(apy)
    frame["apy_base_forecast"] = mapped(base)
    frame["apy_reward_forecast"] = mapped(reward)
    tvl = tomorrow["tvlUsd"].to_numpy(dtype=float)
    lookup = dict(zip(pools, tvl.tolist(), strict=True))
    frame["tvl_forecast"] = ids.map(lookup).fillna(frame["tvlUsd"]).astype(float)
    return frame


class Oracle(Strategy):
    """The allocator's own decision with perfect foresight of the day its allocation earns."""

    name = "oracle"

    def __init__(self) -> None:
        self.reports: dict[int, AllocationReport] = {}

    def _frame(self, ctx: DayContext) -> pd.DataFrame:
        return foresight_frame(ctx.universe, ctx.market.frames[ctx.k + 1])

    def decide(self, ctx: DayContext) -> Execution:
        frame = self._frame(ctx)
        report = decide_day(
            ctx.day,
            frame,
            ctx.holdings,
            ctx.parameters,
            ctx.lists,
            ctx.backend,
            held_aside=held_aside(ctx),
        )
        self.reports[ctx.k] = report
        return _report_execution(report, ctx)

    def execute(self, ctx: DayContext, execution: Execution) -> Holdings:
        return paper_ledger(ctx.universe, ctx.holdings, self.reports[ctx.k])


def make_strategies(names: list[str]) -> list[Strategy]:
    """The named strategies in the order given (hold shares the allocator's day 1)."""
    unknown = [n for n in names if n not in STRATEGY_NAMES]
    if unknown:
        raise ValueError(
            f"unknown strategy {unknown[0]!r}; choose from {', '.join(STRATEGY_NAMES)}"
        )
    if not names:
        raise ValueError(f"no strategy given; choose from {', '.join(STRATEGY_NAMES)}")
    allocator = Allocator()
    made: dict[str, Strategy] = {
        "allocator": allocator,
        "greedy": Greedy(),
        "equal": Equal(),
        "hold": Hold(allocator),
        "oracle": Oracle(),
    }
    return [made[n] for n in dict.fromkeys(names)]
