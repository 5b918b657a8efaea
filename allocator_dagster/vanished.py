"""Whether a held pool that is missing from the day's pool data has vanished, or is held.

A fetch that passes the row-count check can still lack a pool we hold (an API that drops a page,
a pool briefly unlisted). Selling a large position on one day's absence would move real money
on a glitch, so a held pool missing from the day's data is exited only once its absence is
confirmed: missing on `vanished_confirmation_days` consecutive days (the day itself and the days
before it, each with a stored full pool snapshot). Until then the position is set aside: held
at its amount, not re-solved, and forecast to earn nothing (the day has no APY for it). Pure:
the stored days' presence comes from the caller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class MissingHolding:
    """A held pool missing from the day's pool data, and for how many days in a row."""

    pool: str
    amount_usd: Decimal
    day: int  # k: the day is the k-th consecutive day the pool is missing
    of: int  # N: vanished_confirmation_days
    # (chain, project, symbol) from the last stored day that listed it, for people to read
    last_seen: tuple[str, str, str] | None = None

    @property
    def confirmed(self) -> bool:
        return self.day >= self.of

    @property
    def reason(self) -> str:
        if self.confirmed:
            return (
                f"pool {self.pool}: missing from the pool data {self.day} days in a row "
                f"(vanished_confirmation_days {self.of}): exited as vanished"
            )
        return (
            f"pool {self.pool} held: missing from today's fetch (day {self.day} of {self.of}); "
            f"its {self.amount_usd:,.2f} USD stay in place, not re-solved, forecast to earn "
            "nothing until it is listed again or confirmed vanished"
        )


def unlisted_held(held: Mapping[str, Decimal], listed: Iterable[str]) -> dict[str, Decimal]:
    """The held pools (amount > 0) missing from `listed` (the day's pools), by pool id: found
    once a day, then passed to the read of the earlier days' listings and to `missing_holdings`."""
    present = set(listed)
    return {p: a for p, a in sorted(held.items()) if a > 0 and p not in present}


def missing_holdings(
    day: dt.date,
    unlisted: Mapping[str, Decimal],
    earlier: Mapping[dt.date, frozenset[str] | None],
    confirmation_days: int,
    last_seen: Mapping[str, tuple[str, str, str]] | None = None,
) -> list[MissingHolding]:
    """Each of the `unlisted` held pools (`unlisted_held`) with its streak, by pool id.

    `earlier` maps each of the `confirmation_days - 1` days before `day` to the held pools its
    stored full snapshot lists, or None when that day has no full snapshot (no evidence: the
    streak stops there).
    """
    if confirmation_days < 1:
        raise ValueError(f"vanished_confirmation_days must be at least 1, got {confirmation_days}")
    out = []
    for pool, amount in sorted(unlisted.items()):
        streak = 1
        for back in range(1, confirmation_days):
            pools = earlier.get(day - dt.timedelta(days=back))
            if pools is None or pool in pools:
                break
            streak += 1
        seen = (last_seen or {}).get(pool)
        out.append(MissingHolding(pool, amount, streak, confirmation_days, seen))
    return out
