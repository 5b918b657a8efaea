"""Why a day is infeasible, in words a treasurer understands (empty when no simple rule explains it).

Constraints 1-8 of MODEL.md: capital, limits, selection, groups, and the minimum withdrawal.
"""

from __future__ import annotations

import numpy as np

from allocator_dagster.model.problem import CAP_NAMES, Problem
from allocator_dagster.money import HALF_CENT_USD


def diagnose(problem: Problem) -> list[str]:
    """The constraints that conflict, in a treasurer's words (empty when no simple rule explains it)."""
    out: list[str] = []
    total = problem.total_usd
    n = problem.n
    if total <= 0:
        out.append("there is no capital to allocate (the holdings and idle cash add up to 0)")
        return out
    if n == 0:
        out.append(f"no pool is eligible, so {total:,.2f} USD cannot be placed")
        return out
    group_frac = sum(problem.group_caps_usd) / total
    present = {int(g) for g in problem.group}
    reachable_groups = sum(problem.group_caps_usd[k - 1] for k in present)
    if group_frac < 1 - 1e-12:
        out.append(
            f"group caps sum to {group_frac:.4g} < 1, so the capital cannot be fully allocated"
        )
    elif reachable_groups < total - HALF_CENT_USD:
        missing = sorted({1, 2, 3} - present)
        out.append(
            f"no eligible pool in group(s) {missing}; the caps of the remaining groups sum to "
            f"{reachable_groups / total:.4g} < 1"
        )
    cap_total = float(problem.upper.sum())
    if cap_total < total - HALF_CENT_USD:
        out.append(
            f"the per-pool limits of the {n} eligible pools allow at most {cap_total:,.2f} USD "
            f"of the {total:,.2f} USD to place (tvl_limit_percentage, position limits, max_alloc_percentage)"
        )
    else:
        reach = _reach(problem, problem.upper)
        if reach < total - HALF_CENT_USD and group_frac >= 1 - 1e-12:
            out.append(
                f"group caps together with the per-pool limits allow at most {reach:,.2f} USD "
                f"of the {total:,.2f} USD"
            )
        else:
            out += _minimum_withdrawal(problem)
    m = problem.min_position_usd
    if problem.min_pools > 0:
        can_hold = int(np.sum(problem.upper >= m - 1e-9))
        can_hold_after = int(np.sum(_withdrawal_upper(problem) >= m - 1e-9))
        if problem.min_pools > n:
            out.append(f"min_pools={problem.min_pools} but only {n} pools are eligible")
        elif problem.min_pools > can_hold:
            out.append(
                f"min_pools={problem.min_pools} but only {can_hold} eligible pools can hold "
                f"min_position_usd={m:,.2f}"
            )
        elif problem.min_pools > can_hold_after:
            out.append(
                f"min_pools={problem.min_pools} but only {can_hold_after} eligible pools can hold "
                f"min_position_usd={m:,.2f} once {_cut_pools(problem)}"
            )
        if problem.min_pools * m > total + HALF_CENT_USD:
            out.append(
                f"min_pools x min_position_usd = {problem.min_pools * m:,.2f} USD exceeds the "
                f"capital of {total:,.2f} USD"
            )
    if problem.mode == "yield-only":
        over = np.flatnonzero(problem.held > problem.upper + HALF_CENT_USD)
        for i in over:
            out.append(
                f"held pool {problem.pool_ids[i]} ({problem.symbol[i]}) holds {problem.held[i]:,.2f} USD, "
                f"above its limit of {problem.upper[i]:,.2f} USD ({CAP_NAMES[int(problem.upper_cap[i])]})"
            )
        for k in (1, 2, 3):
            s = float(problem.held[problem.group == k].sum())
            if s > problem.group_caps_usd[k - 1] + HALF_CENT_USD:
                out.append(
                    f"held pools of group {k} hold {s:,.2f} USD, above the group{k}_max_pct cap"
                )
        if m > 0:  # a holding below the minimum is topped up, unless its limit is lower still
            small = (problem.held > 0) & (problem.held < m - HALF_CENT_USD)
            for i in np.flatnonzero(small & (problem.upper < m - HALF_CENT_USD)):
                out.append(
                    f"held pool {problem.pool_ids[i]} holds {problem.held[i]:,.2f} USD, below "
                    f"min_position_usd, and its limit of {problem.upper[i]:,.2f} USD "
                    f"({CAP_NAMES[int(problem.upper_cap[i])]}) leaves no room to top it up"
                )
    return out


def _reach(problem: Problem, upper: np.ndarray) -> float:
    """The most the pools can take under `upper` and the group caps."""
    return sum(
        min(problem.group_caps_usd[k - 1], float(upper[problem.group == k].sum()))
        for k in (1, 2, 3)
    )


def _forced_cuts(problem: Problem) -> np.ndarray:
    """Constraint 8 binds: held pools above their limit must be reduced, by at least the minimum
    withdrawal (or emptied), so each keeps at most its withdrawal ceiling max(h_i - m, 0)."""
    if not problem.limits_withdrawals:
        return np.zeros(problem.n, dtype=bool)
    above = problem.is_held & (problem.held > problem.upper + HALF_CENT_USD)
    return above & (problem.withdrawal_ceiling() < problem.upper - HALF_CENT_USD)


def _withdrawal_upper(problem: Problem) -> np.ndarray:
    """Each pool's largest amount under constraint 8 (pools it does not cut keep `upper`)."""
    cut = _forced_cuts(problem)
    return np.where(cut, problem.withdrawal_ceiling(), problem.upper)


def _cut_pools(problem: Problem) -> str:
    ceiling = problem.withdrawal_ceiling()
    pools = "; ".join(
        f"held pool {problem.pool_ids[i]} holds {problem.held[i]:,.2f} USD above its limit of "
        f"{problem.upper[i]:,.2f} USD, so it keeps at most {ceiling[i]:,.2f} USD"
        for i in np.flatnonzero(_forced_cuts(problem))
    )
    return (
        f"every withdrawal takes at least {problem.min_withdrawal_usd:,.2f} USD "
        f"(min_withdrawal_pct, constraint 8): {pools}"
    )


def _minimum_withdrawal(problem: Problem) -> list[str]:
    """Constraint 8 when the limits alone leave room for the capital but the forced cuts do not."""
    total = problem.total_usd
    reach = _reach(problem, _withdrawal_upper(problem))
    if not _forced_cuts(problem).any() or reach >= total - HALF_CENT_USD:
        return []
    return [
        f"the eligible pools can take at most {reach:,.2f} USD of the {total:,.2f} USD once "
        f"{_cut_pools(problem)}"
    ]
