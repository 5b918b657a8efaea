"""`allocator plan show`: the orders of a stored day reach its allocation from its balances."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

from click.testing import CliRunner

from allocator_dagster.cli import main
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage import get_engine
from allocator_dagster_tests.support.allocation_runs import chain_resources, run_days

DAY1 = dt.date(2026, 3, 1)


def _show(database_url: str, day: dt.date, fmt: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        ["plan", "show", "--day", day.isoformat(), "--format", fmt, "--database-url", database_url],
    )
    return result.exit_code, result.output


def test_plan_of_stored_days_reaches_the_allocation(database_url: str) -> None:
    assert run_days(chain_resources(database_url), DAY1, DAY1 + dt.timedelta(days=1)).success
    engine = get_engine(database_url)
    for day in (DAY1, DAY1 + dt.timedelta(days=1)):
        code, out = _show(database_url, day, "json")
        assert code == 0, out
        plan = json.loads(out)
        with engine.connect() as conn:
            holdings = store.read_holdings(conn, day)
            stored = store.read_allocation(conn, day)
        assert holdings is not None and stored is not None
        reached = dict(holdings.held())
        for order in plan["orders"]:
            if order["reason"] == "payout":  # from the day's profit landed as idle cash
                assert order["pool"] == "idle_usd" and order["action"] == "withdraw"
                continue
            sign = 1 if order["action"] == "deposit" else -1
            reached[order["pool"]] = reached.get(order["pool"], Decimal("0")) + sign * Decimal(
                order["amount_usd"]
            )
        expected = {p: a for p, a in stored.amounts.items() if a > 0}
        assert {p: a for p, a in reached.items() if a != 0} == expected
        if stored.decision == "hold":
            assert all(o["reason"] == "payout" for o in plan["orders"]) and plan["why_empty"]
        payout = stored.report["payout"]
        assert (
            plan["paid_out_usd"] == payout["paid_usd"]
            and plan["profit_usd"] == payout["profit_usd"]
        )
    code, out = _show(database_url, DAY1, "csv")
    assert code == 0 and out.splitlines()[0].startswith("chain,pool,protocol,action,amount_usd")
    assert all(",withdraw," not in line for line in out.splitlines())  # day 1: all idle cash
    code, out = _show(database_url, DAY1, "table")
    assert code == 0 and "idle cash 10,000,000.00 + withdrawn 0.00" in out, out
    # a person reads pools by label; the csv and json keep the full ids
    assert re.search(r"deposit  \S.* · .* · [0-9a-f]{8} ", out), out
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", out), out
    code, out = _show(database_url, DAY1 + dt.timedelta(days=5), "table")
    assert code == 2 and "2026-03-06 has no balances" in out
