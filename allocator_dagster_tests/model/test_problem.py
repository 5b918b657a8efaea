"""The problem built from a day's pools: bounds, costs and forced exits of MODEL.md.

Every expectation here is derived from MODEL.md (the contract), not from the implementation.
"""

from __future__ import annotations

import pytest

from allocator_dagster.model import (
    CAP_NAMES,
    ModelInputError,
)
from allocator_dagster_tests.support.instances import (
    holdings_of,
    idle,
    pool_row,
)
from allocator_dagster_tests.support.problems import build, lists


class TestBounds:
    @pytest.mark.parametrize(
        "caps, tvl, expected, name",
        [
            ((0.03, 0.05, 0.6, 0.45), 10_000_000.0, 300_000.0, "tvl_limit_percentage"),
            ((0.03, 0.02, 0.6, 0.45), 10_000_000.0, 200_000.0, "position_max_pct_pool_tvl"),
            ((0.05, 0.05, 0.3, 0.45), 1e10, 300_000.0, "position_max_pct_total_assets"),
            ((0.05, 0.05, 0.6, 0.45), 1e10, 450_000.0, "max_alloc_percentage"),
        ],
    )
    def test_upper_is_the_smallest_cap(self, caps, tvl, expected, name):
        tvl_limit, pool_tvl, total_pct, max_alloc = caps
        problem, _ = build(
            [pool_row("p1", tvl=tvl)],
            holdings=idle(1_000_000),
            tvl_limit_percentage=tvl_limit,
            position_max_pct_pool_tvl=pool_tvl,
            position_max_pct_total_assets=total_pct,
            max_alloc_percentage=max_alloc,
        )
        assert problem.upper[0] == pytest.approx(expected)
        assert CAP_NAMES[int(problem.upper_cap[0])] == name

    def test_profit_mode_drops_only_max_alloc(self):
        rows = [pool_row("big", tvl=1e10), pool_row("small", tvl=5_000_000.0)]
        common = dict(
            tvl_limit_percentage=0.05,
            position_max_pct_pool_tvl=0.05,
            position_max_pct_total_assets=0.7,
            max_alloc_percentage=0.2,
        )
        off, _ = build(rows, holdings=idle(1_000_000), profit_optimization=False, **common)
        on, _ = build(rows, holdings=idle(1_000_000), profit_optimization=True, **common)
        assert off.upper.tolist() == pytest.approx([200_000.0, 200_000.0])
        assert on.upper.tolist() == pytest.approx([700_000.0, 250_000.0])

    def test_group_caps_in_usd(self):
        problem, _ = build(
            [pool_row("p1")],
            holdings=idle(2_000_000),
            group1_max_pct=0.7,
            group2_max_pct=0.25,
            group3_max_pct=0.1,
        )
        assert problem.group_caps_usd == pytest.approx((1_400_000.0, 500_000.0, 200_000.0))
        assert problem.total_usd == 2_000_000.0

    def test_total_is_idle_plus_holdings(self):
        h = holdings_of({"p1": "1000.10", "p2": "2000.20"}, idle_usd="0.05")
        problem, _ = build([pool_row("p1"), pool_row("p2", symbol="DAI")], holdings=h)
        assert problem.total_usd == pytest.approx(3000.35)
        assert dict(zip(problem.pool_ids, problem.held, strict=True)) == pytest.approx(
            {"p1": 1000.10, "p2": 2000.20}
        )

    def test_conversion_only_for_symbols_other_than_base_token(self):
        rows = [
            pool_row("base", symbol="USDC"),
            pool_row("lower", symbol="usdc"),
            pool_row("pair", symbol="USDC-USDT"),
            pool_row("other", symbol="DAI"),
        ]
        problem, _ = build(rows, conversion_penalty_bps=25.0, base_token="USDC")
        conv = dict(zip(problem.pool_ids, problem.conversion_rate, strict=True))
        assert conv == pytest.approx(
            {"base": 0.0, "lower": 0.0025, "pair": 0.0025, "other": 0.0025}
        )

    def test_gas_by_chain_with_default(self):
        rows = [
            pool_row("eth", chain="Ethereum"),
            pool_row("arb", chain="Arbitrum"),
            pool_row("other", chain="Sonic"),
        ]
        problem, _ = build(rows, gas_usd={"Ethereum": 12.0, "Arbitrum": 0.4, "default": 3.0})
        gas = dict(zip(problem.pool_ids, problem.gas, strict=True))
        assert gas == {"eth": 12.0, "arb": 0.4, "other": 3.0}

    def test_unknown_chain_without_default_names_pool_and_chain(self):
        rows = [pool_row("eth", chain="Ethereum"), pool_row("sonic-pool", chain="Sonic")]
        with pytest.raises(ModelInputError) as info:
            build(rows, gas_usd={"Ethereum": 12.0})
        assert "sonic-pool" in str(info.value) and "Sonic" in str(info.value)

    def test_ineligible_pool_on_unknown_chain_needs_no_gas(self):
        rows = [pool_row("eth", chain="Ethereum"), pool_row("x", chain="Sonic", project="nope")]
        problem, reasons = build(rows, gas_usd={"Ethereum": 12.0})
        assert list(problem.pool_ids) == ["eth"] and "x" in reasons

    def test_forced_exit_on_unknown_chain_without_default_raises(self):
        rows = [pool_row("eth", chain="Ethereum"), pool_row("old", chain="Sonic", symbol="DAI")]
        h = holdings_of({"old": 50_000}, idle_usd=950_000)
        with pytest.raises(ModelInputError) as info:
            build(rows, holdings=h, lst=lists(blacklisted=("DAI",)), gas_usd={"Ethereum": 12.0})
        assert "old" in str(info.value) and "Sonic" in str(info.value)

    def test_duplicate_pool_ids_are_rejected(self):
        with pytest.raises(ModelInputError) as info:
            build([pool_row("p1"), pool_row("p1", symbol="DAI")])
        assert "p1" in str(info.value)

    def test_pools_sorted_by_id_whatever_the_row_order(self):
        rows = [pool_row(p) for p in ("c", "a", "b")]
        problem, _ = build(rows)
        assert list(problem.pool_ids) == ["a", "b", "c"]


class TestForcedExits:
    def _universe(self):
        return [
            pool_row("good", symbol="USDC"),
            pool_row("dai-pool", symbol="DAI"),
            pool_row("usdt-pool", symbol="USDT", project="old-protocol"),
            pool_row("small-pool", symbol="USDC", tvl=500_000.0),
        ]

    @pytest.mark.parametrize(
        "held_pool, lst, needle",
        [
            ("dai-pool", lists(blacklisted=("DAI",)), "DAI"),
            ("dai-pool", lists(icebox=("dai",)), "DAI"),
            ("usdt-pool", lists(), "old-protocol"),
            ("small-pool", lists(), "min_tvl_usd"),
            ("vanished-pool", lists(), "vanished"),
        ],
    )
    def test_held_ineligible_pool_is_exited_with_a_named_reason(self, held_pool, lst, needle):
        h = holdings_of({held_pool: "123456.78", "good": "1000.00"}, idle_usd="10.00")
        problem, _ = build(self._universe(), holdings=h, lst=lst)
        exits = {e.pool: e for e in problem.forced_exits}
        assert set(exits) == {held_pool}
        assert exits[held_pool].amount_usd == pytest.approx(123456.78)
        assert held_pool in exits[held_pool].reason and needle in exits[held_pool].reason
        assert held_pool not in problem.pool_ids
        # the exited money is part of the capital to place
        assert problem.total_usd == pytest.approx(123456.78 + 1000.00 + 10.00)
        assert problem.held[list(problem.pool_ids).index("good")] == pytest.approx(1000.0)

    def test_eligible_held_pool_is_not_exited(self):
        h = holdings_of({"good": "5000"}, idle_usd="0")
        problem, _ = build(self._universe(), holdings=h)
        assert problem.forced_exits == ()

    def test_exit_gas_uses_the_pool_chain(self):
        rows = [pool_row("a", chain="Arbitrum"), pool_row("b", chain="Ethereum", symbol="DAI")]
        h = holdings_of({"b": 1000}, idle_usd=0)
        problem, _ = build(
            rows,
            holdings=h,
            lst=lists(blacklisted=("DAI",)),
            gas_usd={"Ethereum": 9.0, "Arbitrum": 1.0},
        )
        assert problem.exit_gas_usd == 9.0


class TestTurnoverControl:
    """The no-trade band on the pool limits and the minimum withdrawal (MODEL.md 3-5, 8)."""

    def _band(self, held: str, drift: float):
        # limit: 5 % of a 10 M USD pool = 500,000 USD; capital 1 M USD
        problem, _ = build(
            [pool_row("p1", tvl=10_000_000.0), pool_row("p2", tvl=1e9)],
            holdings=holdings_of({"p1": held}, idle_usd="100000.00"),
            limit_drift_pct=drift,
            position_max_pct_total_assets=1.0,
            max_alloc_percentage=1.0,
        )
        return problem

    @pytest.mark.parametrize(
        "held, drift, expected",
        [
            ("520000.00", 0.0, 500_000.0),  # no band: the limit is the limit
            ("520000.00", 0.1, 520_000.0),  # within the band: the holding may stay
            ("600000.00", 0.1, 550_000.0),  # beyond it: at most (1 + band) x the limit
            ("400000.00", 0.1, 500_000.0),  # below the limit: never raised
        ],
    )
    def test_band_lets_a_drifted_holding_stay(self, held, drift, expected):
        problem = self._band(held, drift)
        assert problem.upper[0] == pytest.approx(expected)

    def test_band_never_raises_a_pool_not_held(self):
        with_band = self._band("520000.00", 0.5)
        without = self._band("520000.00", 0.0)
        assert with_band.upper[1] == without.upper[1]

    def test_min_withdrawal_is_a_fraction_of_capital_on_the_cent_grid(self):
        problem, _ = build(
            [pool_row("p1")],
            holdings=holdings_of({"p1": "3000.00"}, idle_usd="997000.00"),
            min_withdrawal_pct=0.0123456,
        )
        assert problem.min_withdrawal_usd == pytest.approx(12_345.60)
        # a holding smaller than the minimum may always be emptied: its ceiling is 0
        assert problem.withdrawal_ceiling()[0] == 0.0
        assert problem.limits_withdrawals and problem.needs_integers
        assert not problem.yield_only().limits_withdrawals  # x >= h already

    def test_yield_only_tops_a_holding_below_min_position_up_to_it(self):
        problem, _ = build(
            [pool_row("big"), pool_row("small"), pool_row("spare")],
            holdings=holdings_of({"big": "50000.00", "small": "9998.84"}, idle_usd="40001.16"),
            min_position_usd=10_000.0,
        )
        only = problem.yield_only()
        # x_small >= h > 0 selects it, so constraint 6 asks x_small >= min_position_usd
        assert only.lower.tolist() == [50_000.0, 10_000.0, 0.0]
        assert only.mode == "yield-only" and problem.lower.tolist() == [0.0, 0.0, 0.0]

    def test_a_holding_under_min_position_or_over_its_bound_cannot_stay(self):
        # bound of p1: 5 % of a 10 M USD pool = 500,000 USD
        problem, _ = build(
            [pool_row("over", tvl=10_000_000.0), pool_row("p2"), pool_row("p3"), pool_row("p4")],
            holdings=holdings_of(
                {"over": "500000.01", "p2": "9999.99", "p3": "10000.00"}, idle_usd="1000000.00"
            ),
            min_position_usd=10_000.0,
            position_max_pct_total_assets=1.0,
            max_alloc_percentage=1.0,
        )
        # a cent over the bound, a cent under the minimum; at the minimum, or not held: may stay
        assert problem.cannot_stay().tolist() == [True, True, False, False]
