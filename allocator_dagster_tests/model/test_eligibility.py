"""Tokens, eligibility and groups of MODEL.md.

Every expectation here is derived from MODEL.md (the contract), not from the implementation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from allocator_dagster.model import (
    build_problem,
    effective_apy,
    pool_group,
    pool_tokens,
)
from allocator_dagster.parameters import (
    AllocationParameters,
    DynamicLists,
)
from allocator_dagster_tests.support.instances import (
    default_lists_for,
    idle,
    params,
    pool_row,
    token_address,
    universe_of,
)
from allocator_dagster_tests.support.problems import build, eligible_ids, lists

REAL_POOLS = Path("/work/shared/defillama/pools_2026-07-31.json")


def test_pool_tokens_symbols_upper_addresses_lower():
    parts, addresses = pool_tokens("usdc-WeTh", ["0xAbCdEf", " 0x12Ab "])
    assert parts == ("USDC", "WETH")
    assert addresses == ("0xabcdef", "0x12ab")


def test_pool_tokens_without_underlying():
    assert pool_tokens("DAI", None) == (("DAI",), ())
    assert pool_tokens("DAI", ()) == (("DAI",), ())


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


def test_default_lists_make_every_random_pool_eligible():
    from allocator_dagster_tests.support.instances import random_universe

    rng = np.random.default_rng(0)
    universe = random_universe(rng, 30)
    problem, reasons = build_problem(
        universe, idle(1_000_000), AllocationParameters(min_pools=0), default_lists_for(universe)
    )
    assert reasons == {} and problem.n == 30
