"""Holdings: the cents held per pool and idle."""

from __future__ import annotations

from decimal import Decimal

from allocator_dagster.model import Holdings


def test_holdings_total_and_records():
    h = Holdings(
        positions={"b": Decimal("2.50"), "a": Decimal("1.25"), "z": Decimal("0")},
        idle_usd=Decimal("0.25"),
    )
    assert h.total_usd == Decimal("4.00")
    assert list(h.held()) == ["a", "b"]
    assert h.as_records()[-1] == {"pool": "idle_usd", "amount_usd": "0.25"}
