"""Independent references for the solver backends, built from MODEL.md.

The references read only the `Problem` arrays of `build_problem` (bounds, rates, groups, gas,
conversion, holdings) and state the model of MODEL.md themselves:

- `reference_linear`: the linear model as one MILP in scipy.optimize.milp (HiGHS), with x and
  a selection binary z for every pool, a trade binary t for every held pool (gas is a fixed cost
  on z for pools not held and on t for held pools), a positive-move variable for the conversion
  of held pools, group caps, min_pools, min_position_usd, the per-pool caps and the minimum
  withdrawal (a binary v per held pool: kept at least, or reduced to the ceiling). The binaries of
  its answer are then fixed and the LP re-solved, so its objective is exact to LP precision.
- `reference_diluted`: tiny instances only. Every pool's state (not held: off/on; held:
  keep/exit/on, or keep/exit/up/down with a minimum withdrawal) is enumerated and the remaining concave problem is solved with cvxpy+Clarabel
  at tight tolerances; the best state wins.

Objectives of the backends are always recomputed with `model.evaluate` on the returned x.
"""

from __future__ import annotations

import itertools
import math

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import HealthCheck
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from allocator_dagster.model import Problem, build_problem, evaluate, violations
from allocator_dagster.solvers import milp as milp_backend
from allocator_dagster.solvers import solve
from allocator_dagster_tests.support.instances import (
    default_lists_for,
    idle,
    params,
    pool_row,
    random_holdings,
    random_params,
    random_universe,
    universe_of,
)

# cvxpy computes shapes with np.sum over uninitialised arrays; harmless, not ours.

DAY = 36500.0
BACKENDS = ("convex", "milp")

# Tolerances, USD/day: relative + absolute
CONVEX_REL, CONVEX_ABS = 1e-6, 1e-4
MILP_REL, MILP_ABS = 1e-6, 1e-3  # one-cent amounts, CP-SAT gap 1e-4

SETTINGS = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def reference_linear(p: Problem) -> tuple[str, np.ndarray | None, float | None]:
    """(status, x in USD, objective in USD/day) of the linear model, from MODEL.md."""
    n, total, horizon = p.n, p.total_usd, p.horizon_days
    if n == 0 or total <= 0:
        return "infeasible", None, None
    held = np.asarray(p.held, dtype=float)
    hidx = np.flatnonzero(held > 0)
    k = len(hidx)
    # variables: w (n weights x/T), z (n), t (k), u (k positive move of held pools),
    # v (k: the held pool is reduced; constraint 8, only with a minimum withdrawal)
    W, Z, TR, UP, V = 0, n, 2 * n, 2 * n + k, 2 * n + 2 * k
    kv = k if p.min_withdrawal_usd > 0 else 0
    nv = 2 * n + 2 * k + kv
    ub = np.minimum(np.asarray(p.upper, dtype=float), total) / total
    lb = np.asarray(p.lower, dtype=float) / total
    if np.any(lb > ub + 1e-12):
        return "infeasible", None, None
    m = p.min_position_usd / total
    h = held / total
    rate = np.asarray(p.apy, dtype=float) / DAY * total  # USD/day per unit of weight
    conv = np.asarray(p.conversion_rate, dtype=float) * total / horizon
    gas = np.asarray(p.gas, dtype=float) / horizon
    free = np.ones(n, dtype=bool)
    free[hidx] = False

    c = np.zeros(nv)  # minimise -(yield - costs)
    c[W : W + n] = -rate + np.where(free, conv, 0.0)
    c[Z : Z + n] = np.where(free, gas, 0.0)
    c[TR : TR + k] = gas[hidx]
    c[UP : UP + k] = conv[hidx]

    rows: list[tuple[dict[int, float], float, float]] = []
    rows.append(({W + i: 1.0 for i in range(n)}, 1.0, 1.0))  # 1. full allocation
    for i in range(n):
        rows.append(({W + i: 1.0, Z + i: -ub[i]}, -np.inf, 0.0))  # 6. x <= U z
        if m > 0:
            rows.append(({W + i: 1.0, Z + i: -m}, 0.0, np.inf))  # 6. x >= m z
    if p.min_pools > 0:
        rows.append(({Z + i: 1.0 for i in range(n)}, float(p.min_pools), np.inf))
    for g in (1, 2, 3):  # 7. group caps
        members = np.flatnonzero(np.asarray(p.group) == g)
        if len(members):
            rows.append(({W + i: 1.0 for i in members}, -np.inf, p.group_caps_usd[g - 1] / total))
    for j, i in enumerate(hidx):  # gas on held pools: |x - h| <= M t
        big = max(ub[i], h[i]) + 1e-9
        rows.append(({W + i: 1.0, TR + j: -big}, -np.inf, h[i]))
        rows.append(({W + i: -1.0, TR + j: -big}, -np.inf, -h[i]))
        rows.append(({UP + j: 1.0, W + i: -1.0}, -h[i], np.inf))  # u >= x - h
        if kv:  # 8. x >= h (1 - v); x <= max(h - m, 0) when v = 1
            ceiling = max(held[i] - p.min_withdrawal_usd, 0.0) / total
            top = max(ub[i], ceiling)
            rows.append(({W + i: 1.0, V + j: h[i]}, h[i], np.inf))
            rows.append(({W + i: 1.0, V + j: top - ceiling}, -np.inf, top))
    r_idx, c_idx, vals = [], [], []
    for r, (coefs, _, _) in enumerate(rows):
        for col, v in coefs.items():
            r_idx.append(r)
            c_idx.append(col)
            vals.append(v)
    A = coo_matrix((vals, (r_idx, c_idx)), shape=(len(rows), nv)).tocsr()
    cons = LinearConstraint(A, [r[1] for r in rows], [r[2] for r in rows])
    lo = np.concatenate([lb, np.zeros(n), np.zeros(k), np.zeros(k), np.zeros(kv)])
    hi = np.concatenate([ub, np.ones(n), np.ones(k), np.full(k, np.inf), np.ones(kv)])
    integrality = np.concatenate([np.zeros(n), np.ones(n), np.ones(k), np.zeros(k), np.ones(kv)])
    res = milp(
        c,
        constraints=cons,
        integrality=integrality,
        bounds=Bounds(lo, hi),
        options={"mip_rel_gap": 1e-10},
    )
    if res.status == 2:
        return "infeasible", None, None
    if res.x is None:
        raise AssertionError(f"reference MILP failed: {res.message}")
    # polish: fix the binaries and solve the LP (exact continuous optimum for that selection)
    ints = integrality == 1
    lo2, hi2 = lo.copy(), hi.copy()
    lo2[ints] = hi2[ints] = np.round(res.x[ints])
    lp = milp(c, constraints=cons, integrality=np.zeros(nv), bounds=Bounds(lo2, hi2))
    if lp.x is None:
        raise AssertionError(f"reference polish LP failed: {lp.message}")
    x = lp.x[W : W + n] * total
    return "optimal", x, float(-lp.fun - p.exit_gas_usd / horizon)


def reference_diluted(p: Problem) -> tuple[str, np.ndarray | None, float | None]:
    """Diluted model by enumerating every pool's state; tiny problems only (n <= ~6)."""
    n, total, horizon = p.n, p.total_usd, p.horizon_days
    if n == 0:
        return "infeasible", None, None
    held = np.asarray(p.held, dtype=float)
    h = held / total
    ub = np.minimum(np.asarray(p.upper, dtype=float), total) / total
    low = np.asarray(p.lower, dtype=float) / total
    m = p.min_position_usd / total
    base = np.asarray(p.apy_base, dtype=float) / DAY * total
    emission = np.asarray(p.apy_reward, dtype=float) * np.asarray(p.tvl, dtype=float) / DAY
    others = np.maximum(np.asarray(p.tvl, dtype=float) - held, 1.0) / total
    conv = np.asarray(p.conversion_rate, dtype=float) * total / horizon
    gas = np.asarray(p.gas, dtype=float) / horizon

    w = cp.Variable(n)
    lo_p, hi_p = cp.Parameter(n), cp.Parameter(n)
    cons = [cp.sum(w) == 1, w >= lo_p, w <= hi_p]
    for g in (1, 2, 3):
        members = np.flatnonzero(np.asarray(p.group) == g)
        if len(members):
            cons.append(cp.sum(w[members]) <= p.group_caps_usd[g - 1] / total)
    # E * w / (a + w) = E - E * a / (a + w)
    reward = cp.sum(emission) - cp.sum(cp.multiply(emission * others, cp.inv_pos(others + w)))
    objective = base @ w + reward - conv @ cp.pos(w - h)
    prob = cp.Problem(cp.Maximize(objective), cons)

    best_value, best_x = -math.inf, None
    traded = ("up", "down") if p.min_withdrawal_usd > 0 else ("on",)
    states = [("keep", "exit", *traded) if held[i] > 0 else ("off", "on") for i in range(n)]
    for combo in itertools.product(*states):
        lo = np.zeros(n)
        hi = np.zeros(n)
        fixed_cost = 0.0
        selected = 0
        ok = True
        for i, state in enumerate(combo):
            if state == "keep":  # x = h, no trade: still must respect constraint 3-6
                ok = m - 1e-12 <= h[i] <= ub[i] + 1e-12 and h[i] >= low[i] - 1e-12
                lo[i] = hi[i] = h[i]
                selected += 1
            elif state in ("off", "exit"):
                ok = low[i] <= 0
                fixed_cost += gas[i] if state == "exit" else 0.0
            else:
                lo[i], hi[i] = max(m, low[i]), ub[i]
                if state == "up":  # 8. a held pool kept at least at its holding
                    lo[i] = max(lo[i], h[i])
                elif state == "down":  # 8. or reduced to its withdrawal ceiling at most
                    hi[i] = min(hi[i], max(held[i] - p.min_withdrawal_usd, 0.0) / total)
                ok = lo[i] <= hi[i] + 1e-12
                fixed_cost += gas[i]
                selected += 1
            if not ok:
                break
        if not ok or selected < p.min_pools or lo.sum() > 1 + 1e-12 or hi.sum() < 1 - 1e-12:
            continue
        lo_p.value, hi_p.value = lo, np.maximum(hi, lo)
        try:
            prob.solve(
                solver=cp.CLARABEL,
                tol_gap_abs=1e-10,
                tol_gap_rel=1e-10,
                tol_feas=1e-10,
                tol_ktratio=1e-8,
            )
        except cp.SolverError:
            continue
        if prob.status != cp.OPTIMAL:
            continue
        value = prob.value - fixed_cost
        if value > best_value:
            best_value, best_x = value, np.asarray(w.value) * total
    if best_x is None:
        return "infeasible", None, None
    return "optimal", best_x, best_value - p.exit_gas_usd / horizon


def pwl_error_bound(p: Problem, pieces: int = milp_backend.DILUTION_PIECES) -> float:
    """Sum over pools of the largest gap between E x/(a+x) and its chords on [0, U] (USD/day).

    A solver that maximises the chord approximation loses at most this against the exact model.
    """
    emission = p.reward_emission_per_day()
    others = p.others_tvl()
    total = 0.0
    for i in range(p.n):
        cap = min(float(p.upper[i]), p.total_usd)
        if emission[i] <= 0 or cap <= 0:
            continue
        e, a = float(emission[i]), float(others[i])
        f = lambda x, e=e, a=a: e * x / (a + x)  # noqa: E731
        worst = 0.0
        points = [cap * k / pieces for k in range(pieces + 1)]
        for lo, hi in zip(points[:-1], points[1:], strict=True):
            slope = (f(hi) - f(lo)) / (hi - lo)
            # f'(x) = e a / (a + x)^2 = slope
            xs = min(max(math.sqrt(e * a / slope) - a, lo), hi) if slope > 0 else lo
            worst = max(worst, f(xs) - (f(lo) + slope * (xs - lo)))
        total += worst
    return total


def linear_instance(seed: int, n: int, with_holdings: bool, vanished: bool):
    """A random linear problem. The capital is a multiple of 0.20 USD (see the cent bug test)."""
    rng = np.random.default_rng(seed)
    universe = random_universe(rng, n)
    total = int(rng.uniform(1e5, 5e6) * 5) * 0.2
    total = round(total, 2)
    if with_holdings:
        holdings = random_holdings(
            rng, universe, total, max_pools=4, extra_pools=("gone-pool",) if vanished else ()
        )
    else:
        holdings = idle(total)
    p = random_params(rng, total, n)
    problem, _ = build_problem(universe, holdings, p, default_lists_for(universe))
    return problem


def tolerance(reference: float, rel: float, abs_: float) -> float:
    return abs_ + rel * abs(reference)


def check_against(problem: Problem, reference: tuple, backend: str, presolve: bool = True):
    status, _, ref_obj = reference
    outcome = solve(problem, backend, presolve=presolve)
    assert outcome.status == status, (backend, presolve, outcome.status, status, outcome.message)
    if status != "optimal":
        assert outcome.x is None
        return None
    x = outcome.x
    assert x.shape == (problem.n,)
    assert violations(problem, x) == [], (backend, violations(problem, x))
    obj = evaluate(problem, x).objective_usd_per_day
    rel, abs_ = (CONVEX_REL, CONVEX_ABS) if backend == "convex" else (MILP_REL, MILP_ABS)
    assert obj == pytest.approx(ref_obj, abs=tolerance(ref_obj, rel, abs_)), (backend, presolve)
    return obj


def diluted_instance(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 6))
    universe = random_universe(rng, n, tvl_range=(2e6, 3e7), reward_share=0.9)
    total = round(int(rng.uniform(5e5, 3e6) * 5) * 0.2, 2)
    holdings = random_holdings(rng, universe, total, max_pools=2)
    p = random_params(
        rng,
        total,
        n,
        yield_model="diluted",
        min_pools=int(rng.integers(0, 3)),
        group1_max_pct=1.0,
        group2_max_pct=float(rng.choice([0.5, 1.0])),
        group3_max_pct=float(rng.choice([0.3, 1.0])),
        max_alloc_percentage=float(rng.choice([0.4, 0.6])),
        min_withdrawal_pct=0.0,
        tvl_limit_percentage=float(rng.choice([0.3, 0.6, 1.0])),
        position_max_pct_pool_tvl=float(rng.choice([0.3, 0.6, 1.0])),
    )
    # constraint 8 on a quarter of the instances, drawn last so the others stay as they were
    p = p.model_copy(update={"min_withdrawal_pct": float(rng.choice([0.0, 0.0, 0.0, 0.1]))})
    problem, _ = build_problem(universe, holdings, p, default_lists_for(universe))
    return problem


def tie_problem(spec, min_pools: int):
    """Groups of duplicate pools (equal rate, TVL, chain) that differ only by id: exact ties.

    `spec` is a list of (apy, tvl, copies).
    """
    rows = []
    for apy, tvl, copies in spec:
        for _ in range(copies):
            rows.append(pool_row(f"d{len(rows):02d}", apy=apy, tvl=tvl, chain="Arbitrum"))
    universe = universe_of(rows)
    p = params(
        min_pools=min_pools,
        min_position_usd=5000.0,
        gas_usd={"default": 1.0},
        max_alloc_percentage=0.3,
        tvl_limit_percentage=0.02,
        position_max_pct_pool_tvl=0.05,
    )
    problem, _ = build_problem(universe, idle(1_000_000), p, default_lists_for(universe))
    return problem


def tie_instance(seed: int):
    rng = np.random.default_rng(seed)
    spec = [
        (float(rng.uniform(2, 10)), float(rng.uniform(5e6, 5e7)), int(rng.integers(2, 5)))
        for _ in range(4)
    ]
    return tie_problem(spec, int(rng.integers(0, 5)))
