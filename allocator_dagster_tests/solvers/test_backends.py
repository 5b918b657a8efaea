"""Both solver backends against the independent references of `support.references`.

Objectives of the backends are always recomputed with `model.evaluate` on the returned x.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator_dagster.model import build_problem, evaluate, violations
from allocator_dagster.solvers import milp as milp_backend
from allocator_dagster.solvers import solve
from allocator_dagster_tests.support.instances import (
    default_lists_for,
    holdings_of,
    idle,
    params,
    pool_row,
    universe_of,
)
from allocator_dagster_tests.support.references import (
    BACKENDS,
    CONVEX_ABS,
    CONVEX_REL,
    DAY,
    MILP_ABS,
    MILP_REL,
    SETTINGS,
    check_against,
    diluted_instance,
    linear_instance,
    pwl_error_bound,
    reference_diluted,
    reference_linear,
    tolerance,
)


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
        objectives[backend] = check_against(problem, reference, backend)
    if reference[0] == "optimal":
        # presolve off gives the same optimum
        for backend in BACKENDS:
            off = check_against(problem, reference, backend, presolve=False)
            assert off == pytest.approx(objectives[backend], abs=2e-3)
    if problem.is_held.any():
        only = problem.yield_only()
        ref_only = reference_linear(only)
        for backend in BACKENDS:
            check_against(only, ref_only, backend)
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
            tol = tolerance(ref_obj, CONVEX_REL, CONVEX_ABS)
        else:
            tol = pwl_error_bound(problem) + tolerance(ref_obj, MILP_REL, MILP_ABS)
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
