"""The backtest's ledger: realised APYs (never forecasts), missing pools, exact net yield, and
the allocator replaying the chain's own days."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from allocator_dagster import backtest, day_payouts
from allocator_dagster.backtest.days import sample_days
from allocator_dagster.backtest.engine import (
    BacktestError,
    DecisionFailure,
    Execution,
    Market,
    Strategy,
    run_backtest,
)
from allocator_dagster.backtest.metrics import summarise
from allocator_dagster.daily_allocation import AllocationSettings, run_day
from allocator_dagster.money import to_cents
from allocator_dagster.parameters import AllocationParameters
from allocator_dagster.pool_ingestion import ingest_sample_day, sample_universe
from allocator_dagster.storage.lists import seed_lists_if_empty
from allocator_dagster_tests.backtest.helpers import LISTS, PARAMS, START, market_of

CAPITAL = Decimal("100000.00")


def run(days, strategies=("allocator", "greedy", "equal", "hold", "oracle")):
    return backtest.run(
        market_of(days),
        START,
        START + dt.timedelta(days=len(days) - 1),
        capital_usd=CAPITAL,
        parameters=PARAMS,
        lists=LISTS,
        strategies=list(strategies),
    )


def test_a_position_earns_the_days_realised_apy_not_its_forecast():
    # forecast: a 10 %, b 5 %; realised: a 1 % then 2 %, b 50 % then 40 %
    days = [
        {"a": (1.0, 10.0, 1e9), "b": (50.0, 5.0, 1e9)},
        {"a": (2.0, 10.0, 1e9), "b": (40.0, 5.0, 1e9)},
        {"a": (3.0, 10.0, 1e9), "b": (30.0, 5.0, 1e9)},
    ]
    (greedy,) = run(days, ["greedy"]).runs
    first, second = greedy.days[0], greedy.days[1]
    assert first.positions == {} and first.realised_yield_usd == 0  # day 1 starts idle
    assert set(second.positions) == {"a"}  # greedy followed the forecast
    held = second.positions["a"]
    assert second.realised_yield_usd == to_cents(float(held) * 2.0 / 36500)
    # the decision expected the forecast's 10 % on what it placed
    assert second.expected_yield_usd == pytest.approx(float(CAPITAL) * 10.0 / 36500, rel=1e-9)


def test_a_pool_missing_on_a_day_earns_nothing_that_day():
    days = [
        {"a": (10.0, 10.0, 1e9)},
        {"b": (10.0, 1.0, 1e9)},  # a has a hole on day 2
        {"a": (10.0, 10.0, 1e9), "b": (10.0, 1.0, 1e9)},
    ]
    (hold,) = run(days, ["hold"]).runs
    assert hold.days[1].positions and hold.days[1].realised_yield_usd == 0
    assert hold.days[2].realised_yield_usd > 0  # back on day 3, still held (never traded)


@pytest.mark.parametrize("name", ["allocator", "greedy", "equal", "hold", "oracle"])
def test_net_yield_is_the_ledgers_end_value_minus_the_capital(name):
    days = [
        {"a": (5.0 + k, 6.0, 2e6), "b": (9.0 - k, 8.0, 1e9), "c": (3.0, 7.0, 1e9)} for k in range(6)
    ]
    (result,) = run(days, [name]).runs
    last = result.days[-1]
    end_value = sum(last.positions.values(), Decimal("0")) + last.idle_usd + last.realised_yield_usd
    summary = summarise(result)
    assert summary.net_usd == end_value - CAPITAL
    assert summary.net_usd == summary.gross_usd - summary.gas_usd - summary.conversion_usd
    assert summary.gross_usd > 0


def test_the_oracle_sees_tomorrow_and_beats_the_forecast():
    # the forecast always favours a; b realises far more from day 2 on
    days = [{"a": (1.0, 20.0, 1e9), "b": (1.0 if k == 0 else 60.0, 2.0, 1e9)} for k in range(5)]
    runs = {r.name: summarise(r) for r in run(days, ["allocator", "oracle"]).runs}
    assert runs["oracle"].net_usd > runs["allocator"].net_usd


def test_empty_range_and_reversed_range_are_refused():
    with pytest.raises(BacktestError, match="after"):
        Market.load(market_of([{"a": (1.0, 1.0, 1e9)}]), START, START - dt.timedelta(days=1))
    with pytest.raises(BacktestError, match="no pools"):
        Market.load(market_of([{}]), START, START)


def test_unknown_strategy_is_refused_before_any_work():
    with pytest.raises(ValueError, match="unknown strategy 'magic'"):
        run([{"a": (1.0, 1.0, 1e9)}], ["allocator", "magic"])


def test_the_allocator_replays_the_chains_own_days(engine, monkeypatch):
    """Same days, capital and lists: the backtest's allocator decides exactly what run_day
    stores and holds exactly the paper ledger the chain writes. The backtest books no payout
    (it measures decisions, not the profit split), so the chain runs here without one."""
    monkeypatch.setattr(day_payouts.PayoutRule, "payout", lambda self, profit: None)
    seed, pools, first = 7, 400, dt.date(2025, 3, 1)
    days = [first + dt.timedelta(days=k) for k in range(4)]
    source = sample_universe(seed, pools)
    seed_lists_if_empty(engine, source.default_lists(), by="test", reason="test")
    settings = AllocationSettings(
        parameters=AllocationParameters(), initial_capital_usd=Decimal("2000000.00")
    )
    stored = []
    for day in days:
        ingest_sample_day(engine, day, source)
        stored.append(run_day(engine, day, settings))
    frame_of, lists = sample_days(seed, pools)
    (allocator,) = backtest.run(
        frame_of,
        days[0],
        days[-1],
        capital_usd=Decimal("2000000.00"),
        parameters=AllocationParameters(),
        lists=lists,
        strategies=["allocator"],
    ).runs
    for k, outcome in enumerate(stored[:-1]):
        after = allocator.days[k + 1]
        assert outcome.next_holdings is not None
        assert after.positions == outcome.next_holdings.held()
        assert after.idle_usd == outcome.next_holdings.idle_usd
    assert [d.decision for d in allocator.days[:-1]] == [
        str(o.report.decision) for o in stored[:-1]
    ]


@pytest.mark.parametrize("name", ["allocator", "greedy"])
def test_a_held_pool_missing_for_a_day_is_kept_not_sold(name):
    """As in the chain (`vanished_confirmation_days`, 3 by default): one day's hole is no exit."""
    days = [
        {"a": (9.0, 9.0, 1e9), "b": (1.0, 1.0, 1e9)},
        {"b": (1.0, 1.0, 1e9)},  # a is missing for one day
        {"a": (9.0, 9.0, 1e9), "b": (1.0, 1.0, 1e9)},
        {"a": (9.0, 9.0, 1e9), "b": (1.0, 1.0, 1e9)},
    ]
    (result,) = run(days, [name]).runs
    held_on_day_2 = result.days[1].positions["a"]
    assert result.days[2].positions.get("a") == held_on_day_2  # kept where it was, no trade
    assert result.days[1].trades == 0 and result.days[1].gas_usd == 0


def test_a_pool_missing_three_days_in_a_row_is_exited():
    days = [{"a": (9.0, 9.0, 1e9), "b": (1.0, 1.0, 1e9)}] + [{"b": (1.0, 1.0, 1e9)}] * 4
    (result,) = run(days, ["greedy"]).runs
    assert "a" in result.days[3].positions  # missing on days 2 and 3: still held
    assert "a" not in result.days[4].positions  # the third day confirmed it: exited


def test_a_decision_that_fails_names_the_strategy_and_the_day():
    """The chain's run fails on such a day; the backtest stops there and says where."""

    class Broken(Strategy):
        name = "broken"

        def decide(self, ctx):
            if ctx.k == 1:
                raise RuntimeError("the solver's allocation breaks the model: min_position_usd")
            return Execution(None)

    market = Market.load(
        market_of([{"a": (1.0, 1.0, 1e9)}] * 3), START, START + dt.timedelta(days=2)
    )
    with pytest.raises(DecisionFailure, match="broken on 2025-03-02: the solver's allocation"):
        run_backtest(market, [Broken()], CAPITAL, PARAMS, LISTS)
