"""A solver's answer put on the cent grid: amounts in whole cents that add up to the capital
exactly, within every pool and group limit, or an error (the day then holds).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from allocator_dagster.model import Problem
from allocator_dagster.money import CENT, cents_down, to_cents


class CentRoundingError(ValueError):
    """The solver's answer cannot be put on the cent grid within every limit; the day holds."""


def cents_exact(x: np.ndarray, problem: Problem, total: Decimal) -> list[Decimal]:
    """Amounts in cents that add up to `total` exactly, within every pool and group limit.

    Floors, then hands the missing cents to the largest remainders (ties by pool id), only to
    pools and groups with a cent of room: first the pools the answer trades, then (when those
    are full, e.g. a solver answer short of the total by its tolerance with every traded pool at
    its limit) held pools it left untouched. Surplus cents come off the largest traded
    positions that stay above their floor. Untouched holdings otherwise keep their exact amount.
    Raises CentRoundingError when no cent can go anywhere without breaking a limit: a wrong
    amount is never returned.
    """
    amounts: list[Decimal] = []
    untouched = problem.untouched(x).tolist()
    # most pools get nothing: a value at or below zero (not -0.0, whose repr differs) floors to
    # the cents of Decimal("0.0"), computed once instead of per pool
    nothing = ((x < 0.0) | ((x == 0.0) & ~np.signbit(x))).tolist()
    zero_floor = cents_down(Decimal(repr(0.0)))
    remainders = []
    for i, value in enumerate(x.tolist()):
        if untouched[i]:
            amounts.append(to_cents(problem.held[i]))
            continue
        if nothing[i]:
            amounts.append(zero_floor)
            continue
        exact = Decimal(repr(max(value, 0.0)))
        floor = cents_down(exact)
        amounts.append(floor)
        if value > 0:
            remainders.append((exact - floor, problem.pool_ids[i], i))
    steps = int(((total - sum(amounts, Decimal("0"))) / CENT).to_integral_value())
    bounds = problem.upper_given(x)
    upper: dict[int, Decimal | None] = {}  # the cent bound of each pool asked about

    def upper_at(i: int) -> Decimal | None:
        if i not in upper:
            u = bounds[i]
            upper[i] = to_cents(float(u)) if np.isfinite(u) else None
        return upper[i]

    groups = problem.group.tolist()
    group_room = {k: to_cents(float(problem.group_caps_usd[k - 1])) for k in (1, 2, 3)}
    for i, amount in enumerate(amounts):
        if amount and groups[i] in group_room:  # (exact: cents, far inside 28 digits)
            group_room[groups[i]] -= amount
    remainders.sort(key=lambda r: (-r[0], r[1]))
    spare = sorted(  # untouched held pools, largest first: the last place for missing cents
        (i for i in np.flatnonzero(untouched).tolist() if amounts[i] > 0),
        key=lambda i: (-amounts[i], problem.pool_ids[i]),
    )

    def room(i: int) -> bool:
        cap = upper_at(i)
        pool_ok = cap is None or amounts[i] + CENT <= cap
        return pool_ok and group_room[int(problem.group[i])] >= CENT

    for tier in ([r[2] for r in remainders], spare):
        while steps > 0:
            candidates = [i for i in tier if room(i)]
            if not candidates:
                break
            for i in candidates:
                if steps == 0 or not room(i):
                    continue
                amounts[i] += CENT
                group_room[int(problem.group[i])] -= CENT
                steps -= 1
    floor_usd = (
        [to_cents(max(float(problem.lower[i]), problem.min_position_usd)) for i in range(len(x))]
        if steps < 0
        else []
    )
    while steps < 0:
        order = [
            i
            for i in sorted(
                (i for i in range(len(amounts)) if amounts[i] > 0 and not untouched[i]),
                key=lambda i: (-amounts[i], problem.pool_ids[i]),
            )
            if amounts[i] - CENT >= floor_usd[i]
        ]
        if not order:
            break
        for i in order:
            if steps == 0:
                break
            amounts[i] -= CENT
            group_room[int(problem.group[i])] += CENT
            steps += 1
    if steps:
        raise CentRoundingError(
            f"the solver's answer is {abs(steps) * CENT:,.2f} USD "
            f"{'short of' if steps > 0 else 'over'} the capital of {total:,.2f} USD and no pool "
            "has a cent of room left within its limits"
        )
    return amounts
