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

    def _withdrawal(self, pct: float, min_pools: int = 0, min_position: float = 0.0):
        # both limits 500,000 USD (5 % of a 10 M USD pool); "shrunk" holds 520,000 above its own
        rows = [pool_row("shrunk", tvl=10_000_000.0), pool_row("other", tvl=10_000_000.0)]
        problem, _ = build(
            rows,
            holdings=holdings_of({"shrunk": "520000.00"}, idle_usd="470000.00"),
            tvl_limit_percentage=0.05,
            max_alloc_percentage=1.0,
            position_max_pct_total_assets=1.0,
            min_withdrawal_pct=pct,
            min_pools=min_pools,
            min_position_usd=min_position,
        )
        return problem

    def test_minimum_withdrawal_that_cuts_a_held_pool_below_the_capital(self):
        """Constraint 8: "shrunk" must be reduced, by at least 99,000 USD (10 % of 990,000), so
        it keeps at most 421,000: the pools take 921,000 of the 990,000 USD."""
        problem = self._withdrawal(0.1)
        messages = diagnose(problem)
        hit = [m for m in messages if "min_withdrawal_pct" in m]
        assert hit, messages
        assert "shrunk" in hit[0] and "99,000.00" in hit[0] and "421,000.00" in hit[0]
        assert "921,000.00" in hit[0] and "990,000.00" in hit[0]
        _assert_infeasible(problem)
        # without the minimum withdrawal (or with a small one) the day is feasible
        for pct in (0.0, 0.01):
            feasible = self._withdrawal(pct)
            assert diagnose(feasible) == []
            assert solve(feasible, "convex").status == "optimal"

    def test_minimum_withdrawal_that_leaves_too_few_pools_for_min_pools(self):
        """min_pools=2 with min_position 450,000: "shrunk" could hold it after a 1 % cut, but a
        20 % minimum withdrawal (198,000) leaves it at most 322,000: only one pool can hold it."""
        problem = self._withdrawal(0.2, min_pools=2, min_position=450_000.0)
        messages = diagnose(problem)
        hit = [m for m in messages if "min_pools=2" in m]
        assert hit and "min_withdrawal_pct" in hit[0] and "shrunk" in hit[0], messages
        _assert_infeasible(problem)
        assert solve(self._withdrawal(0.01, 2, 450_000.0), "convex").status == "optimal"
