"""The allocation model of MODEL.md: parameters, eligibility, groups, bounds, costs, diagnosis.

Every expectation here is derived from MODEL.md (the contract), not from the implementation.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from allocator_dagster.model import (
    CAP_NAMES,
    Holdings,
    ModelInputError,
    Violation,
    ViolationKind,
    build_problem,
    diagnose,
    effective_apy,
    evaluate,
    pool_group,
    pool_tokens,
    violations,
)
from allocator_dagster.parameters import (
    FRACTION_FIELDS,
    AllocationParameters,
    DynamicLists,
    ParameterError,
    parameters_from_mapping,
)
from allocator_dagster.solvers import solve
from allocator_dagster_tests.support.instances import (
    default_lists_for,
    holdings_of,
    idle,
    params,
    pool_row,
    token_address,
    universe_of,
)

DAY = 36500.0
REAL_POOLS = Path("/work/shared/defillama/pools_2026-07-31.json")


def lists(
    tokens=("USDC", "USDT", "DAI"),
    protocols=("aave-v3",),
    blacklisted=(),
    icebox=(),
) -> DynamicLists:
    return DynamicLists(
        approved_tokens=list(tokens),
        approved_protocols=list(protocols),
        blacklisted_tokens=list(blacklisted),
        icebox_tokens=list(icebox),
    )


def build(rows, holdings: Holdings | None = None, lst: DynamicLists | None = None, **overrides):
    universe = universe_of(rows)
    return build_problem(
        universe,
        holdings or idle(1_000_000),
        params(**overrides),
        lst if lst is not None else lists(),
    )


def eligible_ids(rows, lst=None, **overrides) -> list[str]:
    problem, _ = build(rows, lst=lst, **overrides)
    return list(problem.pool_ids)


# ============================================================== parameters


class TestParameters:
    @pytest.mark.parametrize("name", FRACTION_FIELDS)
    @pytest.mark.parametrize("value", [-0.01, 1.01, 5.0, math.nan, math.inf])
    def test_fraction_outside_unit_interval_is_rejected_naming_the_field(self, name, value):
        with pytest.raises(ParameterError) as info:
            parameters_from_mapping({name: value})
        assert name in str(info.value)

    @pytest.mark.parametrize("name", FRACTION_FIELDS)
    @pytest.mark.parametrize("value", [0.0, 1.0, 0.05])
    def test_fraction_bounds_are_inclusive(self, name, value):
        p, _ = parameters_from_mapping({name: value})
        assert getattr(p, name) == value

    def test_min_pools_without_min_position_is_invalid(self):
        with pytest.raises(ParameterError) as info:
            parameters_from_mapping({"min_pools": 3, "min_position_usd": 0})
        message = str(info.value)
        assert "min_pools" in message and "min_position_usd" in message

    def test_min_pools_zero_with_zero_minimum_is_valid(self):
        p, _ = parameters_from_mapping({"min_pools": 0, "min_position_usd": 0})
        assert p.min_pools == 0 and p.min_position_usd == 0

    @pytest.mark.parametrize("field", ["tvl_limit_pct", "approved_token", "minPools"])
    def test_unknown_field_is_rejected_naming_it(self, field):
        with pytest.raises(ParameterError) as info:
            parameters_from_mapping({field: 1})
        assert field in str(info.value)

    def test_error_message_names_the_source(self):
        with pytest.raises(ParameterError) as info:
            parameters_from_mapping({"group1_max_pct": 2}, source="PARAMS.yaml")
        assert "PARAMS.yaml" in str(info.value) and "group1_max_pct" in str(info.value)

    @pytest.mark.parametrize(
        "data, field",
        [
            ({"yield_model": "quadratic"}, "yield_model"),
            ({"gas_usd": {"Ethereum": -1.0}}, "gas_usd"),
            ({"cost_horizon_days": 0}, "cost_horizon_days"),
            ({"min_pools": -1}, "min_pools"),
            ({"pool_groups": {"p1": 4}}, "pool_groups"),
            ({"approved_tokens": "USDC"}, "approved_tokens"),
        ],
    )
    def test_other_invalid_values_name_their_field(self, data, field):
        with pytest.raises(ParameterError) as info:
            parameters_from_mapping(data)
        assert field in str(info.value)

    def test_mapping_is_split_into_parameters_and_lists(self):
        p, lst = parameters_from_mapping(
            {
                "approved_tokens": ["USDT", "USDC", "USDC"],
                "approved_protocols": ["aave-v3"],
                "min_pools": 2,
                "min_position_usd": 100,
            }
        )
        assert p.min_pools == 2
        assert lst.approved_tokens == ("USDC", "USDT")
        assert lst.approved_protocols == ("aave-v3",)


# ============================================================== tokens


def test_pool_tokens_symbols_upper_addresses_lower():
    parts, addresses = pool_tokens("usdc-WeTh", ["0xAbCdEf", " 0x12Ab "])
    assert parts == ("USDC", "WETH")
    assert addresses == ("0xabcdef", "0x12ab")


def test_pool_tokens_without_underlying():
    assert pool_tokens("DAI", None) == (("DAI",), ())
    assert pool_tokens("DAI", ()) == (("DAI",), ())


# ============================================================== eligibility


class TestEligibility:
    def test_approved_by_symbol(self):
        rows = [pool_row("p1", symbol="USDC-USDT", underlying=("0xnotapproved1", "0xnotapproved2"))]
        assert eligible_ids(rows) == ["p1"]

    def test_approved_by_every_address_even_if_symbol_is_not(self):
        a, b = token_address("FOO"), token_address("BAR")
        rows = [pool_row("p1", symbol="FOO-BAR", underlying=(a, b))]
        assert eligible_ids(rows, lst=lists(tokens=("USDC",))) == []
        assert eligible_ids(rows, lst=lists(tokens=("USDC", a.upper(), b.lower()))) == ["p1"]

    def test_one_unapproved_symbol_part_and_one_unapproved_address_is_ineligible(self):
        a, b = token_address("USDC"), token_address("XYZ")
        rows = [pool_row("p1", symbol="USDC-XYZ", underlying=(a, b))]
        problem, reasons = build(rows, lst=lists(tokens=("USDC", a)))
        assert problem.n == 0
        assert "XYZ" in reasons["p1"] and "not approved" in reasons["p1"]

    def test_symbols_compare_upper_case(self):
        rows = [pool_row("p1", symbol="usdc", underlying=("0xnope",))]
        assert eligible_ids(rows, lst=lists(tokens=("USDC",))) == ["p1"]
        rows = [pool_row("p2", symbol="USDC", underlying=("0xnope",))]
        assert eligible_ids(rows, lst=lists(tokens=("usdc",))) == ["p2"]

    def test_addresses_compare_lower_case(self):
        address = "0xAbCdEf0123456789aBcDeF0123456789AbCdEf01"
        rows = [pool_row("p1", symbol="ZZZ", underlying=(address,))]
        assert eligible_ids(rows, lst=lists(tokens=(address.lower(),))) == ["p1"]
        assert eligible_ids(rows, lst=lists(tokens=(address.upper().replace("0X", "0x"),))) == [
            "p1"
        ]

    @pytest.mark.parametrize("entry", ["USDT", "usdt"])
    def test_blacklisted_by_symbol(self, entry):
        rows = [pool_row("p1", symbol="USDC-USDT")]
        problem, reasons = build(rows, lst=lists(blacklisted=(entry,)))
        assert problem.n == 0
        assert "USDT" in reasons["p1"] and "blacklist" in reasons["p1"]

    def test_blacklisted_by_address_in_other_case(self):
        address = token_address("USDT")
        rows = [pool_row("p1", symbol="USDC-USDT")]
        problem, reasons = build(
            rows, lst=lists(blacklisted=(address.upper().replace("0X", "0x"),))
        )
        assert problem.n == 0
        assert address.lower() in reasons["p1"].lower() and "blacklist" in reasons["p1"]

    def test_blacklist_wins_over_approval(self):
        rows = [pool_row("p1", symbol="USDC")]
        assert eligible_ids(rows, lst=lists(tokens=("USDC",), blacklisted=("USDC",))) == []

    @pytest.mark.parametrize("by", ["symbol", "address"])
    def test_iceboxed_token(self, by):
        rows = [pool_row("p1", symbol="USDC-DAI")]
        entry = "dai" if by == "symbol" else token_address("DAI").lower()
        problem, reasons = build(rows, lst=lists(icebox=(entry,)))
        assert problem.n == 0
        assert "icebox" in reasons["p1"]
        assert ("DAI" in reasons["p1"]) if by == "symbol" else (entry in reasons["p1"].lower())

    def test_unapproved_protocol(self):
        rows = [pool_row("p1", project="shady-farm"), pool_row("p2", project="aave-v3")]
        problem, reasons = build(rows)
        assert list(problem.pool_ids) == ["p2"]
        assert "shady-farm" in reasons["p1"] and "protocol" in reasons["p1"]

    @pytest.mark.parametrize("tvl", [math.nan, None, 0.0, -5e6, math.inf])
    def test_tvl_not_finite_or_not_positive(self, tvl):
        rows = [pool_row("p1", tvl=tvl, forecast=False)]
        problem, reasons = build(rows, min_tvl_usd=0.0)
        assert problem.n == 0
        assert "TVL" in reasons["p1"]

    def test_tvl_below_min_tvl(self):
        rows = [
            pool_row("below", tvl=999_999.99),
            pool_row("equal", tvl=1_000_000.0),
            pool_row("above", tvl=2_000_000.0),
        ]
        problem, reasons = build(rows, min_tvl_usd=1_000_000.0)
        assert list(problem.pool_ids) == ["above", "equal"]
        assert "min_tvl_usd" in reasons["below"]

    def test_no_apy_at_all_is_ineligible(self):
        rows = [pool_row("p1", apy=None, apy_base=None, apy_reward=None, forecast=False)]
        problem, reasons = build(rows)
        assert problem.n == 0
        assert "APY" in reasons["p1"]

    @pytest.mark.parametrize(
        "apy, base, reward, expected",
        [
            (None, None, 2.0, (2.0, 0.0, 2.0)),  # null base counts as 0, apy is the sum
            (None, 3.0, None, (3.0, 3.0, 0.0)),  # null reward counts as 0
            (None, 3.0, 2.0, (5.0, 3.0, 2.0)),  # apy defaults to the sum
            (7.5, 3.0, 2.0, (7.5, 3.0, 2.0)),  # a given apy is kept
            (4.0, None, None, (4.0, 4.0, 0.0)),  # only apy: all of it is base, no reward
        ],
    )
    def test_null_apy_parts(self, apy, base, reward, expected):
        rows = [
            pool_row("p1", apy=apy, apy_base=base, apy_reward=reward, forecast=False)
            | {"apyBase": base, "apyReward": reward, "apy": apy}
        ]
        problem, reasons = build(rows)
        assert reasons == {}
        assert list(problem.pool_ids) == ["p1"]
        got = (problem.apy[0], problem.apy_base[0], problem.apy_reward[0])
        assert got == pytest.approx(expected)

    def test_effective_apy_direct(self):
        assert effective_apy({"apy": None, "apyBase": None, "apyReward": 1.5}) == (1.5, 0.0, 1.5)
        apy = effective_apy({"apy": math.nan, "apyBase": math.nan, "apyReward": math.nan})
        assert all(math.isnan(v) for v in apy)

    def test_forecast_values_are_used(self):
        row = pool_row("p1", apy=5.0, tvl=10_000_000.0)
        row.update(
            {
                "apy_forecast": 7.0,
                "apy_base_forecast": 4.0,
                "apy_reward_forecast": 3.0,
                "tvl_forecast": 8_000_000.0,
            }
        )
        problem, _ = build(
            [row],
            tvl_limit_percentage=0.1,
            position_max_pct_pool_tvl=1.0,
            profit_optimization=True,
            position_max_pct_total_assets=1.0,
        )
        assert problem.apy[0] == 7.0
        assert problem.apy_base[0] == 4.0
        assert problem.apy_reward[0] == 3.0
        assert problem.tvl[0] == 8_000_000.0
        assert problem.upper[0] == pytest.approx(800_000.0)

    def test_missing_forecast_falls_back_to_current(self):
        row = pool_row("p1", apy=5.0, tvl=10_000_000.0)
        row.update({"apy_forecast": None, "tvl_forecast": None})
        problem, _ = build([row])
        assert problem.apy[0] == 5.0
        assert problem.tvl[0] == 10_000_000.0

    def test_real_defillama_records_build(self):
        """Real records (nulls, no `apy`/`stablecoin` columns, odd tokens) form a valid problem."""
        if not REAL_POOLS.exists():
            pytest.skip("real DefiLlama sample not present")
        data = json.loads(REAL_POOLS.read_text())["data"]
        frame = pd.DataFrame(data)
        frame["underlyingTokens"] = [tuple(t) if t else () for t in frame["underlyingTokens"]]
        lst = DynamicLists(
            approved_tokens=["USDC", "USDT", "DAI", "SUSDS", "USDS"],
            approved_protocols=sorted(frame["project"].unique()),
        )
        problem, reasons = build_problem(frame, idle(5_000_000), params(), lst)
        assert problem.n > 0
        assert problem.n + len(reasons) == len(frame)
        assert np.all(np.isfinite(problem.apy)) and np.all(problem.tvl >= 1_000_000.0)
        approved = {"USDC", "USDT", "DAI", "SUSDS", "USDS"}
        for symbol in problem.symbol:
            parts, _ = pool_tokens(symbol, ())
            assert set(parts) <= approved
        # no stablecoin column: a missing flag is false, so nothing is in group 1
        assert set(problem.group.tolist()) <= {2, 3}


# ============================================================== groups


class TestGroups:
    @pytest.mark.parametrize(
        "stable, il, exposure, expected",
        [
            (True, "no", "single", 1),
            (True, "yes", "single", 3),
            (False, "yes", "multi", 3),
            (True, "no", "multi", 2),
            (False, "no", "single", 2),
            (None, "no", "single", 2),  # missing stablecoin flag counts as false
            (True, None, "single", 1),  # missing IL flag counts as false (no IL)
            (True, "no", None, 2),  # missing exposure: not single
            (math.nan, math.nan, "single", 2),
        ],
    )
    def test_default_groups(self, stable, il, exposure, expected):
        row = pool_row("p1", stablecoin=stable, il_risk=il, exposure=exposure)
        assert pool_group(row, {}) == expected
        problem, _ = build([row])
        assert problem.group.tolist() == [expected]

    def test_override_wins(self):
        rows = [
            pool_row("stable", stablecoin=True, il_risk="no", exposure="single"),
            pool_row("il", stablecoin=False, il_risk="yes", exposure="multi"),
            pool_row("plain", stablecoin=False, il_risk="no", exposure="single"),
        ]
        problem, _ = build(rows, pool_groups={"stable": 3, "il": 1})
        groups = dict(zip(problem.pool_ids, problem.group.tolist(), strict=True))
        assert groups == {"stable": 3, "il": 1, "plain": 2}

    def test_missing_flag_columns(self):
        row = pool_row("p1")
        for col in ("stablecoin", "ilRisk", "exposure"):
            del row[col]
        frame = universe_of([row])
        assert "stablecoin" not in frame.columns
        problem, _ = build_problem(frame, idle(1e6), params(), lists())
        assert problem.group.tolist() == [2]


# ============================================================== bounds and costs


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


# ============================================================== forced exits


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


# ============================================================== evaluate


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


# ============================================================== violations


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


# ============================================================== diagnose


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

    def test_no_eligible_pool(self):
        problem, _ = build([pool_row("p1", project="nope")])
        assert problem.n == 0
        assert any("no pool is eligible" in m for m in diagnose(problem))
        _assert_infeasible(problem)

    def test_feasible_problem_has_no_diagnosis(self):
        rows = [pool_row(f"p{i}") for i in range(6)]
        problem, _ = build(rows, max_alloc_percentage=0.2)
        assert diagnose(problem) == []


def test_holdings_total_and_records():
    h = Holdings(
        positions={"b": Decimal("2.50"), "a": Decimal("1.25"), "z": Decimal("0")},
        idle_usd=Decimal("0.25"),
    )
    assert h.total_usd == Decimal("4.00")
    assert list(h.held()) == ["a", "b"]
    assert h.as_records()[-1] == {"pool": "idle_usd", "amount_usd": "0.25"}


def test_default_lists_make_every_random_pool_eligible():
    from allocator_dagster_tests.support.instances import random_universe

    rng = np.random.default_rng(0)
    universe = random_universe(rng, 30)
    problem, reasons = build_problem(
        universe, idle(1_000_000), AllocationParameters(min_pools=0), default_lists_for(universe)
    )
    assert reasons == {} and problem.n == 30
