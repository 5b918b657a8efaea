"""One day's decision without storage, proven sound: the chain's code path that the backtest
replays day by day (`decide_day`), the held pools set aside while their absence from the day's
data is unconfirmed (`held_aside_for`), and every way an allocation breaks the model
(`allocation_violations`, also the check of a stored day).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal

import numpy as np
import pandas as pd

from allocator_dagster.allocation_report import AllocationReport
from allocator_dagster.day_payouts import DayInputError, report_amounts
from allocator_dagster.model import (
    Holdings,
    ModelInputError,
    Problem,
    Violation,
    ViolationKind,
    build_problem,
    violations,
)
from allocator_dagster.money import HALF_CENT_USD
from allocator_dagster.parameters import AllocationParameters, DynamicLists
from allocator_dagster.rebalance import HeldAside, decide_with_problem
from allocator_dagster.solvers import Backend
from allocator_dagster.vanished import missing_holdings

# Stored amounts are whole cents and every limit sits on the cent grid, so a stored allocation
# must meet its limits exactly: half a cent absorbs float noise, one cent over is a breach.
STORED_TOLERANCE_USD = HALF_CENT_USD


def allocation_violations(
    universe: pd.DataFrame,
    holdings: Holdings,
    params: AllocationParameters,
    lists: DynamicLists,
    amounts: dict[str, Decimal],
    total_usd: Decimal,
    *,
    built: tuple[Problem, dict[str, str]] | None = None,
) -> list[Violation]:
    """Every way a stored allocation breaks MODEL.md: limits, eligibility, sums (empty: sound).

    `built` is `build_problem(universe, holdings, params, lists)` when the caller has it already.
    """
    problem, reasons = built or build_problem(universe, holdings, params, lists)
    out = []
    known = set(problem.pool_ids.tolist())
    for pool, amount in sorted(amounts.items()):
        if amount > 0 and pool not in known:
            out.append(
                Violation(
                    None,
                    f"pool {pool} holds {amount} USD but is not eligible: {reasons.get(pool, 'not in the pool data')}",
                    ViolationKind.ELIGIBILITY,
                )
            )
    x = np.array([float(amounts.get(p, Decimal("0"))) for p in problem.pool_ids])
    out += violations(problem, x, STORED_TOLERANCE_USD)
    placed = sum(amounts.values(), Decimal("0"))
    if placed != total_usd:
        out.append(
            Violation(
                None,
                f"detail amounts add up to {placed} USD, not the allocation total {total_usd} USD",
                ViolationKind.DETAILS,
            )
        )
    return out


def decide_day(
    day: dt.date,
    universe: pd.DataFrame,
    holdings: Holdings,
    parameters: AllocationParameters,
    lists: DynamicLists,
    backend: Backend,
    *,
    force_reasons: list[str] | None = None,
    held_aside: dict[str, HeldAside] | None = None,
) -> AllocationReport:
    """One day's decision, proven sound: the chain's code path without storage, which the
    backtest replays day by day (one definition of a day's decision for both). `held_aside`:
    held pools missing from the day's data and not yet confirmed vanished (`held_aside_for`).

    An allocation that breaks the model raises, and the last good one stays in force.
    """
    try:
        decided = decide_with_problem(
            universe,
            holdings,
            parameters,
            lists,
            backend,
            force_reasons=force_reasons,
            held_aside=held_aside,
        )
    except ModelInputError as exc:
        raise DayInputError(f"{day}: {exc}") from None
    report, placed = decided.report, decided.placed
    if report.is_new_allocation:
        problems = [
            v.message
            for v in allocation_violations(
                universe,
                placed,
                parameters,
                lists,
                placed_amounts(report_amounts(report), report.held_missing),
                placed.total_usd,
                built=(decided.problem, decided.ineligible),
            )
        ]
        if problems:
            raise RuntimeError(
                f"{day}: the solver's allocation breaks the model: " + "; ".join(problems)
            )
    return report


def held_aside_for(
    day: dt.date,
    unlisted: Mapping[str, Decimal],
    params: AllocationParameters,
    earlier: Mapping[dt.date, frozenset[str] | None],
    seen: Mapping[str, tuple[str, str, str]],
) -> dict[str, HeldAside]:
    """The held pools missing from the day's data (`vanished.unlisted_held`) whose absence is
    not yet confirmed: they are held where they are; confirmed ones are left to the model's
    forced exit. `earlier` and `seen` are `storage.pool_listings.listings_before`'s answer for
    the same pools (the backtest builds them from its days)."""
    if not unlisted:
        return {}
    n = params.vanished_confirmation_days
    return {
        m.pool: HeldAside(m.reason, *(m.last_seen or ("?", "?", "?")))
        for m in missing_holdings(day, unlisted, earlier, n, seen)
        if not m.confirmed
    }


def placed_amounts(amounts: Mapping[str, Decimal], aside: Iterable[str]) -> dict[str, Decimal]:
    """The amounts of the placed capital: the set-aside pools' taken out (`rebalance.set_aside`
    takes them out of the holdings)."""
    aside = set(aside)
    return {p: a for p, a in amounts.items() if p not in aside}
