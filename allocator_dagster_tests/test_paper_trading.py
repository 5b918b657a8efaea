"""Paper trading: the next day's ledger in exact cents (yield, conversion, gas, shortfalls).

Every expected amount is worked out by hand from the rules in `paper_trading`'s docstring:
yield at the observed APY lands as idle cash, the conversion penalty comes out of the pool it
was paid for, gas out of the idle cash and a shortfall from the largest position first.
"""

from __future__ import annotations

import math
from decimal import Decimal

from allocator_dagster.model import Holdings
from allocator_dagster.paper_trading import realised_yield, roll_forward

D = Decimal


def test_realised_yield_is_one_day_of_the_observed_apy_in_cents() -> None:
    start = Holdings(
        positions={"a": D("36500.00"), "b": D("1000.00"), "gone": D("500.00"), "nan": D("80.00")},
        idle_usd=D("999.99"),
    )
    earned = realised_yield(start, {"a": 10.0, "b": 7.3, "nan": math.nan})
    # 36500 x 10 % / 365 = 10.00; 1000 x 7.3 % / 365 = 0.20; a vanished or NaN pool earns nothing
    assert earned == {"a": D("10.00"), "b": D("0.20"), "gone": D("0.00"), "nan": D("0.00")}
    assert all(v == v.quantize(D("0.01")) for v in earned.values())


def test_realised_yield_rounds_half_cents_to_even() -> None:
    start = Holdings(positions={"a": D("36500.00"), "b": D("36500.00")})
    # 0.025 -> 0.02 and 0.035 -> 0.04 (banker's rounding; half-up would give 0.03 and 0.04)
    assert realised_yield(start, {"a": 0.025, "b": 0.035}) == {"a": D("0.02"), "b": D("0.04")}


def test_zero_positions_earn_nothing_and_are_not_listed() -> None:
    start = Holdings(positions={"a": D("0"), "b": D("100.00")})
    assert list(realised_yield(start, {"a": 50.0, "b": 36.5})) == ["b"]


def test_a_held_day_keeps_the_positions_and_adds_the_yield_to_idle() -> None:
    start = Holdings(positions={"a": D("36500.00"), "b": D("0")}, idle_usd=D("5.55"))
    after = roll_forward(start, None, {"a": 3.65}, gas_usd={"Ethereum": 9.0})
    # 36500 x 3.65 % / 365 = 3.65; no trade, so no gas and no conversion
    assert after.positions == {"a": D("36500.00")}
    assert after.idle_usd == D("9.20")
    assert after.total_usd == start.total_usd + D("3.65")


def test_an_executed_day_pays_conversion_from_the_pool_and_gas_from_the_yield() -> None:
    start = Holdings(positions={"a": D("1000.00")}, idle_usd=D("0.00"))
    allocation = {"a": D("400.00"), "b": D("600.00"), "c": D("0.00")}
    after = roll_forward(
        start,
        allocation,
        {"a": 36.5},  # earns 1.00 during the day
        gas_usd={"Ethereum": 0.5, "Arbitrum": 0.25, "Base": 0.0},
        conversion_usd={"b": 1.234, "a": 0.0, "not-allocated": 7.0},
    )
    assert after.positions == {"a": D("400.00"), "b": D("598.77")}
    assert after.idle_usd == D("0.25")  # 1.00 earned - 0.75 gas
    # the ledger adds up to the cent: start + yield - gas - conversion
    assert after.total_usd == D("1000.00") + D("1.00") - D("0.75") - D("1.23")


def test_a_gas_shortfall_is_taken_from_the_largest_position_first() -> None:
    start = Holdings(positions={"a": D("365.00")})
    after = roll_forward(
        start,
        {"a": D("300.00"), "b": D("700.00"), "c": D("700.00")},
        {"a": 10.0},  # earns 0.10
        gas_usd={"Ethereum": 5.0},
    )
    # 0.10 - 5.00 = -4.90: b and c tie at 700.00, the name breaks the tie
    assert after.positions == {"a": D("300.00"), "b": D("695.10"), "c": D("700.00")}
    assert after.idle_usd == D("0.00")


def test_a_shortfall_larger_than_a_position_empties_it_and_moves_on() -> None:
    start = Holdings(positions={}, idle_usd=D("5.00"))
    after = roll_forward(start, {"a": D("3.00"), "b": D("2.00")}, {}, gas_usd={"x": 4.0})
    assert after.positions == {"b": D("1.00")}
    assert after.idle_usd == D("0.00")
    assert after.total_usd == D("5.00") - D("4.00")


def test_a_conversion_above_the_position_leaves_nothing_negative() -> None:
    after = roll_forward(
        Holdings(positions={}, idle_usd=D("10.00")),
        {"a": D("1.00"), "b": D("9.00")},
        {},
        conversion_usd={"a": 2.5},
    )
    assert after.positions == {"b": D("9.00")}
    assert after.idle_usd == D("0.00")
