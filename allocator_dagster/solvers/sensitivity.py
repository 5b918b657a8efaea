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

from allocator_dagster.model import CAP_NAMES, DAYS_PER_YEAR_PCT, BindingLimit, Problem
from allocator_dagster.model.eligibility import GROUP_LABELS
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
    group_row: np.ndarray  # per selected pool, its group's index in `groups` (-1: none)
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
    group: np.ndarray  # one per group of `_Around.groups`


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
            duals = _cvxpy_duals(problem, around)
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
    member_of = problem.group[idx]
    groups = [k for k in (1, 2, 3) if np.any(member_of == k)]
    group_row = np.full(len(idx), -1)
    for row, k in enumerate(groups):
        group_row[member_of == k] = row
    return _Around(
        idx=idx,
        upper=upper,
        lower=lower,
        fixed=untouched[idx],
        held_w=problem.held[idx] / total,
        conv=problem.conversion_rate[idx] * total / problem.horizon_days,
        groups=groups,
        group_row=group_row,
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
    fixed = np.flatnonzero(around.fixed)
    n_eq = 1 + len(fixed)
    caps = n_eq + 2 * q  # the first cap row; the floors follow, then the groups
    pools = np.arange(m)
    moves = np.arange(m, m + q)
    members = np.flatnonzero(around.group_row >= 0)
    entries = [  # (rows, columns, values) of the constraint matrix
        (np.zeros(m, dtype=int), pools, 1.0),  # sum(w) == 1
        (1 + np.arange(len(fixed)), fixed, 1.0),  # w == held for untouched holdings
        (n_eq + pools[:q], pools[:q], 1.0),  # w - t <= held
        (n_eq + pools[:q], moves, -1.0),
        (n_eq + q + pools[:q], moves, -1.0),  # -t <= 0
        (caps + pools, pools, 1.0),  # w <= upper
        (caps + m + pools, pools, -1.0),  # -w <= -lower
        (caps + 2 * m + around.group_row[members], members, 1.0),  # groups
    ]
    rows = np.concatenate([r for r, _, _ in entries])
    cols = np.concatenate([c for _, c, _ in entries])
    values = np.concatenate([np.full(len(r), v) for r, _, v in entries])
    order = np.lexsort((rows, cols))  # column-wise, rows ascending within a column
    starts = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=m + q))])
    upper = np.concatenate(
        [
            [1.0],
            around.held_w[fixed],
            around.held_w[:q],
            np.zeros(q),
            around.upper,
            -around.lower,
            around.group_caps,
        ]
    )
    lower = np.concatenate([upper[:n_eq], np.full(len(upper) - n_eq, -np.inf)])
    solver = highspy.Highs()
    solver.setOptionValue("log_to_console", False)
    model = highspy.HighsModel()
    lp = model.lp_
    lp.num_col_, lp.num_row_ = m + q, len(upper)
    lp.offset_ = 0
    lp.col_cost_ = np.concatenate([-rate, around.conv[:q]])
    lp.col_lower_ = np.full(m + q, -np.inf)
    lp.col_upper_ = np.full(m + q, np.inf)
    lp.row_lower_, lp.row_upper_ = lower, upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = starts
    lp.a_matrix_.index_ = rows[order]
    lp.a_matrix_.value_ = values[order]
    solver.passModel(model)
    solver.run()
    if solver.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    solution = solver.getSolution()
    dual = -np.asarray(solution.row_dual, dtype=float)  # >= 0 on a binding `<=` row
    return _Duals(
        w=np.asarray(solution.col_value, dtype=float)[:m],
        cap=dual[caps : caps + m],
        low=dual[caps + m : caps + 2 * m],
        group=dual[caps + 2 * m :],
    )


def _cvxpy_duals(problem: Problem, around: _Around) -> _Duals | None:
    """The problem in cvxpy; None when it has no optimum. The diluted model's concave yield
    needs it (Clarabel); with the linear yield it is the LP `_linear_duals` gives HiGHS itself
    (the tests compare the two)."""
    import cvxpy as cp
    import scipy.sparse as sp

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
    if around.groups:
        cols = np.flatnonzero(around.group_row >= 0)
        matrix = sp.csr_matrix(
            (np.ones(len(cols)), (around.group_row[cols], cols)), shape=(len(around.groups), m)
        )
        group_con = matrix @ w <= around.group_caps
        cons.append(group_con)
    cost = around.conv @ cp.pos(w - around.held_w) if np.any(around.conv) else 0
    if problem.yield_model == "linear":
        value, solver = (problem.apy[idx] / DAYS_PER_YEAR_PCT * total) @ w, cp.HIGHS
    else:
        emission = problem.reward_emission_per_day()[idx]
        others = problem.others_tvl()[idx] / total
        value = (
            (problem.apy_base[idx] / DAYS_PER_YEAR_PCT * total) @ w
            + float(emission.sum())
            - vector_sum(cp.multiply(emission * others, cp.inv_pos(others + w)))
        )
        solver = cp.CLARABEL
    prob = cp.Problem(cp.Maximize(value - cost), cons)
    try:
        prob.solve(solver=solver)
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
                        f"the group {k} cap ({GROUP_LABELS[k]}: {cap / total:.0%}) costs "
                        f"{dual * total / 100.0:,.2f} USD/day "
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
