"""Paper trading: the next day's ledger as if the day's allocation were executed at its end.

During day D the holdings h_D earn the realised (observed) APY of D; that yield lands as idle
cash for D+1. At the end of D the allocation x_D is executed: the conversion penalty is paid out
of the amount converted into each pool, gas out of the idle cash (the shortfall, if any, from
the largest position). All in exact cents.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal

from allocator_dagster.model import DAYS_PER_YEAR_PCT, Holdings
from allocator_dagster.money import to_cents


def realised_yield(holdings: Holdings, observed_apy: Mapping[str, float]) -> dict[str, Decimal]:
    """Yield per held pool over one day at the observed APY (a vanished pool earns nothing)."""
    out = {}
    for pool, amount in holdings.held().items():
        apy = observed_apy.get(pool, math.nan)
        apy = 0.0 if apy is None or not math.isfinite(apy) else apy
        out[pool] = to_cents(float(amount) * apy / DAYS_PER_YEAR_PCT)
    return out


def roll_forward(
    start: Holdings,
    allocation: Mapping[str, Decimal] | None,
    observed_apy: Mapping[str, float],
    *,
    gas_usd: Mapping[str, float] | None = None,
    conversion_usd: Mapping[str, float] | None = None,
) -> Holdings:
    """Holdings at the start of D+1. `allocation` None: nothing was executed (a held day)."""
    earned = sum(realised_yield(start, observed_apy).values(), Decimal("0"))
    if allocation is None:
        return Holdings(positions=dict(start.held()), idle_usd=start.idle_usd + earned)
    positions = {p: a for p, a in sorted(allocation.items()) if a > 0}
    for pool, cost in sorted((conversion_usd or {}).items()):
        if pool in positions and cost > 0:
            positions[pool] = max(Decimal("0"), positions[pool] - to_cents(cost))
    gas = sum((to_cents(g) for g in (gas_usd or {}).values() if g > 0), Decimal("0"))
    idle = earned - gas
    # a shortfall is paid from the positions, largest first, until it is covered
    for pool in sorted(positions, key=lambda p: (-positions[p], p)):
        if idle >= 0:
            break
        take = min(positions[pool], -idle)
        positions[pool] -= take
        idle += take
    return Holdings(
        positions={p: a for p, a in positions.items() if a > 0}, idle_usd=max(idle, Decimal("0.00"))
    )
