"""Exact distribution: cents that always add up, deterministic ties, and which split applies when."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator_dagster.money import whole_cents
from allocator_dagster.profit_split.distribution import (
    distribute,
    distribution_moment,
    largest_remainder,
)
from allocator_dagster.profit_split.split import CATEGORIES, SEED_SPLIT, Split

D = Decimal


def test_the_seed_split_of_a_round_amount() -> None:
    assert distribute(D("1000.00"), SEED_SPLIT) == {
        "reinvestment": D("800.00"),
        "dao": D("150.00"),
        "lucky": D("30.00"),
        "creator": D("20.00"),
    }


def test_leftover_cents_go_to_the_largest_remainders() -> None:
    # 1.00 at 33.34/33.33/33.33/0: exact shares 0.3334, 0.3333, 0.3333, 0 -> floors 33, 33, 33, 0
    # cents and one leftover cent, which goes to the largest remainder (reinvestment's 0.34).
    split = Split(D("33.34"), D("33.33"), D("33.33"), D(0))
    assert distribute(D("1.00"), split) == {
        "reinvestment": D("0.34"),
        "dao": D("0.33"),
        "lucky": D("0.33"),
        "creator": D("0.00"),
    }
    # 0.01 at 80/15/3/2: only one cent, to the largest remainder (0.8 of a cent).
    assert distribute(D("0.01"), SEED_SPLIT)["reinvestment"] == D("0.01")
    assert sum(distribute(D("0.01"), SEED_SPLIT).values()) == D("0.01")


def test_ties_go_to_the_category_listed_first() -> None:
    quarter = Split(D(25), D(25), D(25), D(25))
    assert distribute(D("0.02"), quarter) == {
        "reinvestment": D("0.01"),
        "dao": D("0.01"),
        "lucky": D("0.00"),
        "creator": D("0.00"),
    }
    assert distribute(D("0.03"), quarter)["lucky"] == D("0.01")
    assert distribute(D("0.03"), quarter)["creator"] == D("0.00")


def test_zero_profit_gives_zero_amounts() -> None:
    assert distribute(D("0.00"), SEED_SPLIT) == dict.fromkeys(CATEGORIES, D("0.00"))


@pytest.mark.parametrize(
    ("profit", "split", "message"),
    [
        (D("-1.00"), SEED_SPLIT, "negative"),
        (D("10.005"), SEED_SPLIT, "whole number of cents"),
        (D("NaN"), SEED_SPLIT, "finite"),
        (D("10.00"), Split(D(80), D(15), D(3), D(1)), "does not sum to 100"),
        (D("10.00"), Split(D("79.995"), D("15.005"), D(3), D(2)), "more than two decimals"),
        (D("10.00"), Split(D(-1), D(16), D(3), D(82)), "not a non-negative"),
    ],
)
def test_refuses_what_cannot_be_split_exactly(profit: Decimal, split: Split, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        distribute(profit, split)


def test_whole_cents_refuses_floats_and_fractions() -> None:
    assert whole_cents(D("12.30")) == 1230
    with pytest.raises(ValueError):
        whole_cents(12.3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        whole_cents(D("0.001"))


@st.composite
def splits(draw: st.DrawFn) -> Split:
    """Any split of 10,000 basis points into four non-negative parts."""
    cuts = sorted(draw(st.lists(st.integers(0, 10_000), min_size=3, max_size=3)))
    parts = [cuts[0], cuts[1] - cuts[0], cuts[2] - cuts[1], 10_000 - cuts[2]]
    return Split(*(D(p) / 100 for p in parts))


@settings(max_examples=400, deadline=None)
@given(profit_cents=st.integers(0, 10**15), split=splits())
def test_amounts_always_add_up_to_the_cent(profit_cents: int, split: Split) -> None:
    profit = D(profit_cents) / 100
    amounts = distribute(profit, split)
    assert list(amounts) == list(CATEGORIES)
    assert sum(amounts.values(), D(0)) == profit
    for category, amount in amounts.items():
        exact = profit * getattr(split, category) / 100
        assert amount >= 0
        assert amount == amount.quantize(D("0.01"))
        assert abs(amount - exact) < D("0.01")  # never more than one cent from the exact share
    assert distribute(profit, split) == amounts  # deterministic


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(0, 10**9),
    weights=st.lists(st.integers(0, 1000), min_size=1, max_size=6).filter(lambda w: sum(w) > 0),
)
def test_largest_remainder_is_exact_and_fair(total: int, weights: list[int]) -> None:
    keyed = {f"k{i}": w for i, w in enumerate(weights)}
    shares = largest_remainder(total, keyed)
    assert sum(shares.values()) == total
    for key, weight in keyed.items():
        exact = D(total) * weight / sum(weights)
        assert abs(D(shares[key]) - exact) < 1


def test_largest_remainder_edge_cases() -> None:
    assert largest_remainder(0, {"a": 0, "b": 0}) == {"a": 0, "b": 0}
    with pytest.raises(ValueError):
        largest_remainder(1, {"a": 0})
    with pytest.raises(ValueError):
        largest_remainder(-1, {"a": 1})


def test_distribution_moment() -> None:
    now = datetime(2025, 6, 10, 9, 30, tzinfo=UTC)
    # Yesterday's profit is paid out today: the split in force now applies.
    assert distribution_moment(date(2025, 6, 9), now) == now
    # An older day was paid out at the latest by the end of the next day.
    assert distribution_moment(date(2025, 6, 1), now) == datetime(2025, 6, 3, tzinfo=UTC)
