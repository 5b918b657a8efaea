"""Why a day is infeasible: the diagnosis names the limits that conflict."""

from __future__ import annotations

import pytest

from allocator_dagster.model import diagnose
from allocator_dagster.solvers import solve
from allocator_dagster_tests.support.instances import (
    holdings_of,
    idle,
    pool_row,
)
from allocator_dagster_tests.support.problems import build


def _assert_infeasible(problem):
    for backend in ("convex", "milp"):
        assert solve(problem, backend).status == "infeasible", backend


class TestDiagnose:
    def test_min_pools_above_eligible_count(self):
        rows = [pool_row(f"p{i}", symbol="USDC") for i in range(9)]
        rows.append(pool_row("bad", symbol="USDC", project="unknown"))
        problem, _ = build(rows, min_pools=12, min_position_usd=1000.0, max_alloc_percentage=1.0)
        messages = diagnose(problem)
        assert "min_pools=12 but only 9 pools are eligible" in messages
        _assert_infeasible(problem)

    def test_group_caps_sum_below_one(self):
        rows = [
            pool_row("g1", stablecoin=True, exposure="single"),
            pool_row("g2", stablecoin=False, symbol="DAI"),
            pool_row("g3", il_risk="yes", symbol="USDT"),
        ]
        problem, _ = build(
            rows,
            group1_max_pct=0.3,
            group2_max_pct=0.3,
            group3_max_pct=0.2,
            max_alloc_percentage=1.0,
            position_max_pct_total_assets=1.0,
        )
        messages = diagnose(problem)
        assert any("group caps sum to 0.8 < 1" in m for m in messages), messages
        _assert_infeasible(problem)

    def test_per_pool_caps_too_small(self):
        rows = [pool_row(f"p{i}", tvl=10_000_000.0) for i in range(3)]
        problem, _ = build(
            rows,
            holdings=idle(2_000_000),
            tvl_limit_percentage=0.05,
            max_alloc_percentage=1.0,
            position_max_pct_total_assets=1.0,
        )
        messages = diagnose(problem)
        # 3 pools x 500k = 1.5M < 2M
        assert any("per-pool limits" in m and "1,500,000.00" in m for m in messages), messages
        _assert_infeasible(problem)

    def test_min_pools_times_min_position_above_capital(self):
        rows = [pool_row(f"p{i}") for i in range(6)]
        problem, _ = build(
            rows,
            holdings=idle(100_000),
            min_pools=5,
            min_position_usd=25_000.0,
            max_alloc_percentage=1.0,
            position_max_pct_total_assets=1.0,
        )
        messages = diagnose(problem)
        assert any("min_pools x min_position_usd" in m and "125,000.00" in m for m in messages)
        _assert_infeasible(problem)

    def test_yield_only_with_held_pool_above_its_cap(self):
        rows = [pool_row("shrunk", tvl=2_000_000.0), pool_row("other", symbol="DAI", tvl=1e9)]
        h = holdings_of({"shrunk": 300_000}, idle_usd=1_000)
        problem, _ = build(
            rows,
            holdings=h,
            tvl_limit_percentage=0.05,
            max_alloc_percentage=1.0,
            position_max_pct_total_assets=1.0,
        )
        assert list(problem.pool_ids) == ["other", "shrunk"]
        assert problem.upper[1] == pytest.approx(100_000.0)
        only = problem.yield_only()
        messages = diagnose(only)
        hit = [m for m in messages if "shrunk" in m]
        assert hit and "tvl_limit_percentage" in hit[0] and "300,000.00" in hit[0], messages
        _assert_infeasible(only)
        # the full problem is feasible: the pool can be reduced
        assert solve(problem, "convex").status == "optimal"

    def test_yield_only_with_held_pool_below_min_position_and_no_room(self):
        rows = [pool_row("tiny", tvl=2_000_000.0), pool_row("other", symbol="DAI", tvl=1e9)]
        h = holdings_of({"tiny": "9000.00"}, idle_usd=991_000)
        problem, _ = build(
            rows,
            holdings=h,
            tvl_limit_percentage=0.0048,  # limit 9,600 USD: above the holding, below the minimum
            max_alloc_percentage=1.0,
            position_max_pct_total_assets=1.0,
            min_position_usd=10_000.0,
        )
        only = problem.yield_only()
        messages = diagnose(only)
        hit = [m for m in messages if "tiny" in m]
        assert hit and "9,000.00" in hit[0] and "no room to top it up" in hit[0], messages
        _assert_infeasible(only)

    def test_yield_only_with_held_pool_below_min_position_is_feasible(self):
        rows = [pool_row("small"), pool_row("other", symbol="DAI")]
        h = holdings_of({"small": "9998.84"}, idle_usd="990001.16")
        problem, _ = build(
            rows,
            holdings=h,
            max_alloc_percentage=1.0,
            position_max_pct_total_assets=1.0,
            min_position_usd=10_000.0,
        )
        only = problem.yield_only()
        assert diagnose(only) == []
        for backend in ("convex", "milp"):
            assert solve(only, backend).status == "optimal", backend

    def test_no_eligible_pool(self):
        problem, _ = build([pool_row("p1", project="nope")])
        assert problem.n == 0
        assert any("no pool is eligible" in m for m in diagnose(problem))
        _assert_infeasible(problem)

    def test_feasible_problem_has_no_diagnosis(self):
        rows = [pool_row(f"p{i}") for i in range(6)]
        problem, _ = build(rows, max_alloc_percentage=0.2)
        assert diagnose(problem) == []
