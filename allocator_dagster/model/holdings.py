"""What the treasury holds at the start of a day: USD per pool and idle cash, in exact cents."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from allocator_dagster.money import to_cents

IDLE = "idle_usd"


@dataclass(frozen=True)
class Holdings:
    """USD held per pool at the start of the day, and idle cash (yesterday's yield lands here)."""

    positions: Mapping[str, Decimal]
    idle_usd: Decimal = Decimal("0")

    @classmethod
    def idle(cls, capital_usd: float | Decimal) -> Holdings:
        return cls(positions={}, idle_usd=to_cents(capital_usd))

    @property
    def total_usd(self) -> Decimal:
        return self.idle_usd + sum(self.positions.values(), Decimal("0"))

    def held(self) -> dict[str, Decimal]:
        return {p: a for p, a in sorted(self.positions.items()) if a > 0}

    def as_records(self) -> list[dict[str, str]]:
        rows = [{"pool": p, "amount_usd": str(a)} for p, a in self.held().items()]
        rows.append({"pool": IDLE, "amount_usd": str(self.idle_usd)})
        return rows
