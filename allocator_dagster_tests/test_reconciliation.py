"""Reconciliation: drift per pool and in total, and which drift is beyond the tolerance."""

from __future__ import annotations

from decimal import Decimal

import pytest

from allocator_dagster.model import Holdings
from allocator_dagster.reconciliation import DriftTolerance, beyond, reconcile

D = Decimal
EXPECTED = Holdings(positions={"a": D("600000.00"), "b": D("400000.00")}, idle_usd=D("0.00"))


def test_pools_beyond_the_smallest_limit_set_are_named() -> None:
    observed = Holdings(positions={"a": D("599000.00"), "b": D("400050.00")}, idle_usd=D("20.00"))
    rec = reconcile(EXPECTED, observed)
    assert rec.total_drift_usd == D("-930.00")
    assert [p.pool for p in beyond(rec, DriftTolerance(usd=D("100.00")))] == ["a"]
    assert [p.pool for p in beyond(rec, DriftTolerance(usd=D("10.00")))] == ["a", "b", "idle_usd"]
    # 0.1 % of 1,000,000 = 1,000 USD: nothing beyond; with 100 USD too, the smaller applies
    assert beyond(rec, DriftTolerance(usd=None, pct_of_capital=D("0.1"))) == ()
    both = DriftTolerance(usd=D("100.00"), pct_of_capital=D("0.1"))
    assert both.allowed_usd(EXPECTED.total_usd) == D("100.00")
    assert [p.pool for p in beyond(rec, both)] == ["a"]


def test_a_total_drift_spread_thin_is_still_reported() -> None:
    observed = Holdings(positions={"a": D("599950.00"), "b": D("399950.00")}, idle_usd=D("0.00"))
    over = beyond(reconcile(EXPECTED, observed), DriftTolerance(usd=D("60.00")))
    assert [(p.pool, p.drift_usd) for p in over] == [("total", D("-100.00"))]


def test_no_drift_and_bad_settings() -> None:
    assert beyond(reconcile(EXPECTED, EXPECTED), DriftTolerance(usd=None)) == ()
    assert DriftTolerance.parse("", "") == DriftTolerance(usd=None, pct_of_capital=None)
    assert DriftTolerance.parse(" 5 ", "0.5") == DriftTolerance(D("5"), D("0.5"))
    with pytest.raises(ValueError, match="pct_of_capital 'x' is not a number"):
        DriftTolerance.parse("1", "x")
    with pytest.raises(ValueError, match="non-negative"):
        DriftTolerance(usd=D("-1"))
