"""Shadow prices of the binding limits, from a continuous solve around the chosen allocation.

The selection (which pools are held, which holdings are untouched) is fixed at the answer, the
remaining problem is continuous, and the dual of each binding limit says how many USD per day
one more USD of that limit would earn (and, for percentage parameters, one more percentage point).

The linear yield model makes that an LP, whose duals come from HiGHS (highspy) directly: a
solve then needs no cvxpy (`allocator solve --solver milp` loads none,
and the convex backend compiles no second problem). The diluted model's concave yield stays in
cvxpy (Clarabel), imported only when such a day is priced.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from allocator_dagster.model import CAP_NAMES, DAYS_PER_YEAR_PCT, BindingLimit, Problem
from allocator_dagster.solvers._output import native_output_to_stderr

TOL_USD = 0.01
MIN_SHADOW = 1e-9


@dataclass(frozen=True)
class _Around:
    """The continuous problem around an answer, in weights w = x / T over the selected pools."""

    idx: np.ndarray  # the selected pools
    upper: np.ndarray
    lower: np.ndarray
    fixed: np.ndarray  # selected pools that are untouched holdings (their weight is fixed)
    held_w: np.ndarray  # the holdings as weights
    conv: np.ndarray  # conversion cost per unit of weight moved up, per day
    groups: list[int]  # the groups that have selected pools, in order (1, 2, 3)
    group_matrix: sp.csr_matrix | None  # one row per group of `groups`
    group_caps: np.ndarray  # as weights

    @property
    def free(self) -> np.ndarray:
        """Selected pools whose amount may move."""
        return ~self.fixed


@dataclass(frozen=True)
class _Duals:
    """The continuous optimum and its duals, each as USD/day per unit of weight (>= 0 when the
    limit costs yield: a cap's dual is what raising it earns, a floor's what lowering it earns)."""

    w: np.ndarray
    cap: np.ndarray
    low: np.ndarray
    group: np.ndarray  # one per row of `_Around.group_matrix`


def binding_limits(problem: Problem, x: np.ndarray) -> list[BindingLimit]:
    """The limits that bind at `x`, largest effect (shadow price times limit) first; empty when
    nothing binds or the continuous solve fails."""
    if problem.n == 0 or x is None:
        return []
    around = _around(problem, x)
    if around is None:
        return []
    with native_output_to_stderr():  # solver libraries print to descriptor 1 directly
        if problem.yield_model == "linear":
            duals = _linear_duals(problem, around)
        else:
            duals = _diluted_duals(problem, around)
    return [] if duals is None else _priced(problem, x, around, duals)


def _priced(problem: Problem, x: np.ndarray, around: _Around, duals: _Duals) -> list[BindingLimit]:
    """The binding limits that have a price, largest effect first."""
    out = (
        _pool_caps(problem, around, duals)
        + _group_caps(problem, x, around, duals)
        + _floors(problem, around, duals)
    )
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
    upper = problem.upper[idx] / total
    lower = np.maximum(problem.lower[idx], problem.min_position_usd) / total
    lower = np.minimum(lower, upper)
    # one row per group that has pools: the groups' prices are the duals of those rows
    groups = [k for k in (1, 2, 3) if np.any(problem.group[idx] == k)]
    matrix = None
    if groups:
        member_of = problem.group[idx]
        cols = np.flatnonzero(np.isin(member_of, groups))
        row_of = np.array([groups.index(int(g)) for g in member_of[cols]], dtype=int)
        matrix = sp.csr_matrix((np.ones(len(cols)), (row_of, cols)), shape=(len(groups), len(idx)))
    return _Around(
        idx=idx,
        upper=upper,
        lower=lower,
        fixed=untouched[idx],
        held_w=problem.held[idx] / total,
        conv=problem.conversion_rate[idx] * total / problem.horizon_days,
        groups=groups,
        group_matrix=matrix,
        group_caps=np.array([problem.group_caps_usd[k - 1] / total for k in groups]),
    )


def _linear_duals(problem: Problem, around: _Around) -> _Duals | None:
    """The linear model's LP solved by HiGHS (highspy); None when it has no optimum.

    Columns are the weights w and, when a pool has a conversion cost, the move up t (the
    `pos(w - held)` of the cost); every limit is a row. The rows, their order and signs are
    those cvxpy gives HiGHS for the same problem (equalities first, then `w - t <= held`,
    `-t <= 0`, the caps, the floors, the groups): where a day's duals are not unique (a full
    group whose members all sit at a limit), HiGHS then reports the same prices it always has.
    """
    idx, m = around.idx, len(around.idx)
    total = problem.total_usd
    rate = problem.apy[idx] / DAYS_PER_YEAR_PCT * total
    q = m if np.any(around.conv) else 0  # the t columns
    eye = sp.identity(m, format="csr")
    fixed = np.flatnonzero(around.fixed)
    k = len(fixed)
    pick = sp.csr_matrix((np.ones(k), (np.arange(k), fixed)), shape=(k, m))
    groups = around.group_matrix if around.group_matrix is not None else sp.csr_matrix((0, m))
    w_rows = [sp.csr_matrix(np.ones((1, m))), pick]  # the equalities
    t_rows = [sp.csr_matrix((1 + k, q))]
    rhs = [np.ones(1), around.held_w[fixed]]
    if q:
        w_rows += [eye, sp.csr_matrix((m, m))]
        t_rows += [-eye, -eye]
        rhs += [around.held_w, np.zeros(m)]
    w_rows += [eye, -eye, groups]
    t_rows.append(sp.csr_matrix((2 * m + groups.shape[0], q)))
    rhs += [around.upper, -around.lower, around.group_caps]
    matrix = sp.hstack([sp.vstack(w_rows), sp.vstack(t_rows)], format="csc")
    matrix.sort_indices()
    upper = np.concatenate(rhs)
    lower = upper.copy()
    n_eq = 1 + k
    lower[n_eq:] = -np.inf
    solver = highspy.Highs()
    solver.setOptionValue("log_to_console", False)
    model = highspy.HighsModel()
    lp = model.lp_
    lp.num_col_, lp.num_row_ = matrix.shape[1], matrix.shape[0]
    lp.offset_ = 0
    lp.col_cost_ = np.concatenate([-rate, around.conv]) if q else -rate
    lp.col_lower_ = np.full(matrix.shape[1], -np.inf)
    lp.col_upper_ = np.full(matrix.shape[1], np.inf)
    lp.row_lower_, lp.row_upper_ = lower, upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr
    lp.a_matrix_.index_ = matrix.indices
    lp.a_matrix_.value_ = matrix.data
    solver.passModel(model)
    solver.run()
    if solver.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    solution = solver.getSolution()
    dual = -np.asarray(solution.row_dual, dtype=float)  # >= 0 on a binding `<=` row
    caps = n_eq + 2 * q
    return _Duals(
        w=np.asarray(solution.col_value, dtype=float)[:m],
        cap=dual[caps : caps + m],
        low=dual[caps + m : caps + 2 * m],
        group=dual[caps + 2 * m :],
    )


def _diluted_duals(problem: Problem, around: _Around) -> _Duals | None:
    """The diluted model's concave problem in cvxpy (Clarabel); None when it has no optimum."""
    import cvxpy as cp

    from allocator_dagster.solvers.convex import vector_sum

    total = problem.total_usd
    idx = around.idx
    m = len(idx)
    w = cp.Variable(m, name="w")
    cons = [vector_sum(w) == 1]
    cap_con = w <= around.upper
    low_con = w >= around.lower
    cons += [cap_con, low_con]
    if around.fixed.any():
        # sparse selection instead of w[rows]: the same rows, compiled much faster
        rows = np.flatnonzero(around.fixed)
        pick = sp.csr_matrix(
            (np.ones(len(rows)), (np.arange(len(rows)), rows)), shape=(len(rows), m)
        )
        cons.append(pick @ w == around.held_w[around.fixed])
    group_con = None
    if around.group_matrix is not None:
        group_con = around.group_matrix @ w <= around.group_caps
        cons.append(group_con)
    cost = around.conv @ cp.pos(w - around.held_w) if np.any(around.conv) else 0
    emission = problem.reward_emission_per_day()[idx]
    others = problem.others_tvl()[idx] / total
    value = (
        (problem.apy_base[idx] / DAYS_PER_YEAR_PCT * total) @ w
        + float(emission.sum())
        - vector_sum(cp.multiply(emission * others, cp.inv_pos(others + w)))
    )
    prob = cp.Problem(cp.Maximize(value - cost), cons)
    try:
        prob.solve(solver=cp.CLARABEL)
    except cp.SolverError:
        return None
    if prob.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or w.value is None:
        return None
    return _Duals(
        w=np.asarray(w.value),
        cap=np.asarray(cap_con.dual_value, dtype=float).reshape(-1),
        low=np.asarray(low_con.dual_value, dtype=float).reshape(-1),
        group=(
            np.asarray(group_con.dual_value, dtype=float).reshape(-1)
            if group_con is not None
            else np.zeros(0)
        ),
    )


def _pool_caps(problem: Problem, around: _Around, duals: _Duals) -> list[BindingLimit]:
    """Pools held at their limit whose limit has a price."""
    total = problem.total_usd
    out = []
    cap_dual = duals.cap / total
    free = around.free
    for j, i in enumerate(around.idx):
        if free[j] and duals.w[j] >= around.upper[j] - TOL_USD / total and cap_dual[j] > MIN_SHADOW:
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


def _group_caps(
    problem: Problem, x: np.ndarray, around: _Around, duals: _Duals
) -> list[BindingLimit]:
    """Group caps that are full and have a price."""
    total = problem.total_usd
    out = []
    for r, k in enumerate(around.groups):
        dual = float(duals.group[r]) / total
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


def _floors(problem: Problem, around: _Around, duals: _Duals) -> list[BindingLimit]:
    """Pools held at their floor (min_position_usd or the yield-only holding) that cost yield."""
    total = problem.total_usd
    out = []
    low_dual = duals.low / total
    lower = around.lower
    free = around.free
    for j, i in enumerate(around.idx):
        if free[j] and low_dual[j] > MIN_SHADOW and duals.w[j] <= lower[j] + TOL_USD / total:
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
