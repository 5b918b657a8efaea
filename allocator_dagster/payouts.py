"""Payouts: the shares of a day's profit that leave the treasury (DAO, lucky lottery, creator).

The allocation's paper ledger realises a day's profit (yield at the observed APYs less gas and
conversion); the profit split in force divides it to the cent (`distribute`), the reinvestment
share stays invested and the rest is paid out of the idle cash the profit landed in (the largest
positions only if the idle cash cannot cover it). A loss pays nothing. The payout is recorded
with the day's allocation, so a reproduced day pays exactly what it paid before, and the
profit-split graph distributes what was recorded: one amount, decided once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from allocator_dagster.model import Holdings
from allocator_dagster.profit_split.distribution import distribute
from allocator_dagster.profit_split.split import CATEGORIES, Split

ZERO = Decimal("0.00")
REINVESTED = "reinvestment"
PAID_CATEGORIES = tuple(c for c in CATEGORIES if c != REINVESTED)


@dataclass(frozen=True)
class Payout:
    """A day's realised profit split by the split in force; `paid_usd` leaves the treasury."""

    profit_usd: Decimal
    split_id: str
    split: Split
    amounts: Mapping[str, Decimal]  # every category, adding up to max(profit, 0)

    @property
    def paid(self) -> dict[str, Decimal]:
        """What each recipient outside the treasury receives (category order)."""
        return {c: self.amounts[c] for c in PAID_CATEGORIES}

    @property
    def paid_usd(self) -> Decimal:
        return sum(self.paid.values(), ZERO)

    def as_dict(self) -> dict[str, object]:
        """Plain data (amounts as strings) stored with the day's allocation."""
        return {
            "profit_usd": str(self.profit_usd),
            "split_id": self.split_id,
            "split": self.split.to_json(),
            "amounts": {c: str(a) for c, a in self.amounts.items()},
            "paid_usd": str(self.paid_usd),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Payout:
        """A recorded payout, recomputed from its profit and split and proven equal to it."""
        split = Split.from_mapping(data["split"])  # type: ignore[arg-type]
        payout = payout_of(Decimal(str(data["profit_usd"])), split, str(data["split_id"]))
        recorded = {c: Decimal(str(a)) for c, a in dict(data["amounts"]).items()}  # type: ignore[call-overload]
        if recorded != dict(payout.amounts):
            raise ValueError(f"the recorded payout {recorded} is not the split of its profit")
        return payout


def payout_of(profit_usd: Decimal, split: Split, split_id: str | uuid.UUID) -> Payout:
    """Split the day's profit (exact cents); a loss distributes nothing."""
    amounts = distribute(max(profit_usd, ZERO), split)
    return Payout(profit_usd=profit_usd, split_id=str(split_id), split=split, amounts=amounts)


def pay_out(holdings: Holdings, amount_usd: Decimal) -> Holdings:
    """`holdings` after paying `amount_usd`: from the idle cash first, then the largest positions."""
    if amount_usd < 0:
        raise ValueError(f"cannot pay a negative amount ({amount_usd})")
    if amount_usd > holdings.total_usd:
        raise ValueError(f"cannot pay {amount_usd} USD out of {holdings.total_usd} USD")
    from_idle = min(holdings.idle_usd, amount_usd)
    short = amount_usd - from_idle
    positions = dict(holdings.held())
    for pool in sorted(positions, key=lambda p: (-positions[p], p)):
        if short <= 0:
            break
        take = min(positions[pool], short)
        positions[pool] -= take
        short -= take
    return Holdings(
        positions={p: a for p, a in positions.items() if a > 0},
        idle_usd=holdings.idle_usd - from_idle,
    )
