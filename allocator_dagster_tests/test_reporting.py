"""The treasurer's markdown: exact table rows, a bar chart true to the weights, the limits."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from allocator_dagster.allocation_report import AllocationReport, PoolLine
from allocator_dagster.model import BindingLimit
from allocator_dagster.reporting import (
    BAR_WIDTH,
    _largest_tvl,
    allocation_chart_markdown,
    allocation_markdown,
    binding_limits_markdown,
    decision_markdown,
    top_pools_markdown,
)

HEADER = (
    "| pool | symbol | project | chain | amount USD | weight | delta USD | APY % | yield USD/day |"
)


def line(pool: str, amount: str, weight: float, delta: str, **extra) -> PoolLine:
    values = dict(
        pool=pool,
        chain="Ethereum",
        project="aave-v3",
        symbol="USDC",
        group=1,
        tokens={"symbols": ["USDC"], "addresses": []},
        amount_usd=Decimal(amount),
        weight=weight,
        delta_usd=Decimal(delta),
        apy_used=5.0,
        daily_yield_usd=0.0,
        gas_usd=0.0,
        conversion_usd=0.0,
    )
    values.update(extra)
    return PoolLine(**values)


def report(lines: list[PoolLine], limits: list[BindingLimit] | None = None) -> AllocationReport:
    return AllocationReport(
        status="optimal",
        decision="full",
        reasons=["first day: everything is idle", "min_improvement_usd=50 met"],
        backend="convex",
        total_usd=sum((entry.amount_usd for entry in lines), Decimal("0")),
        lines=lines,
        daily_yield_usd=0.0,
        gas_usd=0.0,
        conversion_usd=0.0,
        objective_usd_per_day=0.0,
        binding_limits=limits or [],
        exactness=[],
        solve_seconds=0.1,
    )


LINES = [
    line(
        "0123456789abcdef-long-id",
        "1234567.89",
        0.5,
        "1000.5",
        symbol="USDC-USDT",
        project="curve-dex",
        chain="Arbitrum",
        apy_used=5.678,
        daily_yield_usd=192.05,
    ),
    line("short", "1234567.89", 0.5, "-250", apy_used=4.0, daily_yield_usd=135.3),
    line("gone", "0.00", 0.0, "-99.99", symbol="DAI"),
]


def test_allocation_table_rows_are_exact() -> None:
    text = allocation_markdown(report(LINES))
    assert text.splitlines() == [
        HEADER,
        "|---|---|---|---|---:|---:|---:|---:|---:|",
        "| `0123456789ab` | USDC-USDT | curve-dex | Arbitrum | 1,234,567.89 | 50.00% | +1,000.50 "
        "| 5.68 | 192.05 |",
        "| `short` | USDC | aave-v3 | Ethereum | 1,234,567.89 | 50.00% | -250.00 | 4.00 | 135.30 |",
        "| `gone` | DAI | aave-v3 | Ethereum | 0.00 | 0.00% | -99.99 | 5.00 | 0.00 |",
    ]


def test_allocation_table_says_how_many_rows_it_left_out() -> None:
    rows = allocation_markdown(report(LINES), limit=1).splitlines()
    assert len(rows) == 4
    assert rows[2].startswith("| `0123456789ab` |")
    assert rows[3] == "| … 2 more | | | | | | | | |"
    assert "more" not in allocation_markdown(report(LINES), limit=3)


def test_chart_bars_follow_the_weights_and_skip_empty_pools() -> None:
    lines = [
        line("a", "750.00", 0.75, "0", symbol="A-VERY-LONG-SYMBOL-NAME", project="proto"),
        line("b", "250.00", 0.25, "0", symbol="B", project="a-very-long-project-name"),
        line("c", "0.00", 0.0, "0", symbol="C", project="p"),
    ]
    rows = allocation_chart_markdown(report(lines)).splitlines()
    assert rows[0] == rows[-1] == "```"
    assert len(rows) == 4  # the empty pool c has no bar
    label_a, label_b = f"{'A-VERY-LONG-SY proto':<30}", f"{'B a-very-long-pr':<30}"
    assert rows[1] == f"{label_a} {'█' * 18}{'·' * 6} 75.00%"
    assert rows[2] == f"{label_b} {'█' * 6}{'·' * 18} 25.00%"
    assert all(r.count("█") + r.count("·") == BAR_WIDTH for r in rows[1:-1])


def test_chart_bars_are_clamped_and_limited() -> None:
    lines = [line(f"p{i}", "1.00", 1.2 if i == 0 else 0.01, "0") for i in range(5)]
    rows = allocation_chart_markdown(report(lines), limit=2).splitlines()
    assert len(rows) == 4
    assert "█" * BAR_WIDTH in rows[1] and "·" not in rows[1]  # a weight above 1 fills the bar
    assert "·" * BAR_WIDTH in rows[2]  # 1 % of 24 rounds to no block
    rounded = allocation_chart_markdown(report([line("r", "1.00", 0.49, "0")])).splitlines()
    assert f"{'█' * 12}{'·' * 12}" in rounded[1]  # 0.49 x 24 = 11.76 rounds to 12 blocks


def test_binding_limits_list_or_say_none_binds() -> None:
    assert binding_limits_markdown(report(LINES)) == (
        "No limit binds: the allocation is not constrained by any cap."
    )
    limits = [
        BindingLimit(f"cap{i}", "pool", 1.0, 0.1, description=f"limit {i} binds") for i in range(3)
    ]
    assert binding_limits_markdown(report(LINES, limits)) == (
        "- limit 0 binds\n- limit 1 binds\n- limit 2 binds"
    )
    assert binding_limits_markdown(report(LINES, limits), limit=2) == (
        "- limit 0 binds\n- limit 1 binds"
    )


def test_decision_names_the_decision_the_status_and_every_reason() -> None:
    assert decision_markdown(report(LINES)) == (
        "**full** (optimal)\n\n- first day: everything is idle\n- min_improvement_usd=50 met"
    )


def test_top_pools_by_tvl_then_id() -> None:
    universe = pd.DataFrame(
        {
            "pool": ["z-pool", "a-pool", "0123456789abcdef", "small"],
            "symbol": ["USDT", "DAI", "USDC", "FRAX"],
            "project": ["p1", "p2", "p3", "p4"],
            "chain": ["Base", "Base", "Ethereum", "Base"],
            "poolMeta": [None, "a|b", "fixed", None],
            "tvlUsd": [2_000_000.0, 2_000_000.0, 123_456_789.5, 10.0],
            "apy": [4.0, 3.456, 5.0, 9.0],
        }
    )
    # each pool by its label (symbol · project · chain · poolMeta · short id), as in the
    # allocation table; it was the id cut at 12 characters ('83ff285f-7f3') without poolMeta
    assert top_pools_markdown(universe, limit=3).splitlines() == [
        "| pool | TVL USD | APY % |",
        "|---|---:|---:|",
        "| USDC · p3 · Ethereum · fixed · 01234567 | 123,456,790 | 5.00 |",
        "| DAI · p2 · Base · a\\|b · a-pool | 2,000,000 | 3.46 |",
        "| USDT · p1 · Base · z-pool | 2,000,000 | 4.00 |",
    ]
    assert top_pools_markdown(universe.iloc[0:0]) == "(no pools)"


@pytest.mark.parametrize("seed", range(10))
def test_top_pools_of_a_large_universe_are_the_head_of_the_whole_sort(seed: int) -> None:
    """Only the rows at or above the limit-th TVL are sorted: ties at the threshold, NaN TVLs
    and a universe of mostly NaN give the same head as sorting every row."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    tvl = rng.choice([1e6, 2e6, 3e6, 5e6], n) if seed % 2 else rng.uniform(0, 1e9, n)
    tvl[rng.random(n) < (0.97 if seed == 3 else 0.1)] = np.nan
    universe = pd.DataFrame(
        {
            "pool": [f"p{i:04d}" for i in rng.permutation(n)],
            "symbol": "USDC",
            "project": "p",
            "chain": "Base",
            "tvlUsd": tvl,
            "apy": rng.uniform(0, 10, n),
        }
    )
    whole = universe.sort_values(["tvlUsd", "pool"], ascending=[False, True])
    for limit in (1, 3, 10):
        expected = whole.head(limit)
        assert _largest_tvl(universe, limit).equals(expected)
