"""A held pool missing from the day's data: held until its absence is confirmed (`vanished`)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from allocator_dagster.parameters import AllocationParameters
from allocator_dagster.vanished import missing_holdings, unlisted_held

DAY = dt.date(2026, 5, 10)
HELD = {"p": Decimal("911341.00"), "q": Decimal("5.00"), "r": Decimal("0.00")}


def before(k: int) -> dt.date:
    return DAY - dt.timedelta(days=k)


def test_only_held_pools_missing_today_count() -> None:
    assert unlisted_held(HELD, ["q", "x"]) == {"p": HELD["p"]}  # q is listed, r holds nothing
    found = missing_holdings(DAY, unlisted_held(HELD, ["q", "x"]), {}, 3)
    assert [(m.pool, m.day, m.confirmed) for m in found] == [("p", 1, False)]
    assert found[0].reason.startswith("pool p held: missing from today's fetch (day 1 of 3)")


def test_consecutive_missing_days_confirm_the_absence() -> None:
    earlier = {before(1): frozenset({"q"}), before(2): frozenset({"q"})}
    (found,) = missing_holdings(DAY, unlisted_held({"p": HELD["p"]}, ["q"]), earlier, 3)
    assert (found.day, found.of, found.confirmed) == (3, 3, True)
    assert "missing from the pool data 3 days in a row" in found.reason
    (two,) = missing_holdings(
        DAY, unlisted_held({"p": HELD["p"]}, ["q"]), {before(1): frozenset()}, 3
    )
    assert (two.day, two.confirmed) == (2, False)


@pytest.mark.parametrize(
    "earlier",
    [
        {before(1): frozenset({"p"}), before(2): frozenset()},  # listed yesterday
        {before(1): None, before(2): frozenset()},  # yesterday has no full snapshot
        {before(2): frozenset()},  # yesterday not stored at all
    ],
)
def test_a_day_without_evidence_or_with_the_pool_ends_the_streak(earlier) -> None:
    (found,) = missing_holdings(DAY, unlisted_held({"p": HELD["p"]}, []), earlier, 3)
    assert (found.day, found.confirmed) == (1, False)


def test_one_confirmation_day_is_the_old_immediate_exit() -> None:
    (found,) = missing_holdings(DAY, unlisted_held({"p": HELD["p"]}, []), {}, 1)
    assert found.confirmed


def test_the_parameter_is_typed_with_a_default_of_three() -> None:
    assert AllocationParameters().vanished_confirmation_days == 3
    with pytest.raises(ValueError):
        AllocationParameters(vanished_confirmation_days=0)
    with pytest.raises(ValueError):
        missing_holdings(DAY, unlisted_held(HELD, []), {}, 0)
