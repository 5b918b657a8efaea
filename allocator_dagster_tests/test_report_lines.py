"""The per-pool lines of a day's report, built directly (`report_lines`)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from allocator_dagster.model import build_problem, evaluate
from allocator_dagster.report_lines import held_lines, solved_lines
from allocator_dagster_tests.support.instances import (
    default_lists_for,
    holdings_of,
    params,
    pool_row,
    universe_of,
)

ROWS = [
    pool_row("a", symbol="USDC", apy=6.0, tvl=1e8, chain="Ethereum"),
    pool_row("b", symbol="USDT", apy=5.0, tvl=1e8, chain="Base"),
]


def test_held_lines_keep_every_holding_and_mark_an_unlisted_pool_unknown() -> None:
    universe = universe_of(ROWS)
    holdings = holdings_of({"a": "300000.00", "gone": "100000.00"}, idle_usd="600000.00")
    lines = held_lines(holdings, universe, {})
    by_pool = {line.pool: line for line in lines}
    assert list(by_pool) == ["a", "gone"]
    assert (by_pool["a"].chain, by_pool["a"].symbol, by_pool["a"].group) == ("Ethereum", "USDC", 1)
    gone = by_pool["gone"]
    assert (gone.chain, gone.project, gone.symbol, gone.group) == ("?", "?", "?", None)
    assert [line.weight for line in lines] == [0.3, 0.1]  # over the whole capital, idle included
    for line in lines:
        assert line.delta_usd == Decimal("0.00")
        assert (line.apy_used, line.daily_yield_usd, line.gas_usd, line.conversion_usd) == (
            0.0,
            0.0,
            0.0,
            0.0,
        )


def test_solved_lines_carry_the_cents_the_deltas_and_a_vanished_pool_s_exit() -> None:
    universe = universe_of(ROWS)
    holdings = holdings_of({"b": "400000.00", "gone": "100000.00"}, idle_usd="500000.00")
    p = params()
    problem, _ = build_problem(universe, holdings, p, default_lists_for(universe))
    assert [e.pool for e in problem.forced_exits] == ["gone"]
    cents = {"a": Decimal("600000.00"), "b": Decimal("400000.00")}
    amounts = [cents[str(pool)] for pool in problem.pool_ids]
    x = np.array([float(a) for a in amounts])
    total = holdings.total_usd
    lines = solved_lines(problem, amounts, evaluate(problem, x), universe, total, {})
    assert [line.pool for line in lines] == ["a", "b", "gone"]  # largest first
    a, b, gone = lines
    assert (a.amount_usd, a.delta_usd, a.weight) == (Decimal("600000.00"), cents["a"], 0.6)
    assert (b.amount_usd, b.delta_usd) == (Decimal("400000.00"), Decimal("0.00"))
    assert a.apy_used == 6.0 and a.daily_yield_usd > 0
    assert (gone.amount_usd, gone.delta_usd, gone.weight) == (
        Decimal("0.00"),
        Decimal("-100000.00"),
        0.0,
    )
    assert gone.group is None and gone.symbol == "?"
