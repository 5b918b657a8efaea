"""The convex backend: the same answer on every call, with and without presolve; no answer that
the MIP solver's tolerances bent."""

from __future__ import annotations

import pytest

from allocator_dagster.model import evaluate, violations
from allocator_dagster.money import HALF_CENT_USD
from allocator_dagster.solvers import solve
from allocator_dagster_tests.support.instances import holdings_of, pool_row
from allocator_dagster_tests.support.problems import build
from allocator_dagster_tests.support.references import tie_instance


@pytest.mark.parametrize("seed", range(6))
def test_convex_is_deterministic(seed):
    problem = tie_instance(seed)
    for presolve in (True, False):
        first = solve(problem, "convex", presolve=presolve)
        second = solve(problem, "convex", presolve=presolve)
        assert first.status == "optimal"
        assert first.x.tobytes() == second.x.tobytes()


@pytest.mark.parametrize("held_usd", [0.01, 0.5, 5.0, 9.99, 999.99])
def test_a_holding_under_the_minimum_is_traded_in_full_mode(held_usd: float) -> None:
    """A holding under min_position_usd cannot stay as it is (constraint 6): it is emptied or
    topped up, and pays its gas. HiGHS's MIP row tolerance (1e-6 of T, 10 USD on 10 M USD)
    once let the untouched holding pass as selected, which saved the gas."""
    total = 10_000_000
    rows = [pool_row(pool, apy=apy, tvl=1e12) for pool, apy in (("a", 4.0), ("b", 5.0), ("c", 4.9))]
    problem, _ = build(
        rows,
        holdings_of({"a": held_usd}, total - held_usd),
        min_position_usd=1000.0,
        gas_usd={"default": 20.0},
        max_alloc_percentage=0.6,
        position_max_pct_total_assets=0.6,
    )
    for presolve in (True, False):
        out = solve(problem, "convex", presolve=presolve)
        assert out.status == "optimal"
        assert violations(problem, out.x, HALF_CENT_USD) == []
        a = float(out.x[list(problem.pool_ids).index("a")])
        assert a == 0.0 or a >= 1000.0
        exact = solve(problem, "milp", presolve=presolve)
        assert evaluate(problem, out.x).objective_usd_per_day == pytest.approx(
            evaluate(problem, exact.x).objective_usd_per_day, abs=1e-6
        )


@pytest.mark.parametrize("over_usd", [0.01, 7.26, 9.99])
def test_a_group_over_its_cap_by_cents_is_decided_exactly(over_usd: float) -> None:
    """Group 3 held at its cap yesterday; today the capital is a little lower, so the holdings
    are `over_usd` above the group3_max_pct cap and yield-only (x_i >= h_i) has no answer. The
    convex backend once returned "optimal" inside HiGHS's row tolerance (1e-6 of T), and the day
    failed with "group 3 holds 1,999,000.01 > cap 1,998,992.75" (sample, 2026-05-04)."""
    total = 9_994_963.71
    cap = 1_998_992.75  # 0.2 x total, on the cent grid
    held = {"il_a": 1_000_000.00, "il_b": round(cap - 1_000_000.00 + over_usd, 2)}
    held["stable"] = round(total - sum(held.values()), 2)
    rows = [
        pool_row("stable", apy=4.0, tvl=1e12),
        pool_row("il_a", symbol="USDC-USDT", apy=9.0, tvl=1e12, il_risk="yes", stablecoin=False),
        pool_row("il_b", symbol="DAI-USDC", apy=8.0, tvl=1e12, il_risk="yes", stablecoin=False),
    ]
    problem, _ = build(
        rows, holdings_of(held), max_alloc_percentage=1.0, position_max_pct_total_assets=1.0
    )
    only = problem.yield_only()
    assert only.group_caps_usd[2] == pytest.approx(cap, abs=0.005)
    assert only.floors_conflict()
    for backend in ("convex", "milp"):
        assert solve(only, backend).status == "infeasible", backend
    # Full mode: il_b is sold and the stable holding must absorb the cents the group cap leaves
    # over (paying its gas). Inside HiGHS's default MIP tolerance the convex answer kept it
    # untouched with the capital `over_usd` short of T; it is re-solved with a strict tolerance.
    full = solve(problem, "convex")
    assert full.status == "optimal"
    assert violations(problem, full.x, HALF_CENT_USD) == []
    assert full.x == pytest.approx(solve(problem, "milp").x, abs=HALF_CENT_USD)
