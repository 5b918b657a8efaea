"""Both solver backends against an independent reference built from MODEL.md.

The references read only the `Problem` arrays of `build_problem` (bounds, rates, groups, gas,
conversion, holdings) and state the model of MODEL.md themselves:

- `reference_linear`: the linear model as one MILP in scipy.optimize.milp (HiGHS), with x and
  a selection binary z for every pool, a trade binary t for every held pool (gas is a fixed cost
  on z for pools not held and on t for held pools), a positive-move variable for the conversion
  of held pools, group caps, min_pools, min_position_usd and the per-pool caps. The binaries of
  its answer are then fixed and the LP re-solved, so its objective is exact to LP precision.
- `reference_diluted`: tiny instances only. Every pool's state (not held: off/on; held:
  keep/exit/on) is enumerated and the remaining concave problem is solved with cvxpy+Clarabel
  at tight tolerances; the best state wins.

Objectives of the backends are always recomputed with `model.evaluate` on the returned x.
"""

from __future__ import annotations

import itertools
import math

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from allocator_dagster.model import Problem, build_problem, evaluate, violations
from allocator_dagster.solvers import milp as milp_backend
from allocator_dagster.solvers import solve
from allocator_dagster_tests.support.instances import (
    default_lists_for,
    holdings_of,
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


# ====================================================================== references


def reference_linear(p: Problem) -> tuple[str, np.ndarray | None, float | None]:
    """(status, x in USD, objective in USD/day) of the linear model, from MODEL.md."""
    n, total, horizon = p.n, p.total_usd, p.horizon_days
    if n == 0 or total <= 0:
        return "infeasible", None, None
    held = np.asarray(p.held, dtype=float)
    hidx = np.flatnonzero(held > 0)
    k = len(hidx)
    # variables: w (n weights x/T), z (n), t (k), u (k positive move of held pools)
    W, Z, TR, UP = 0, n, 2 * n, 2 * n + k
    nv = 2 * n + 2 * k
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
    r_idx, c_idx, vals = [], [], []
    for r, (coefs, _, _) in enumerate(rows):
        for col, v in coefs.items():
            r_idx.append(r)
            c_idx.append(col)
            vals.append(v)
    A = coo_matrix((vals, (r_idx, c_idx)), shape=(len(rows), nv)).tocsr()
    cons = LinearConstraint(A, [r[1] for r in rows], [r[2] for r in rows])
    lo = np.concatenate([lb, np.zeros(n), np.zeros(k), np.zeros(k)])
    hi = np.concatenate([ub, np.ones(n), np.ones(k), np.full(k, np.inf)])
    integrality = np.concatenate([np.zeros(n), np.ones(n), np.ones(k), np.zeros(k)])
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
    states = [("keep", "exit", "on") if held[i] > 0 else ("off", "on") for i in range(n)]
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


# ====================================================================== instances


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


def _tol(reference: float, rel: float, abs_: float) -> float:
    return abs_ + rel * abs(reference)


def _check_against(problem: Problem, reference: tuple, backend: str, presolve: bool = True):
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
    assert obj == pytest.approx(ref_obj, abs=_tol(ref_obj, rel, abs_)), (backend, presolve)
    return obj


# ====================================================================== linear model


@settings(max_examples=150, **SETTINGS)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(5, 40),
    with_holdings=st.booleans(),
    vanished=st.booleans(),
)
def test_linear_backends_match_reference(seed, n, with_holdings, vanished):
    problem = linear_instance(seed, n, with_holdings, vanished)
    reference = reference_linear(problem)
    objectives = {}
    for backend in BACKENDS:
        objectives[backend] = _check_against(problem, reference, backend)
    if reference[0] == "optimal":
        # presolve off gives the same optimum
        for backend in BACKENDS:
            off = _check_against(problem, reference, backend, presolve=False)
            assert off == pytest.approx(objectives[backend], abs=2e-3)
    if problem.is_held.any():
        only = problem.yield_only()
        ref_only = reference_linear(only)
        for backend in BACKENDS:
            _check_against(only, ref_only, backend)
        if reference[0] == "optimal" and ref_only[0] == "optimal":
            assert ref_only[2] <= reference[2] + 1e-6  # a restriction never earns more


def test_reference_sees_both_outcomes():
    """The random instances cover feasible and infeasible days (else the property is weak)."""
    statuses = set()
    optimal_with_binaries = 0
    for seed in range(40):
        problem = linear_instance(seed, 12, seed % 2 == 0, False)
        status, _, _ = reference_linear(problem)
        statuses.add(status)
        if status == "optimal" and problem.needs_integers:
            optimal_with_binaries += 1
    assert statuses == {"optimal", "infeasible"}
    assert optimal_with_binaries >= 10


def test_gas_keeps_a_slightly_worse_position():
    """Moving costs gas/H per move; a 0.1 % better pool is not worth 2 x 50 USD of gas over 7 days."""
    rows = [
        pool_row("held", apy=5.0, tvl=1e9, chain="Ethereum"),
        pool_row("better", apy=5.1, tvl=1e9, chain="Ethereum"),
    ]
    universe = universe_of(rows)
    h = holdings_of({"held": 100_000}, idle_usd=0)
    common = dict(
        gas_usd={"default": 50.0},
        max_alloc_percentage=1.0,
        position_max_pct_total_assets=1.0,
        conversion_penalty_bps=0.0,
    )
    for horizon, expect_move in ((7, False), (3650, True)):
        p = params(cost_horizon_days=horizon, **common)
        problem, _ = build_problem(universe, h, p, default_lists_for(universe))
        # moving all earns 100000*0.1/36500 = 0.274 USD/day and costs 100 USD once
        for backend in BACKENDS:
            out = solve(problem, backend)
            assert out.status == "optimal"
            x = dict(zip(problem.pool_ids, out.x, strict=True))
            if expect_move:
                assert x["better"] == pytest.approx(100_000, abs=0.01)
            else:
                assert x["held"] == 100_000 and x["better"] == 0


def test_conversion_counts_only_positive_moves():
    """Reducing a held non-base pool is free; moving into the base token is free; into another
    token costs conversion_penalty_bps of the positive move."""
    rows = [
        pool_row("dai", symbol="DAI", apy=4.0, tvl=1e9),
        pool_row("frax", symbol="FRAX", apy=4.7, tvl=1e9),
        pool_row("usdc", symbol="USDC", apy=4.6, tvl=1e9),
        pool_row("usdt", symbol="USDT", apy=4.5, tvl=1e9),
    ]
    universe = universe_of(rows)
    h = holdings_of({"dai": 60_000, "usdt": 40_000}, idle_usd=0)
    p = params(
        gas_usd={"default": 0.0},
        max_alloc_percentage=1.0,
        position_max_pct_total_assets=1.0,
        conversion_penalty_bps=100.0,
        cost_horizon_days=30,
    )
    problem, _ = build_problem(universe, h, p, default_lists_for(universe))
    # FRAX earns 0.1 % more than USDC (2.7e-6 USD/day per USD) but converting costs
    # 1 % / 30 days = 3.3e-4 USD/day per USD: everything goes to USDC, at no cost.
    ref = reference_linear(problem)
    assert ref[0] == "optimal"
    assert ref[2] == pytest.approx(100_000 * 4.6 / DAY, rel=1e-9)
    for backend in BACKENDS:
        out = solve(problem, backend)
        x = dict(zip(problem.pool_ids, out.x, strict=True))
        assert x == pytest.approx({"dai": 0, "frax": 0, "usdc": 100_000, "usdt": 0}, abs=0.01)
        e = evaluate(problem, out.x)
        assert e.costs_usd == 0.0
        assert e.objective_usd_per_day == pytest.approx(ref[2], abs=1e-6)


def test_unknown_backend():
    problem, _ = build_problem(
        universe_of([pool_row("a")]),
        idle(1000),
        params(),
        default_lists_for(universe_of([pool_row("a")])),
    )
    with pytest.raises(ValueError, match="unknown solver backend"):
        solve(problem, "gurobi")


# ====================================================================== infeasible days


def _infeasible_cases():
    five = [pool_row(f"p{i}", tvl=1e9) for i in range(5)]
    yield (
        "min_pools above eligible",
        five,
        idle(1_000_000),
        dict(min_pools=6, min_position_usd=1.0, max_alloc_percentage=1.0),
    )
    yield (
        "group caps sum below one",
        five,
        idle(1_000_000),
        dict(group1_max_pct=0.9, max_alloc_percentage=1.0),
    )
    yield "per-pool caps too small", five, idle(1_000_000), dict(max_alloc_percentage=0.19)
    yield (
        "min positions above capital",
        five,
        idle(1_000_000),
        dict(min_pools=4, min_position_usd=260_000.0, max_alloc_percentage=1.0),
    )
    il = [
        pool_row("il1", il_risk="yes", exposure="multi", symbol="USDC-USDT", tvl=1e9),
        pool_row("il2", il_risk="yes", exposure="multi", symbol="USDC-DAI", tvl=1e9),
        pool_row("s1", tvl=1e9),
    ]
    yield (
        "only group 1 and 3 pools, g1 cap small",
        il,
        idle(1_000_000),
        dict(
            group1_max_pct=0.3,
            group3_max_pct=0.5,
            max_alloc_percentage=1.0,
            position_max_pct_total_assets=1.0,
        ),
    )
    yield (
        "min_position above every cap",
        five,
        idle(1_000_000),
        dict(min_pools=1, min_position_usd=300_000.0, max_alloc_percentage=0.25),
    )


@pytest.mark.parametrize("case", list(_infeasible_cases()), ids=lambda c: c[0])
def test_infeasible_instances(case):
    _, rows, holdings, overrides = case
    universe = universe_of(rows)
    problem, _ = build_problem(universe, holdings, params(**overrides), default_lists_for(universe))
    assert reference_linear(problem)[0] == "infeasible"
    for backend in BACKENDS:
        for presolve in (True, False):
            out = solve(problem, backend, presolve=presolve)
            assert out.status == "infeasible", (backend, presolve)
            assert out.x is None


def test_yield_only_infeasible_when_a_holding_breaks_its_cap():
    rows = [pool_row("shrunk", tvl=2_000_000.0), pool_row("other", tvl=1e9, symbol="DAI")]
    universe = universe_of(rows)
    h = holdings_of({"shrunk": 300_000}, idle_usd=1000)
    p = params(max_alloc_percentage=1.0, position_max_pct_total_assets=1.0)
    problem, _ = build_problem(universe, h, p, default_lists_for(universe))
    only = problem.yield_only()
    assert reference_linear(only)[0] == "infeasible"
    for backend in BACKENDS:
        assert solve(only, backend).status == "infeasible"
        assert solve(problem, backend).status == "optimal"


# ====================================================================== cent rounding (milp)


def _five_at_twenty_percent(n_pools: int, total: str):
    rows = [pool_row(f"a{i}", apy=8.0 - 0.1 * i, tvl=1e9) for i in range(n_pools)]
    universe = universe_of(rows)
    p = params(max_alloc_percentage=0.2, gas_usd={"default": 5.0}, min_position_usd=10_000.0)
    problem, _ = build_problem(universe, idle(total), p, default_lists_for(universe))
    return problem


def test_milp_is_exact_when_caps_are_whole_cents():
    problem = _five_at_twenty_percent(5, "100000.05")
    ref = reference_linear(problem)
    assert ref[0] == "optimal"
    for backend in BACKENDS:
        _check_against(problem, ref, backend)


def test_milp_feasible_when_caps_are_fractional_cents():
    problem = _five_at_twenty_percent(5, "100000.03")
    ref = reference_linear(problem)
    assert ref[0] == "optimal"
    assert solve(problem, "convex").status == "optimal"
    out = solve(problem, "milp")
    assert out.status == "optimal", out.message


def test_milp_with_presolve_and_fractional_cent_caps():
    problem = _five_at_twenty_percent(6, "100000.03")
    ref = reference_linear(problem)
    assert ref[0] == "optimal"
    out = solve(problem, "milp")
    assert out.status == "optimal", out.message
    obj = evaluate(problem, out.x).objective_usd_per_day
    assert obj == pytest.approx(ref[2], abs=_tol(ref[2], MILP_REL, MILP_ABS))


# ====================================================================== diluted model


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
        tvl_limit_percentage=float(rng.choice([0.3, 0.6, 1.0])),
        position_max_pct_pool_tvl=float(rng.choice([0.3, 0.6, 1.0])),
    )
    problem, _ = build_problem(universe, holdings, p, default_lists_for(universe))
    return problem


DILUTED_SEEDS = list(range(24))


@pytest.mark.parametrize("seed", DILUTED_SEEDS)
def test_diluted_backends_match_enumerated_reference(seed):
    problem = diluted_instance(seed)
    status, _, ref_obj = reference_diluted(problem)
    for backend in BACKENDS:
        out = solve(problem, backend)
        assert out.status == status, backend
        if status != "optimal":
            continue
        assert violations(problem, out.x) == []
        obj = evaluate(problem, out.x).objective_usd_per_day
        if backend == "convex":
            tol = _tol(ref_obj, CONVEX_REL, CONVEX_ABS)
        else:
            tol = pwl_error_bound(problem) + _tol(ref_obj, MILP_REL, MILP_ABS)
        assert obj == pytest.approx(ref_obj, abs=tol), (backend, obj - ref_obj, tol)


def test_diluted_instances_cover_both_paths():
    """Some instances need binaries (gas, minimums) and some are purely continuous."""
    kinds = set()
    feasible = 0
    for seed in DILUTED_SEEDS:
        problem = diluted_instance(seed)
        kinds.add(problem.needs_integers)
        feasible += reference_diluted(problem)[0] == "optimal"
    assert kinds == {True, False}
    assert feasible >= len(DILUTED_SEEDS) // 2


def test_dilution_changes_the_answer():
    """A pool with a large reward share of a small TVL: linear piles in, diluted spreads out."""
    rows = [
        pool_row("small-farm", apy=6.0, apy_base=2.0, apy_reward=4.0, tvl=2_000_000.0),
        pool_row("big", symbol="DAI", apy=5.0, tvl=1e9),
    ]
    universe = universe_of(rows)
    common = dict(
        tvl_limit_percentage=1.0,
        position_max_pct_pool_tvl=1.0,
        position_max_pct_total_assets=1.0,
        max_alloc_percentage=1.0,
        gas_usd={"default": 0.0},
        conversion_penalty_bps=0.0,
    )
    lin, _ = build_problem(universe, idle(1_000_000), params(**common), default_lists_for(universe))
    dil, _ = build_problem(
        universe,
        idle(1_000_000),
        params(yield_model="diluted", **common),
        default_lists_for(universe),
    )
    # diluted optimum: 2/36500 + 4*2e6/36500 * a/(a+x)^2 = 5/36500 with a = 2e6
    x_star = math.sqrt(4 * 2e6 * 2e6 / 3) - 2e6  # about 309 kUSD
    for backend in BACKENDS:
        x_lin = solve(lin, backend).x
        assert x_lin[list(lin.pool_ids).index("small-farm")] == pytest.approx(1_000_000)
        x_dil = solve(dil, backend).x
        got = x_dil[list(dil.pool_ids).index("small-farm")]
        # milp: the optimum of 8 chords over [0, 1e6] lies within one chord of x*
        tol = 1e-4 * x_star if backend == "convex" else 1e6 / milp_backend.DILUTION_PIECES
        assert got == pytest.approx(x_star, abs=tol), backend


def test_milp_reports_dilution_as_approximated():
    problem = diluted_instance(1)
    out = solve(problem, "milp")
    notes = {n.part: n for n in out.exactness}
    assert notes["yield"].exact is False and "piecewise" in notes["yield"].treatment


# ====================================================================== determinism


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


# 12 pools in 4 tie classes, min_pools=3: found by a random search
SLOW_SINGLE_WORKER = (
    [(4.171613, 44_584_300.0, 2), (7.433452, 44_153_980.0, 2), (3.818548, 45_295_170.0, 4),
     (2.148138, 36_837_300.0, 4)],
    3,
)  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_milp_is_deterministic_across_worker_counts(seed):
    problem = tie_instance(seed)
    answers = set()
    for workers in (2, 3, 4):
        out = milp_backend.solve(problem, workers=workers)
        assert out.status == "optimal"
        answers.add(out.x.tobytes())
    assert len(answers) == 1


@pytest.mark.parametrize("seed", range(6))
def test_convex_is_deterministic(seed):
    problem = tie_instance(seed)
    for presolve in (True, False):
        first = solve(problem, "convex", presolve=presolve)
        second = solve(problem, "convex", presolve=presolve)
        assert first.status == "optimal"
        assert first.x.tobytes() == second.x.tobytes()


def test_milp_single_worker_matches_multi_worker():
    problem = tie_problem(*SLOW_SINGLE_WORKER)
    reference = milp_backend.solve(problem, workers=2)
    assert reference.status == "optimal"
    single = milp_backend.solve(problem, workers=1, time_limit_s=3.0)
    assert single.status == "optimal"
    assert single.x.tobytes() == reference.x.tobytes()
