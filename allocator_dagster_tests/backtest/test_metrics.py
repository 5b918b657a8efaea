"""The JSON of `allocator backtest --format json` and the summary figures."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from allocator_dagster import backtest
from allocator_dagster.backtest.metrics import as_json, summarise, summary_rows
from allocator_dagster_tests.backtest.helpers import LISTS, PARAMS, START, market_of

DAYS = [{"a": (5.0, 6.0, 1e9), "b": (9.0, 8.0, 1e9)} for _ in range(4)]


def result():
    return backtest.run(
        market_of(DAYS),
        START,
        START + dt.timedelta(days=3),
        capital_usd=Decimal("100000.00"),
        parameters=PARAMS,
        lists=LISTS,
        strategies=["allocator", "greedy", "hold"],
    )


def test_json_has_exactly_the_issues_shape_with_numbers():
    out = result()
    payload = json.loads(json.dumps(as_json("2025-03-01", "2025-03-04", out.capital_usd, out.runs)))
    assert set(payload) == {"start", "end", "capital_usd", "strategies"}
    assert list(payload["strategies"]) == ["allocator", "greedy", "hold"]
    for figures in payload["strategies"].values():
        assert set(figures) == {
            "net_usd", "gross_usd", "gas_usd", "conversion_usd", "net_apy_pct",
            "turnover_usd", "trades", "days",
        }  # fmt: skip
        assert len(figures["days"]) == 4
        for day in figures["days"]:
            assert set(day) == {
                "date", "positions", "idle_usd", "realised_yield_usd",
                "expected_yield_usd", "costs_usd",
            }  # fmt: skip
            assert all(isinstance(v, float) for v in day["positions"].values())
        assert isinstance(figures["net_usd"], float)


def test_same_input_same_bytes():
    first, second = result(), result()
    dump = lambda r: json.dumps(as_json("s", "e", r.capital_usd, r.runs))  # noqa: E731
    assert dump(first) == dump(second)


def test_turnover_and_trades_count_after_day_one_and_hold_never_trades():
    out = {r.name: summarise(r) for r in result().runs}
    assert out["hold"].turnover_usd == 0 and out["hold"].trades == 0
    assert out["hold"].gas_usd > 0  # the first placement is paid
    assert out["allocator"].decisions  # every day but the last decided something
    rows = {r["strategy"]: r for r in summary_rows(result().runs)}
    assert rows["greedy"]["vs greedy"] == "-" and rows["allocator"]["vs hold"].endswith("pt)")
