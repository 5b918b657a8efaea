"""One day's decision without storage, checked against the model (`day_decision`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest

from allocator_dagster import day_decision, rebalance
from allocator_dagster.day_decision import allocation_violations, decide_day, held_aside_for
from allocator_dagster.model import ViolationKind
from allocator_dagster.money import CENT
from allocator_dagster.rebalance import HeldAside, decide, decide_with_problem
from allocator_dagster.vanished import unlisted_held
from allocator_dagster_tests.support.instances import default_lists_for, holdings_of, idle
from allocator_dagster_tests.test_rebalance import BACKENDS, amounts, base_params, universe

DAY = dt.date(2026, 5, 10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_cent_over_a_limit_is_a_breach_of_the_stored_allocation(backend):
    """Stored amounts are cents and limits sit on the cent grid: the check has no slack to hide
    a cent in (it used to allow 2 cents)."""
    u = universe()
    holdings, p, lists = idle(1_000_000), base_params(), default_lists_for(u)
    report = decide(u, holdings, p, lists, backend)
    stored = amounts(report)
    assert stored["a"] == Decimal("250000.00")  # pool a sits at its 25 % cap
    assert allocation_violations(u, holdings, p, lists, stored, report.total_usd) == []
    donor = next(pool for pool, amount in stored.items() if pool != "a" and amount > 0)
    moved = {**stored, "a": stored["a"] + CENT, donor: stored[donor] - CENT}
    found = allocation_violations(u, holdings, p, lists, moved, report.total_usd)
    assert [v.message for v in found] == [
        "position_max_pct_total_assets: a: 250,000.01 > limit 250,000.00"
    ]
    assert [v.kind for v in found] == [ViolationKind.LIMITS]


def test_an_allocation_that_breaks_the_model_raises(monkeypatch) -> None:
    """`decide_day` checks the decision before it is accepted: a cent moved over pool a's 25 %
    cap (as a faulty solver or rounding would) raises, and the last good allocation stays."""
    u, holdings, p, lists = (
        universe(),
        idle(1_000_000),
        base_params(),
        default_lists_for(universe()),
    )
    assert decide_day(DAY, u, holdings, p, lists, "convex").decision == "full"

    def one_cent_over(*args, **kwargs):
        decided = decide_with_problem(*args, **kwargs)
        report = decided.report
        donor = next(line.pool for line in report.lines if line.pool != "a" and line.amount_usd)
        moved = {"a": CENT, donor: -CENT}
        lines = [replace(x, amount_usd=x.amount_usd + moved.get(x.pool, 0)) for x in report.lines]
        return replace(decided, report=replace(report, lines=lines))

    monkeypatch.setattr(day_decision, "decide_with_problem", one_cent_over)
    with pytest.raises(
        RuntimeError,
        match=r"2026-05-10: the solver's allocation breaks the model: "
        r"position_max_pct_total_assets: a: 250,000.01 > limit 250,000.00",
    ):
        decide_day(DAY, u, holdings, p, lists, "convex")


def test_held_aside_are_the_missing_holdings_not_yet_confirmed() -> None:
    """Pool gone is missing today but was listed yesterday (day 1 of 3): set aside with its last
    known chain, project and symbol; pool lost has been missing 3 days in a row: confirmed, left
    to the model's forced exit; pool a is listed."""
    holdings = holdings_of({"a": "100.00", "gone": "200.00", "lost": "300.00"}, idle_usd="0")
    earlier = {
        DAY - dt.timedelta(days=1): frozenset({"gone"}),
        DAY - dt.timedelta(days=2): frozenset({"gone"}),
    }
    seen = {"gone": ("Base", "aave-v3", "USDC")}
    unlisted = unlisted_held(holdings.held(), universe()["pool"].tolist())
    assert unlisted == {"gone": Decimal("200.00"), "lost": Decimal("300.00")}
    aside = held_aside_for(DAY, unlisted, base_params(), earlier, seen)
    assert list(aside) == ["gone"]
    assert (aside["gone"].chain, aside["gone"].project, aside["gone"].symbol) == (
        "Base",
        "aave-v3",
        "USDC",
    )
    assert aside["gone"].reason.startswith(
        "pool gone held: missing from today's fetch (day 1 of 3)"
    )
    listed = unlisted_held(holdings_of({"a": "1.00"}).held(), universe()["pool"].tolist())
    assert held_aside_for(DAY, listed, base_params(), {}, {}) == {}


def test_the_placed_holdings_are_built_once_a_day(monkeypatch) -> None:
    """`decide_day` checks the answer against the capital the decision placed
    (`DayDecision.placed`): the holdings without the set-aside pool are built once, not again
    for the check, and the check still passes on them."""
    built = []
    split = rebalance.set_aside

    def counted(*args):
        built.append(split(*args))
        return built[-1]

    monkeypatch.setattr(rebalance, "set_aside", counted)
    holdings = holdings_of({"a": 300_000, "gone": 911_341.25}, idle_usd=788_658.75)
    why = {"gone": HeldAside("pool gone held: missing from today's fetch (day 1 of 3)")}
    lists = default_lists_for(universe())
    report = decide_day(DAY, universe(), holdings, base_params(), lists, "convex", held_aside=why)
    assert report.is_new_allocation and report.held_missing == {"gone": why["gone"].reason}
    assert built == [
        (holdings_of({"a": 300_000}, idle_usd=788_658.75), {"gone": Decimal("911341.25")})
    ]
