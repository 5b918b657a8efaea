"""The history an operator plots: series in force, the largest kept, expected aligned with realised."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from allocator_dagster.allocation_history import (
    OTHER,
    HistoryDay,
    Position,
    by_pool,
    by_protocol,
    expected_vs_realised,
    in_force,
    realised_usd,
)
from allocator_dagster.model import Holdings

D0 = dt.date(2026, 5, 1)


def day(k: int, positions, expected=None, realised=None, decision="full") -> HistoryDay:
    return HistoryDay(D0 + dt.timedelta(days=k), decision, positions, expected, realised)


A = Position("USDC · aave-v3 · Ethereum · aaaaaaaa", "aave-v3", 600.0)
B = Position("DAI · spark · Ethereum · bbbbbbbb", "spark", 300.0)
C = Position("USDT · aave-v3 · Base · cccccccc", "aave-v3", 100.0)


def test_a_day_without_a_new_allocation_keeps_the_one_in_force() -> None:
    days = [day(0, (A, B)), day(1, None, decision="hold"), day(2, (C,))]
    assert in_force(days) == [(A, B), (A, B), (C,)]
    assert by_pool(days, top=5) == {A.label: [600.0, 600.0, 0.0], B.label: [300.0, 300.0, 0.0],
                                     C.label: [0.0, 0.0, 100.0]}  # fmt: skip


def test_the_largest_series_are_kept_and_the_rest_is_other() -> None:
    days = [day(0, (A, B, C)), day(1, (A, B, C))]
    series = by_pool(days, top=1)
    assert list(series) == [A.label, OTHER]
    assert series[OTHER] == [400.0, 400.0]
    assert by_protocol(days, top=5) == {"aave-v3": [700.0, 700.0], "spark": [300.0, 300.0]}
    # the series add up to the allocation every day, whatever is cut
    assert [sum(v[k] for v in series.values()) for k in range(2)] == [1000.0, 1000.0]


def test_expected_is_the_day_before_s_decision_next_to_the_day_s_realised_yield() -> None:
    days = [day(0, (A,), 10.0, 0.0), day(1, None, None, 9.0, "hold"), day(2, (A,), 12.0, 9.5)]
    expected, realised = expected_vs_realised(days)
    assert expected == [None, 10.0, 10.0]  # a held day keeps the allocation and its expectation
    assert realised == [0.0, 9.0, 9.5]


def test_realised_yield_is_paper_trading_s_rule_in_cents() -> None:
    holdings = Holdings({"a": Decimal("3650000.00"), "b": Decimal("100.00")}, Decimal("5.00"))
    # 3,650,000 at 10 %/year earns 1,000.00 a day; b vanished from the data and earns nothing
    assert realised_usd(holdings, {"a": 10.0}) == Decimal("1000.00")
    assert realised_usd(holdings, {"a": float("nan"), "b": 36.5}) == Decimal("0.10")
