"""Any allocation scored and checked with the model itself, so backends are compared on one scale.

`evaluate` computes yield and costs with MODEL.md's own formulas (never a solver's number);
`violations` lists every constraint an allocation breaks, each with its `ViolationKind`, which the
stored-allocation checks report by.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from allocator_dagster.model.problem import CAP_NAMES, DAYS_PER_YEAR_PCT, Problem
from allocator_dagster.money import HALF_CENT_USD, round_to_cent


def daily_yield(problem: Problem, x: np.ndarray) -> np.ndarray:
    """Daily yield per pool of amounts `x` under the problem's yield model (exact)."""
    if problem.yield_model == "linear":
        return x * problem.apy / DAYS_PER_YEAR_PCT
    base = x * problem.apy_base / DAYS_PER_YEAR_PCT
    others = problem.others_tvl()
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(x > 0, x / (others + x), 0.0)
    return base + problem.reward_emission_per_day() * share


def moved(problem: Problem, x: np.ndarray) -> np.ndarray:
    """Pools whose amount changes (to the cent): each pays gas."""
    return np.abs(round_to_cent(x) - round_to_cent(problem.held)) >= HALF_CENT_USD


@dataclass(frozen=True)
class Evaluation:
    """An allocation scored with MODEL.md's own formulas (not a solver's number)."""

    yield_per_pool: np.ndarray
    gas_per_pool: np.ndarray
    conversion_per_pool: np.ndarray
    exit_gas_usd: float
    daily_yield_usd: float
    gas_usd: float
    conversion_usd: float
    costs_usd: float
    objective_usd_per_day: float
    horizon_value_usd: float  # H * Y - C: what the rebalance decision compares


def evaluate(problem: Problem, x: np.ndarray) -> Evaluation:
    y = daily_yield(problem, x)
    gas = np.where(moved(problem, x), problem.gas, 0.0)
    conv = problem.conversion_rate * np.maximum(0.0, x - problem.held)
    gas_total = float(gas.sum()) + problem.exit_gas_usd
    conv_total = float(conv.sum())
    costs = gas_total + conv_total
    y_total = float(y.sum())
    return Evaluation(
        yield_per_pool=y,
        gas_per_pool=gas,
        conversion_per_pool=conv,
        exit_gas_usd=problem.exit_gas_usd,
        daily_yield_usd=y_total,
        gas_usd=gas_total,
        conversion_usd=conv_total,
        costs_usd=costs,
        objective_usd_per_day=y_total - costs / problem.horizon_days,
        horizon_value_usd=problem.horizon_days * y_total - costs,
    )


class ViolationKind(StrEnum):
    """Which part of an allocation a violation concerns; the stored-day checks report one result
    per kind, in this order."""

    WEIGHTS = "weights"  # the amounts do not add up to the capital (weights do not sum to 1)
    LIMITS = "limits"  # a bound breaks: a pool limit, a group cap, a minimum, the yield-only floor
    ELIGIBILITY = "eligibility"  # money sits in a pool that is not eligible
    DETAILS = "details"  # the stored record disagrees with itself or with the day's balances


@dataclass(frozen=True)
class Violation:
    """One broken rule: the MODEL.md constraint (None for a problem of the stored record, whose
    `detail` is then a whole sentence), what breaks it, and which part of the allocation it
    concerns (`kind`, by which the checks report; never the wording)."""

    constraint: str | None
    detail: str
    kind: ViolationKind = ViolationKind.LIMITS

    @property
    def message(self) -> str:
        return self.detail if self.constraint is None else f"{self.constraint}: {self.detail}"

    def __str__(self) -> str:
        return self.message


def violations(problem: Problem, x: np.ndarray, tol_usd: float = 0.02) -> list[Violation]:
    """Every constraint 1-8 that `x` breaks (used by tests and by the asset checks)."""
    out: list[Violation] = []
    total = problem.total_usd
    if abs(float(x.sum()) - total) > tol_usd:
        out.append(
            Violation(
                "full_allocation", f"sum {x.sum():.2f} != T {total:.2f}", ViolationKind.WEIGHTS
            )
        )
    for i in np.flatnonzero(x < -tol_usd):
        out.append(Violation("non_negative", f"{problem.pool_ids[i]}: {x[i]:.2f}"))
    for i in np.flatnonzero(x > problem.upper + tol_usd):
        out.append(
            Violation(
                CAP_NAMES[int(problem.upper_cap[i])],
                f"{problem.pool_ids[i]}: {x[i]:,.2f} > limit {problem.upper[i]:,.2f}",
            )
        )
    for i in np.flatnonzero(x < problem.lower - tol_usd):
        out.append(
            Violation(
                "yield_only", f"{problem.pool_ids[i]}: {x[i]:,.2f} < held {problem.lower[i]:,.2f}"
            )
        )
    if problem.limits_withdrawals:
        ceiling = problem.withdrawal_ceiling()
        short = problem.is_held & (x < problem.held - tol_usd) & (x > ceiling + tol_usd)
        for i in np.flatnonzero(short):
            out.append(
                Violation(
                    "min_withdrawal_pct",
                    f"{problem.pool_ids[i]}: reduced by {problem.held[i] - x[i]:,.2f} < "
                    f"{problem.min_withdrawal_usd:,.2f} (and not emptied)",
                )
            )
    selected = x > tol_usd
    if problem.min_position_usd > 0:
        for i in np.flatnonzero(selected & (x < problem.min_position_usd - tol_usd)):
            out.append(
                Violation(
                    "min_position_usd",
                    f"{problem.pool_ids[i]}: {x[i]:,.2f} < {problem.min_position_usd:,.2f}",
                )
            )
    if problem.min_pools > 0 and int(selected.sum()) < problem.min_pools:
        out.append(
            Violation("min_pools", f"{int(selected.sum())} pools < min_pools={problem.min_pools}")
        )
    for k in (1, 2, 3):
        s = float(x[problem.group == k].sum())
        cap = problem.group_caps_usd[k - 1]
        if s > cap + tol_usd:
            out.append(Violation(f"group{k}_max_pct", f"group {k} holds {s:,.2f} > cap {cap:,.2f}"))
    return out
