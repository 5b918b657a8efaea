"""The `convex` backend: the whole model through cvxpy.

- Linear yield: one LP (no selection needed) or one MILP solved exactly by HiGHS through cvxpy
  (relative gap 1e-9): gas is an exact fixed cost on binary variables (selection z_i for pools
  not held, trade t_i for held pools), `min_pools`/`min_position_usd` are exact binaries.
- Diluted yield without binaries: one convex (second-order cone) problem, solved by Clarabel.
- Diluted yield with binaries: outer approximation. The concave yield of each pool is replaced by
  a variable bounded by tangent cuts and the MILP is re-solved, adding a cut at each new point,
  until the MILP bound and the exact yield of its answer agree within 1e-6 USD/day: exact
  within that proven gap.

Variables are weights w = x / T, which keeps the numbers well scaled for every solver.
"""

from __future__ import annotations

import time

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from allocator_dagster.model import (
    DAYS_PER_YEAR_PCT,
    ExactnessNote,
    Problem,
    SolveOutcome,
    SolveStatus,
    daily_yield,
    polish,
    violations,
)
from allocator_dagster.money import HALF_CENT_USD
from allocator_dagster.solvers import Backend

# weights are fractions of T: a feasibility tolerance of 1e-10 is 0.001 USD on 10 M USD
TOLERANCES = {
    "primal_feasibility_tolerance": 1e-10,
    "dual_feasibility_tolerance": 1e-10,
    "output_flag": False,
}
MIP_OPTIONS = {
    "mip_rel_gap": 1e-9,
    "mip_abs_gap": 1e-9,
    "random_seed": 0,
    "threads": 1,
    **TOLERANCES,
}
# HiGHS's MIP row tolerance (mip_feasibility_tolerance, 1e-6 of T: 10 USD on 10 M USD) can
# accept an answer that keeps a holding untouched (saving its gas) while the capital is a few USD
# short of T or a group a few USD over its cap. Such an answer is re-solved once with this
# tolerance (0.01 USD on 10 M USD); every other answer is kept as it is, so the days it decided
# reproduce.
STRICT_MIP_OPTIONS = {**MIP_OPTIONS, "mip_feasibility_tolerance": 1e-9}
OA_TOLERANCE_USD_PER_DAY = 1e-6
OA_MAX_ROUNDS = 60


def vector_sum(expr: cp.Expression) -> cp.Expression:
    """The sum of a vector expression, as an inner product with ones.

    The same row of ones `cp.sum` compiles to, without `cp.sum`'s shape probe, which sums an
    uninitialised array and so can emit a spurious "invalid value encountered" RuntimeWarning.
    """
    return np.ones(expr.shape[0]) @ expr


def _selection(rows: np.ndarray, n: int) -> sp.csr_matrix:
    """The sparse matrix that picks entries `rows` of a length-n vector (S @ w == w[rows])."""
    k = len(rows)
    return sp.csr_matrix((np.ones(k), (np.arange(k), rows)), shape=(k, n))


def _group_matrix(problem: Problem) -> tuple[sp.csr_matrix, np.ndarray]:
    """One row per group that has pools (1, 2, 3 in order) and the caps as weights."""
    present = [k for k in (1, 2, 3) if np.any(problem.group == k)]
    row_of = np.full(4, -1)
    row_of[present] = np.arange(len(present))
    group = np.asarray(problem.group, dtype=int)
    rows = np.where((group >= 1) & (group <= 3), row_of[np.clip(group, 0, 3)], -1)
    cols = np.flatnonzero(rows >= 0)
    matrix = sp.csr_matrix(
        (np.ones(len(cols)), (rows[cols], cols)), shape=(len(present), problem.n)
    )
    caps = np.array([problem.group_caps_usd[k - 1] / problem.total_usd for k in present])
    return matrix, caps


def _base_constraints(problem: Problem, w: cp.Variable, held: np.ndarray) -> list:
    total = problem.total_usd
    cons = [vector_sum(w) == 1, w >= problem.lower / total, w <= problem.upper / total]
    groups, caps = _group_matrix(problem)
    if groups.shape[0]:
        cons.append(groups @ w <= caps)
    return cons


class _Formulation:
    """The shared cvxpy formulation; `dilution_cuts` switches the yield to outer approximation.

    Written with sparse selection and group matrices and full-length coefficient vectors (zeros
    where a term does not apply) rather than indexing `w[idx]`: the same problem, compiled by
    cvxpy several times faster.
    """

    def __init__(self, problem: Problem, integer: bool):
        self.problem = problem
        n, total = problem.n, problem.total_usd
        self.held_idx = np.flatnonzero(problem.is_held)
        self.free_idx = np.flatnonzero(~problem.is_held)
        free = ~problem.is_held
        self.w = cp.Variable(n, name="w", nonneg=True)
        self.integer = integer
        self.cons = _base_constraints(problem, self.w, problem.held)
        w = self.w
        horizon = problem.horizon_days
        # conversion on the positive move; for pools not held that is the whole amount
        cost_terms = []
        conv = problem.conversion_rate
        if len(self.free_idx):
            cost_terms.append(np.where(free, conv * total, 0.0) @ w)
        held_pick = _selection(self.held_idx, n) if len(self.held_idx) else None
        if held_pick is not None:
            self.up = cp.Variable(len(self.held_idx), nonneg=True, name="up")
            self.cons.append(self.up >= held_pick @ w - problem.held[self.held_idx] / total)
            cost_terms.append((conv[self.held_idx] * total) @ self.up)
        self.z = self.t = None
        self.v: cp.Variable | None = None  # constraint 8's withdrawal binaries, when needed
        if integer:
            m = problem.min_position_usd / total
            cap = problem.upper / total
            self.z = cp.Variable(n, boolean=True, name="z")
            self.cons += [w <= cp.multiply(cap, self.z), w >= m * self.z]
            if problem.min_pools > 0:
                self.cons.append(vector_sum(self.z) >= problem.min_pools)
            if len(self.free_idx):
                cost_terms.append(np.where(free, problem.gas, 0.0) @ self.z)
            if held_pick is not None:
                h = problem.held[self.held_idx] / total
                big = np.maximum(cap[self.held_idx], h) + 1e-9
                self.t = cp.Variable(len(self.held_idx), boolean=True, name="t")
                d = held_pick @ w - h
                self.cons += [d <= cp.multiply(big, self.t), -d <= cp.multiply(big, self.t)]
                cost_terms.append(problem.gas[self.held_idx] @ self.t)
                # Said exactly, not left to the big-M rows: HiGHS's MIP row tolerance (1e-6 of
                # T, 10 USD on 10 M USD) would let such a holding stay untouched, saving its gas.
                stuck = np.flatnonzero(problem.cannot_stay()[self.held_idx])
                if len(stuck):
                    self.cons.append(self.t[stuck] == 1)
                if problem.limits_withdrawals:
                    self.cons += self._withdrawal_rule(held_pick, h, cap[self.held_idx])
        self.costs = sum(cost_terms) / horizon if cost_terms else 0
        self.cut_points: list[np.ndarray] = []

    def _withdrawal_rule(
        self, held_pick: sp.csr_matrix, h: np.ndarray, cap: np.ndarray
    ) -> list[cp.Constraint]:
        """Constraint 8 on binary v_i per held pool: v_i = 0 keeps at least the holding,
        v_i = 1 keeps at most the withdrawal ceiling max(h_i - m, 0)."""
        ceiling = self.problem.withdrawal_ceiling()[self.held_idx] / self.problem.total_usd
        big = np.maximum(cap, ceiling)
        self.v = cp.Variable(len(self.held_idx), boolean=True, name="v")
        held_w = held_pick @ self.w
        return [
            held_w >= h - cp.multiply(h, self.v),
            held_w <= big - cp.multiply(big - ceiling, self.v),
        ]

    def linear_problem(self) -> cp.Problem:
        rate = self.problem.apy / DAYS_PER_YEAR_PCT * self.problem.total_usd
        return cp.Problem(cp.Maximize(rate @ self.w - self.costs), self.cons)

    def diluted_problem(self) -> cp.Problem:
        p, total = self.problem, self.problem.total_usd
        base = p.apy_base / DAYS_PER_YEAR_PCT * total
        emission = p.reward_emission_per_day()
        others = p.others_tvl() / total
        # E * x/(a+x) = E - E*a/(a+x): concave
        reward = float(emission.sum()) - vector_sum(
            cp.multiply(emission * others, cp.inv_pos(others + self.w))
        )
        return cp.Problem(cp.Maximize(base @ self.w + reward - self.costs), self.cons)

    def oa_problem(self) -> cp.Problem:
        p, total = self.problem, self.problem.total_usd
        base = p.apy_base / DAYS_PER_YEAR_PCT * total
        emission = p.reward_emission_per_day()
        others = p.others_tvl() / total
        r = cp.Variable(p.n, name="reward")
        cuts = []
        for point in self.cut_points:
            value = emission * point / (others + point)
            slope = emission * others / (others + point) ** 2
            cuts.append(r <= value + cp.multiply(slope, self.w - point))
        return cp.Problem(cp.Maximize(base @ self.w + vector_sum(r) - self.costs), self.cons + cuts)


def _status(prob: cp.Problem) -> SolveStatus:
    if prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        return SolveStatus.OPTIMAL
    if prob.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        return SolveStatus.INFEASIBLE
    return SolveStatus.FAILED


def _gas_note(problem: Problem, integer: bool) -> ExactnessNote:
    if integer:
        return ExactnessNote(
            "gas",
            "exact fixed cost on binary selection/trade variables (MILP, HiGHS gap 1e-9)",
            True,
        )
    return ExactnessNote("gas", "no gas cost and no selection rule: pure continuous problem", True)


def _highs_notes(problem: Problem, integer: bool, rounds: int = 0) -> list[ExactnessNote]:
    """The yield and selection notes of a model solved by HiGHS (linear, or diluted by OA)."""
    if problem.yield_model == "linear":
        selection = "exact binaries (HiGHS)" if integer else "not needed"
        return [
            ExactnessNote("yield", "linear, exact", True),
            ExactnessNote("selection", selection, True),
        ]
    return [
        ExactnessNote(
            "yield",
            f"diluted by outer approximation: {rounds} rounds of tangent cuts, proven gap "
            f"<= {OA_TOLERANCE_USD_PER_DAY:g} USD/day",
            True,
        ),
        ExactnessNote("selection", "exact binaries (HiGHS)", True),
    ]


def solve(problem: Problem) -> SolveOutcome:
    """Solve `problem` with cvxpy; amounts are returned in USD, aligned with `problem.pool_ids`."""
    started = time.perf_counter()
    if problem.n == 0:
        return SolveOutcome(
            SolveStatus.INFEASIBLE, None, Backend.CONVEX, 0.0, message="no eligible pool"
        )
    integer = problem.needs_integers
    notes = [_gas_note(problem, integer)]
    if problem.presolve_note:
        notes.append(ExactnessNote("presolve", problem.presolve_note, True))
    if (problem.yield_model == "linear" or integer) and problem.floors_conflict():
        # HiGHS would find the same conflict in its presolve; skip compiling the model.
        notes += _highs_notes(problem, integer, rounds=1)
        return SolveOutcome(
            SolveStatus.INFEASIBLE,
            None,
            Backend.CONVEX,
            time.perf_counter() - started,
            notes,
            message=cp.INFEASIBLE,
        )
    form = _Formulation(problem, integer)
    bound = None
    try:
        if problem.yield_model == "linear":
            prob = form.linear_problem()
            if integer:
                prob.solve(solver=cp.HIGHS, **MIP_OPTIONS)
                if _bent(problem, prob, form):
                    prob.solve(solver=cp.HIGHS, **STRICT_MIP_OPTIONS)
                    notes.append(ExactnessNote("tolerance", _STRICT_NOTE, True))
            else:
                prob.solve(solver=cp.HIGHS, **TOLERANCES)
            notes += _highs_notes(problem, integer)
        elif not integer:
            prob = form.diluted_problem()
            prob.solve(solver=cp.CLARABEL)
            notes.append(ExactnessNote("yield", "diluted, exact convex (SOCP, Clarabel)", True))
        else:
            prob, bound, rounds = _outer_approximation(form)
            notes += _highs_notes(problem, integer, rounds)
    except cp.SolverError as exc:
        return SolveOutcome(
            SolveStatus.FAILED,
            None,
            Backend.CONVEX,
            time.perf_counter() - started,
            notes,
            message=str(exc),
        )
    status = _status(prob)
    if status != SolveStatus.OPTIMAL or form.w.value is None:
        return SolveOutcome(
            status, None, Backend.CONVEX, time.perf_counter() - started, notes, message=prob.status
        )
    x = _clean(problem, np.asarray(form.w.value, dtype=float) * problem.total_usd, form)
    return SolveOutcome(
        SolveStatus.OPTIMAL,
        x,
        Backend.CONVEX,
        time.perf_counter() - started,
        notes,
        bound_usd_per_day=bound,
    )


_STRICT_NOTE = (
    "re-solved with HiGHS's MIP feasibility tolerance at 1e-9 of T: the default (1e-6) gave an "
    "answer that no rounding makes feasible"
)


def _bent(problem: Problem, prob: cp.Problem, form: _Formulation) -> bool:
    """The MIP answer breaks the model by more than its rounding can mend: a tolerance answer."""
    if _status(prob) != SolveStatus.OPTIMAL or form.w.value is None:
        return False
    x = _clean(problem, np.asarray(form.w.value, dtype=float) * problem.total_usd, form)
    return bool(violations(problem, polish(problem, x), HALF_CENT_USD))


def _outer_approximation(form: _Formulation) -> tuple[cp.Problem, float, int]:
    p = form.problem
    cap = p.upper / p.total_usd
    form.cut_points = [np.zeros(p.n), cap * 0.25, cap * 0.5, cap]
    for rounds in range(1, OA_MAX_ROUNDS + 1):
        prob = form.oa_problem()
        prob.solve(solver=cp.HIGHS, **MIP_OPTIONS)
        if _status(prob) != SolveStatus.OPTIMAL:
            return prob, float("nan"), rounds
        w = np.clip(np.asarray(form.w.value, dtype=float), 0, None)
        bound = float(prob.value)
        exact = float(daily_yield(p, w * p.total_usd).sum()) - float(_value(form.costs))
        if bound - exact <= OA_TOLERANCE_USD_PER_DAY:
            return prob, bound, rounds
        form.cut_points.append(w)
    # OA_MAX_ROUNDS >= 1: `prob` is the last round's problem.
    return prob, float(prob.value), OA_MAX_ROUNDS


def _value(expr) -> float:
    return 0.0 if isinstance(expr, (int, float)) else float(expr.value)


def _clean(problem: Problem, x: np.ndarray, form: _Formulation) -> np.ndarray:
    """Snap solver noise: unselected pools to 0, untraded holdings to their exact amount."""
    x = np.clip(x, 0.0, None)
    if form.z is not None and form.z.value is not None:
        x[np.asarray(form.z.value) < 0.5] = 0.0
    else:
        x[x < 1e-6] = 0.0
    if form.t is not None and form.t.value is not None:
        untraded = form.held_idx[np.asarray(form.t.value) < 0.5]
        x[untraded] = problem.held[untraded]
    return x
