"""Shadow prices of the binding limits, from a continuous solve around the chosen allocation.

The selection (which pools are held, which holdings are untouched) is fixed at the answer, the
remaining problem is continuous, and the dual of each binding limit says how many USD per day
one more USD of that limit would earn (and, for percentage parameters, one more percentage point).
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from allocator_dagster.model import CAP_NAMES, DAYS_PER_YEAR_PCT, BindingLimit, Problem
from allocator_dagster.solvers._output import native_output_to_stderr
from allocator_dagster.solvers.convex import vector_sum

TOL_USD = 0.01
MIN_SHADOW = 1e-9


@dataclass
class _Around:
    """The continuous problem around an answer, in weights w = x / T over the selected pools."""

    idx: np.ndarray  # the selected pools
    w: cp.Variable
    upper: np.ndarray
    lower: np.ndarray
    free: np.ndarray  # selected pools whose amount may move (not an untouched holding)
    cap_con: cp.Constraint
    low_con: cp.Constraint
    group_con: cp.Constraint | None
    group_row: dict[int, int]  # group -> its row of `group_con`
    prob: cp.Problem
    solver: str


def binding_limits(problem: Problem, x: np.ndarray) -> list[BindingLimit]:
    """The limits that bind at `x`, largest effect (shadow price times limit) first; empty when
    nothing binds or the continuous solve fails."""
    if problem.n == 0 or x is None:
        return []
    around = _around(problem, x)
    if around is None:
        return []
    try:
        with native_output_to_stderr():  # solver libraries print to descriptor 1 directly
            around.prob.solve(solver=around.solver)
    except cp.SolverError:
        return []
    if around.prob.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or around.w.value is None:
        return []
    out = _pool_caps(problem, around) + _group_caps(problem, x, around) + _floors(problem, around)
    out.sort(
        key=lambda b: (-abs(b.shadow_price_usd_per_day_per_usd * b.value_usd), b.limit, b.scope)
    )
    return out


def _around(problem: Problem, x: np.ndarray) -> _Around | None:
    """The selection fixed at `x` (untouched holdings stay), the rest continuous; None when
    nothing is selected."""
    total = problem.total_usd
    selected = x > TOL_USD
    untouched = problem.is_held & (np.abs(x - problem.held) < TOL_USD)
    idx = np.flatnonzero(selected)
    if len(idx) == 0:
        return None
    w = cp.Variable(len(idx), name="w")
    upper = problem.upper[idx] / total
    lower = np.maximum(problem.lower[idx], problem.min_position_usd) / total
    lower = np.minimum(lower, upper)
    fixed = untouched[idx]
    m = len(idx)
    cons = [vector_sum(w) == 1]
    cap_con = w <= upper
    low_con = w >= lower
    cons += [cap_con, low_con]
    if fixed.any():
        # sparse selection instead of w[rows]: the same rows, compiled much faster
        rows = np.flatnonzero(fixed)
        pick = sp.csr_matrix(
            (np.ones(len(rows)), (np.arange(len(rows)), rows)), shape=(len(rows), m)
        )
        cons.append(pick @ w == problem.held[idx][fixed] / total)
    # one row per group that has pools, as one constraint: its dual holds the groups' prices
    groups = [k for k in (1, 2, 3) if np.any(problem.group[idx] == k)]
    group_con = None
    group_row: dict[int, int] = {}
    if groups:
        member_of = problem.group[idx]
        cols = np.flatnonzero(np.isin(member_of, groups))
        row_of = np.array([groups.index(int(g)) for g in member_of[cols]], dtype=int)
        matrix = sp.csr_matrix((np.ones(len(cols)), (row_of, cols)), shape=(len(groups), m))
        caps = np.array([problem.group_caps_usd[k - 1] / total for k in groups])
        group_con = matrix @ w <= caps
        cons.append(group_con)
        group_row = {k: r for r, k in enumerate(groups)}
    conv = problem.conversion_rate[idx] * total / problem.horizon_days
    held_w = problem.held[idx] / total
    cost = conv @ cp.pos(w - held_w) if np.any(conv) else 0
    value, solver = _value(problem, idx, w)
    prob = cp.Problem(cp.Maximize(value - cost), cons)
    return _Around(
        idx, w, upper, lower, ~fixed, cap_con, low_con, group_con, group_row, prob, solver
    )


def _value(problem: Problem, idx: np.ndarray, w: cp.Variable) -> tuple[cp.Expression, str]:
    """The daily yield of weights `w` under the problem's yield model, and the solver for it."""
    total = problem.total_usd
    if problem.yield_model == "linear":
        return (problem.apy[idx] / DAYS_PER_YEAR_PCT * total) @ w, cp.HIGHS
    emission = problem.reward_emission_per_day()[idx]
    others = problem.others_tvl()[idx] / total
    value = (
        (problem.apy_base[idx] / DAYS_PER_YEAR_PCT * total) @ w
        + float(emission.sum())
        - vector_sum(cp.multiply(emission * others, cp.inv_pos(others + w)))
    )
    return value, cp.CLARABEL


def _pool_caps(problem: Problem, around: _Around) -> list[BindingLimit]:
    """Pools held at their limit whose limit has a price."""
    total = problem.total_usd
    out = []
    w_val = np.asarray(around.w.value)
    cap_dual = np.asarray(around.cap_con.dual_value, dtype=float).reshape(-1) / total
    for j, i in enumerate(around.idx):
        if (
            around.free[j]
            and w_val[j] >= around.upper[j] - TOL_USD / total
            and cap_dual[j] > MIN_SHADOW
        ):
            name = CAP_NAMES[int(problem.upper_cap[i])]
            base = problem.tvl[i] if name in CAP_NAMES[:2] else total
            out.append(
                BindingLimit(
                    limit=name,
                    scope=f"pool {problem.pool_ids[i]}",
                    value_usd=float(problem.upper[i]),
                    shadow_price_usd_per_day_per_usd=float(cap_dual[j]),
                    shadow_price_usd_per_day_per_pct=float(cap_dual[j] * base / 100.0),
                    description=(
                        f"{name} caps {problem.symbol[i]} ({problem.project[i]}, {problem.chain[i]}) "
                        f"at {problem.upper[i]:,.0f} USD; one more percentage point would earn "
                        f"{cap_dual[j] * base / 100.0:,.2f} USD/day"
                    ),
                )
            )
    return out


def _group_caps(problem: Problem, x: np.ndarray, around: _Around) -> list[BindingLimit]:
    """Group caps that are full and have a price."""
    if around.group_con is None:
        return []
    total = problem.total_usd
    out = []
    group_duals = np.asarray(around.group_con.dual_value, dtype=float).reshape(-1)
    for k, r in around.group_row.items():
        dual = float(group_duals[r]) / total
        members = around.idx[problem.group[around.idx] == k]
        held_in = float(x[members].sum())
        cap = problem.group_caps_usd[k - 1]
        if dual > MIN_SHADOW and held_in >= cap - TOL_USD:
            out.append(
                BindingLimit(
                    limit=f"group{k}_max_pct",
                    scope=f"group {k}",
                    value_usd=cap,
                    shadow_price_usd_per_day_per_usd=dual,
                    shadow_price_usd_per_day_per_pct=dual * total / 100.0,
                    description=(
                        f"the group {k} cap ({cap / total:.0%}) costs {dual * total / 100.0:,.2f} USD/day "
                        "per percentage point"
                    ),
                )
            )
    return out


def _floors(problem: Problem, around: _Around) -> list[BindingLimit]:
    """Pools held at their floor (min_position_usd or the yield-only holding) that cost yield."""
    total = problem.total_usd
    out = []
    w_val = np.asarray(around.w.value)
    low_dual = np.asarray(around.low_con.dual_value, dtype=float).reshape(-1) / total
    lower = around.lower
    for j, i in enumerate(around.idx):
        if around.free[j] and low_dual[j] > MIN_SHADOW and w_val[j] <= lower[j] + TOL_USD / total:
            is_floor = problem.lower[i] >= problem.min_position_usd
            name = "yield_only_floor" if is_floor and problem.lower[i] > 0 else "min_position_usd"
            out.append(
                BindingLimit(
                    limit=name,
                    scope=f"pool {problem.pool_ids[i]}",
                    value_usd=float(lower[j] * total),
                    shadow_price_usd_per_day_per_usd=-float(low_dual[j]),
                    description=(
                        f"{name} keeps {lower[j] * total:,.0f} USD in {problem.symbol[i]} "
                        f"({problem.project[i]}); each USD there costs {low_dual[j]:.3g} USD/day"
                    ),
                )
            )
    return out
