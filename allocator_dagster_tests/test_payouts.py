"""Payouts: the paid shares of a day's profit, exact cents, from the idle cash first."""

from __future__ import annotations

from decimal import Decimal

import pytest

from allocator_dagster.model import Holdings
from allocator_dagster.payouts import PAID_CATEGORIES, Payout, pay_out, payout_of
from allocator_dagster.profit_split.split import SEED_SPLIT, Split

D = Decimal


def test_the_paid_shares_are_the_split_of_the_profit_less_reinvestment() -> None:
    payout = payout_of(D("1000.01"), SEED_SPLIT, "seed")
    assert sum(payout.amounts.values()) == D("1000.01")
    assert payout.paid == {"dao": D("150.00"), "lucky": D("30.00"), "creator": D("20.00")}
    assert payout.paid_usd == D("200.00") and tuple(payout.paid) == PAID_CATEGORIES
    assert payout.amounts["reinvestment"] == D("800.01")  # the extra cent: largest remainder


def test_a_loss_pays_nothing() -> None:
    payout = payout_of(D("-4605.57"), SEED_SPLIT, "seed")
    assert payout.paid_usd == D("0.00") and payout.profit_usd == D("-4605.57")


def test_a_recorded_payout_round_trips_and_a_tampered_one_is_refused() -> None:
    split = Split(D("70"), D("20"), D("7.5"), D("2.5"))
    payout = payout_of(D("333.33"), split, "abc")
    assert Payout.from_dict(payout.as_dict()) == payout
    tampered = payout.as_dict()
    tampered["amounts"] = {**tampered["amounts"], "dao": "70.00"}  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="is not the split of its profit"):
        Payout.from_dict(tampered)


def test_paid_from_the_idle_cash_first_then_the_largest_positions() -> None:
    holdings = Holdings(positions={"a": D("50.00"), "b": D("80.00")}, idle_usd=D("30.00"))
    assert pay_out(holdings, D("20.00")) == Holdings(
        positions={"a": D("50.00"), "b": D("80.00")}, idle_usd=D("10.00")
    )
    assert pay_out(holdings, D("120.00")) == Holdings(
        positions={"a": D("40.00")}, idle_usd=D("0.00")
    )
    with pytest.raises(ValueError, match="cannot pay 160.01 USD out of 160.00"):
        pay_out(holdings, D("160.01"))
