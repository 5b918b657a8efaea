"""The `milp` backend: the whole model in OR-Tools CP-SAT, in integer units of one cent.

- Amounts are integers of 0.01 USD, so holdings, the capital and "no trade" are exact.
- Gas is an exact fixed cost: binary selection z_i (pools not held) and trade t_i (held pools,
  `x_i == h_i` unless t_i).
- The objective is in USD/day with floating coefficients; CP-SAT scales it to integers itself
  and proves optimality to an absolute gap of `GAP_USD_PER_DAY`. The report re-evaluates the
  objective exactly on the returned amounts.
- Diluted yield: each pool's concave reward term is a piecewise-linear function through
  `DILUTION_PIECES` chords (below the curve), in integer units of 1e-6 USD/day; stated in the
  report.
- Deterministic: a fixed seed, and with several workers CP-SAT's interleaved search, so any
  number of workers gives the same answer; pools are ordered by id before the model is built.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from allocator_dagster.model import (
    DAYS_PER_YEAR_PCT,
    ExactnessNote,
    Problem,
    SolveOutcome,
    SolveStatus,
)
from allocator_dagster.money import int_cents, int_cents_array
from allocator_dagster.solvers import Backend

UNIT_USD = 0.01
GAP_USD_PER_DAY = 1e-4
REWARD_UNIT_USD_PER_DAY = 1e-6
CHORD_SLOPE_DENOMINATOR = 1_000_000
DILUTION_PIECES = 8
DEFAULT_WORKERS = 2
DEFAULT_TIME_LIMIT_S = 120.0


@dataclass(frozen=True)
class _Cents:
    """The problem's amounts in integer cents: money moves in cents, so a limit of 20000.006 USD
    (already on the cent grid upwards) allows 20000.01 and nothing is lost to float noise."""

    total: int
    held: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    min_position: int
    min_withdrawal: int

    @classmethod
    def of(cls, problem: Problem) -> _Cents:
        total = int_cents(problem.total_usd)
        return cls(
            total=total,
            held=int_cents_array(problem.held),
            upper=np.minimum(int_cents_array(problem.upper), total),
            lower=int_cents_array(problem.lower),
            min_position=int_cents(problem.min_position_usd),
            min_withdrawal=int_cents(problem.min_withdrawal_usd),
        )


def solve(
    problem: Problem,
    *,
    workers: int = DEFAULT_WORKERS,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> SolveOutcome:
    """Solve `problem` with CP-SAT; amounts in USD aligned with `problem.pool_ids`."""
    started = time.perf_counter()
    if problem.n == 0:
        return SolveOutcome(
            SolveStatus.INFEASIBLE, None, Backend.MILP, 0.0, message="no eligible pool"
        )
    cents = _Cents.of(problem)
    blocked = np.flatnonzero(cents.lower > cents.upper)
    if len(blocked):
        return SolveOutcome(
            SolveStatus.INFEASIBLE, None, Backend.MILP, time.perf_counter() - started,
            message=f"pool {problem.pool_ids[blocked[0]]}: lower bound above its limit",
        )  # fmt: skip
    model = cp_model.CpModel()
    x = [
        model.new_int_var(int(cents.lower[i]), int(cents.upper[i]), f"x{i}")
        for i in range(problem.n)
    ]
    _add_allocation_constraints(model, problem, x, cents)
    objective = _yield_terms(model, problem, x, cents.upper)
    trades = _add_costs(model, problem, x, cents, objective)
    model.maximize(
        cp_model.LinearExpr.weighted_sum([v for v, _ in objective], [c for _, c in objective])
    )
    solver = _solver(workers, time_limit_s)
    status = solver.solve(model)
    elapsed = time.perf_counter() - started
    notes = _exactness_notes(problem, solver)
    if status == cp_model.INFEASIBLE:
        return SolveOutcome(
            SolveStatus.INFEASIBLE, None, Backend.MILP, elapsed, notes, message="CP-SAT: infeasible"
        )
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return SolveOutcome(
            SolveStatus.FAILED,
            None,
            Backend.MILP,
            elapsed,
            notes,
            message=f"CP-SAT: {solver.status_name(status)}",
        )
    amounts = _amounts(problem, solver, x, trades)
    bound = solver.best_objective_bound
    if status == cp_model.FEASIBLE:
        notes.append(
            ExactnessNote(
                "optimality",
                f"time limit reached; best bound {bound:.6f} USD/day (not proven optimal)",
                False,
            )
        )
        return SolveOutcome(
            SolveStatus.FEASIBLE, amounts, Backend.MILP, elapsed, notes, bound_usd_per_day=bound
        )
    return SolveOutcome(
        SolveStatus.OPTIMAL, amounts, Backend.MILP, elapsed, notes, bound_usd_per_day=bound
    )


def _add_allocation_constraints(
    model: cp_model.CpModel, problem: Problem, x: list, cents: _Cents
) -> None:
    """Full allocation of the capital and the group caps, in cents."""
    model.add(sum(x) == cents.total)
    for k in (1, 2, 3):
        members = np.flatnonzero(problem.group == k)
        if len(members):
            model.add(sum(x[i] for i in members) <= int_cents(problem.group_caps_usd[k - 1]))


def _yield_terms(
    model: cp_model.CpModel, problem: Problem, x: list, upper_c: np.ndarray
) -> list[tuple[object, float]]:
    """Objective terms of the yield as (variable, USD/day per unit of the variable)."""
    per_cent = UNIT_USD / DAYS_PER_YEAR_PCT
    if problem.yield_model == "linear":
        return [(x[i], c) for i, c in enumerate((problem.apy * per_cent).tolist()) if c]
    terms: list[tuple[object, float]] = [
        (x[i], c) for i, c in enumerate((problem.apy_base * per_cent).tolist()) if c
    ]
    terms += [(r, REWARD_UNIT_USD_PER_DAY) for r in _dilution_terms(model, problem, x, upper_c)]
    return terms


def _add_costs(
    model: cp_model.CpModel,
    problem: Problem,
    x: list,
    cents: _Cents,
    objective: list[tuple[object, float]],
) -> list[tuple[int, cp_model.IntVar]]:
    """Conversion and gas, amortised over the horizon, as negative terms of `objective`; with
    integers, the selection z_i (and min_position_usd, min_pools) and the trade t_i of each held
    pool. Returns the (pool index, t_i) pairs."""
    horizon = problem.horizon_days
    conv_coef = (problem.conversion_rate * UNIT_USD / horizon).tolist()
    gas_coef = (problem.gas / horizon).tolist()
    integer = problem.needs_integers
    selections = []
    trades: list[tuple[int, cp_model.IntVar]] = []
    for i in range(problem.n):
        held = cents.held[i] > 0
        if conv_coef[i]:
            if held:
                up = model.new_int_var(0, int(cents.upper[i]), f"up{i}")
                model.add(up >= x[i] - int(cents.held[i]))
                objective.append((up, -conv_coef[i]))
            else:
                objective.append((x[i], -conv_coef[i]))
        if integer:
            z = model.new_bool_var(f"z{i}")
            selections.append(z)
            model.add(x[i] == 0).only_enforce_if(~z)
            if cents.min_position > 0:
                model.add(x[i] >= cents.min_position).only_enforce_if(z)
            if held:
                t = model.new_bool_var(f"t{i}")
                trades.append((i, t))
                model.add(x[i] == int(cents.held[i])).only_enforce_if(~t)
                if gas_coef[i]:
                    objective.append((t, -gas_coef[i]))
                if cents.min_withdrawal > 0:
                    # constraint 8: kept (x >= h) or reduced to at most max(h - m, 0)
                    v = model.new_bool_var(f"v{i}")
                    model.add(x[i] >= int(cents.held[i])).only_enforce_if(~v)
                    ceiling = max(int(cents.held[i]) - cents.min_withdrawal, 0)
                    model.add(x[i] <= ceiling).only_enforce_if(v)
            elif gas_coef[i]:
                objective.append((z, -gas_coef[i]))
    if integer and problem.min_pools > 0:
        model.add(sum(selections) >= problem.min_pools)
    return trades


def _solver(workers: int, time_limit_s: float) -> cp_model.CpSolver:
    """A deterministic CP-SAT: fixed seed; with several workers, interleaved search (CP-SAT's
    deterministic parallel mode; one worker is deterministic anyway, and interleaving on a
    single worker is slow)."""
    solver = cp_model.CpSolver()
    params = solver.parameters
    params.num_workers = max(1, workers)
    params.random_seed = 0
    params.interleave_search = params.num_workers > 1
    params.interleave_batch_size = 1
    params.max_time_in_seconds = time_limit_s
    params.absolute_gap_limit = GAP_USD_PER_DAY
    params.relative_gap_limit = 0.0
    return solver


def _exactness_notes(problem: Problem, solver: cp_model.CpSolver) -> list[ExactnessNote]:
    """How exact each part of the milp answer is, for the report."""
    params = solver.parameters
    notes = [
        ExactnessNote(
            "amounts",
            "integer units of 0.01 USD (one cent); limits rounded to the nearest cent",
            True,
        ),
        ExactnessNote("gas", "exact fixed cost on binary selection/trade variables", True),
        ExactnessNote(
            "objective",
            f"float coefficients scaled by CP-SAT, optimal within {GAP_USD_PER_DAY:g} USD/day; "
            "re-evaluated exactly on the returned amounts",
            True,
        ),
    ]
    if problem.yield_model == "diluted":
        notes.append(
            ExactnessNote(
                "yield",
                f"diluted reward as a concave piecewise-linear function of {DILUTION_PIECES} pieces per pool",
                False,
            )
        )
    if problem.presolve_note:
        notes.append(ExactnessNote("presolve", problem.presolve_note, True))
    notes.append(
        ExactnessNote(
            "determinism",
            f"seed 0, {params.num_workers} worker(s)"
            + (", interleaved search" if params.interleave_search else ""),
            True,
        )
    )
    return notes


def _amounts(
    problem: Problem, solver: cp_model.CpSolver, x: list, trades: list[tuple[int, cp_model.IntVar]]
) -> np.ndarray:
    """The solution in USD; an untraded holding keeps its exact amount."""
    values = np.array([solver.value(v) for v in x], dtype=np.int64)
    amounts = values.astype(float) * UNIT_USD
    for i, t in trades:
        if not solver.boolean_value(t):
            amounts[i] = problem.held[i]
    return amounts


def _dilution_terms(
    model: cp_model.CpModel, problem: Problem, x: list, upper_c: np.ndarray
) -> list:
    """Concave PWL reward per pool, r_i <= each chord of E*x/(a+x), r in 1e-6 USD/day units."""
    emission = problem.reward_emission_per_day()
    others = problem.others_tvl()
    d = CHORD_SLOPE_DENOMINATOR
    terms = []
    for i in range(problem.n):
        if emission[i] <= 0 or upper_c[i] <= 0:
            continue
        hi = int(upper_c[i])
        points = sorted({int(round(hi * k / DILUTION_PIECES)) for k in range(DILUTION_PIECES + 1)})

        def f(cents: int, i: int = i) -> float:
            usd = cents * UNIT_USD
            return emission[i] * usd / (others[i] + usd) / REWARD_UNIT_USD_PER_DAY

        r = model.new_int_var(0, int(math.floor(f(hi))), f"r{i}")
        for a, b in zip(points[:-1], points[1:], strict=True):
            fa, fb = f(a), f(b)
            slope = int(math.floor((fb - fa) / (b - a) * d))  # rounded down: stays below the curve
            # d * r <= d * fa + slope * (x - a)
            model.add(d * r <= int(math.floor(d * fa)) - slope * a + slope * x[i])
        terms.append(r)
    return terms
