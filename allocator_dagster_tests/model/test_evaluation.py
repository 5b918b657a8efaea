"""Evaluating an allocation: yields, costs and limit violations of MODEL.md.

Every expectation here is derived from MODEL.md (the contract), not from the implementation.
"""

from __future__ import annotations

import numpy as np
import pytest

from allocator_dagster.model import (
    Violation,
    ViolationKind,
    evaluate,
    violations,
)
from allocator_dagster_tests.support.instances import (
    holdings_of,
    idle,
    pool_row,
)
from allocator_dagster_tests.support.problems import build, lists

DAY = 36500.0


def _two_pool_problem(yield_model="linear", **overrides):
    rows = [
        pool_row("a", symbol="USDC", apy=10.0, tvl=20_000_000.0, chain="Ethereum"),
        pool_row(
            "b",
            symbol="DAI",
            apy=6.0,
            apy_base=2.0,
            apy_reward=4.0,
            tvl=5_000_000.0,
            chain="Arbitrum",
        ),
        pool_row("c", symbol="USDT", apy=4.0, tvl=8_000_000.0, chain="Base"),
    ]
    h = holdings_of({"a": "100000.00", "b": "50000.00"}, idle_usd="50000.00")
    settings = dict(
        yield_model=yield_model,
        gas_usd={"Ethereum": 10.0, "Arbitrum": 1.0, "Base": 0.5},
        conversion_penalty_bps=20.0,
        cost_horizon_days=10,
        tvl_limit_percentage=1.0,
        position_max_pct_pool_tvl=1.0,
        position_max_pct_total_assets=1.0,
        max_alloc_percentage=1.0,
    )
    settings.update(overrides)
    problem, _ = build(rows, holdings=h, **settings)
    assert list(problem.pool_ids) == ["a", "b", "c"]
    return problem


class TestEvaluate:
    def test_linear_yield_gas_and_conversion(self):
        p = _two_pool_problem()
        x = np.array([100_000.0, 30_000.0, 70_000.0])  # a untouched, b down, c new
        e = evaluate(p, x)
        yields = np.array([100_000 * 10.0, 30_000 * 6.0, 70_000 * 4.0]) / DAY
        assert e.yield_per_pool == pytest.approx(yields, rel=1e-12)
        assert e.daily_yield_usd == pytest.approx(yields.sum(), rel=1e-12)
        # gas on moved pools only: b (withdrawal) and c (deposit)
        assert e.gas_per_pool.tolist() == [0.0, 1.0, 0.5]
        # conversion on positive moves of non-base symbols: only c (USDT) moves up
        assert e.conversion_per_pool == pytest.approx([0.0, 0.0, 70_000 * 0.002])
        costs = 1.5 + 140.0
        assert e.costs_usd == pytest.approx(costs)
        assert e.objective_usd_per_day == pytest.approx(yields.sum() - costs / 10, rel=1e-12)
        assert e.horizon_value_usd == pytest.approx(10 * yields.sum() - costs, rel=1e-12)

    def test_no_move_no_cost(self):
        p = _two_pool_problem()
        x = np.array([100_000.0, 50_000.0, 50_000.0])
        e = evaluate(p, x)
        assert e.gas_per_pool.tolist() == [0.0, 0.0, 0.5]
        assert e.conversion_per_pool == pytest.approx([0.0, 0.0, 100.0])

    def test_conversion_not_charged_on_base_token_increase(self):
        p = _two_pool_problem()
        x = np.array([150_000.0, 50_000.0, 0.0])  # a (USDC, base) grows
        e = evaluate(p, x)
        assert e.conversion_usd == 0.0
        assert e.gas_usd == 10.0

    def test_diluted_yield_formula(self):
        p = _two_pool_problem("diluted")
        x = np.array([80_000.0, 120_000.0, 0.0])
        e = evaluate(p, x)
        # b: base 2 %, reward 4 % of a 5M TVL that contains our 50k
        emission_b = 4.0 * 5_000_000.0 / DAY
        expected_b = 120_000 * 2.0 / DAY + emission_b * 120_000 / (5_000_000 - 50_000 + 120_000)
        # a: no reward part -> linear in apyBase (= apy)
        expected_a = 80_000 * 10.0 / DAY
        assert e.yield_per_pool == pytest.approx([expected_a, expected_b, 0.0], rel=1e-12)

    def test_diluted_equals_linear_at_current_holding(self):
        """At x = h the pool's reward share equals its current reward APY: no dilution yet."""
        p = _two_pool_problem("diluted")
        x = np.array([100_000.0, 50_000.0, 50_000.0])
        e = evaluate(p, x)
        assert e.yield_per_pool[1] == pytest.approx(50_000 * 6.0 / DAY, rel=1e-12)

    def test_diluted_is_below_linear_for_a_larger_deposit(self):
        p = _two_pool_problem("diluted")
        x = np.array([0.0, 200_000.0, 0.0])
        assert evaluate(p, x).yield_per_pool[1] < 200_000 * 6.0 / DAY

    def test_exit_gas_is_a_cost(self):
        rows = [pool_row("a", chain="Arbitrum"), pool_row("b", symbol="DAI", chain="Ethereum")]
        h = holdings_of({"b": 1000}, idle_usd=0)
        problem, _ = build(
            rows,
            holdings=h,
            lst=lists(blacklisted=("DAI",)),
            gas_usd={"Ethereum": 9.0, "Arbitrum": 1.0},
            cost_horizon_days=3,
            conversion_penalty_bps=0.0,
        )
        e = evaluate(problem, np.array([1000.0]))
        assert e.gas_usd == pytest.approx(10.0)
        assert e.objective_usd_per_day == pytest.approx(1000 * 5.0 / DAY - 10.0 / 3)


class TestViolations:
    def _problem(self):
        rows = [
            pool_row(f"p{i}", symbol=s, tvl=10_000_000.0) for i, s in enumerate(["USDC", "DAI"])
        ]
        rows.append(pool_row("p2-il", symbol="USDC-USDT", il_risk="yes", exposure="multi"))
        problem, _ = build(
            rows,
            holdings=idle(1_000_000),
            tvl_limit_percentage=0.05,
            position_max_pct_pool_tvl=0.06,
            position_max_pct_total_assets=1.0,
            max_alloc_percentage=1.0,
            min_pools=2,
            min_position_usd=100_000.0,
            group3_max_pct=0.1,
            profit_optimization=True,
        )
        return problem  # caps: 500k, 500k, 1M (p2-il); group 3 cap 100k

    def test_feasible_point_has_no_violation(self):
        p = self._problem()
        assert violations(p, np.array([500_000.0, 400_000.0, 100_000.0])) == []

    @pytest.mark.parametrize(
        "x, name",
        [
            ([500_000.0, 400_000.0, 90_000.0], "full_allocation"),
            ([600_000.0, 300_000.0, 100_000.0], "tvl_limit_percentage"),
            ([500_000.0, 300_000.0, 200_000.0], "group3_max_pct"),
            ([500_000.0, 450_000.0, 50_000.0], "min_position_usd"),
            ([500_000.0, 500_000.0, 0.0], None),
            ([1_100_000.0, -100_000.0, 0.0], "non_negative"),
        ],
    )
    def test_each_constraint_is_named(self, x, name):
        p = self._problem()
        got = {v.constraint for v in violations(p, np.array(x))}
        if name is None:
            assert got == set()
        else:
            assert name in got

    def test_kinds_classify_without_reading_the_text(self):
        p = self._problem()
        found = violations(p, np.array([600_000.0, 290_000.0, 100_000.0]))
        kinds = {v.constraint: v.kind for v in found}
        assert kinds == {
            "full_allocation": ViolationKind.WEIGHTS,
            "tvl_limit_percentage": ViolationKind.LIMITS,
        }
        assert found[0].message == "full_allocation: sum 990000.00 != T 1000000.00"
        record = Violation(None, "detail amounts add up to 1 USD", ViolationKind.DETAILS)
        assert str(record) == "detail amounts add up to 1 USD"

    def test_min_pools(self):
        p = self._problem()
        x = np.array([500_000.0, 0.0, 0.0])
        got = {v.constraint for v in violations(p, x)}
        assert "min_pools" in got
