"""The pool history window on SQLite and PostgreSQL: the days before a day only, chosen pools
and days, Python's order whatever the collation."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from allocator_dagster.sources.records import validate_pool_records
from allocator_dagster.sources.sample import SampleUniverse
from allocator_dagster.storage.pool_days import stored_pool_days
from allocator_dagster.storage.pool_history import load_pool_history
from allocator_dagster.storage.pool_writes import replace_pool_day

DAY = date(2026, 3, 10)


def test_history_window_excludes_the_day_itself(engine: sa.Engine, sample: SampleUniverse) -> None:
    days = [DAY - timedelta(days=d) for d in range(4, -2, -1)]  # DAY-4 .. DAY+1
    for day in days:
        frame, _ = sample.universe_for(day)
        replace_pool_day(engine, day, frame.iloc[:20], [], source="sample")
    history = load_pool_history(engine, before=DAY, days=3)
    assert list(history.columns) == ["date", "pool", "tvlUsd", "apy", "apyBase", "apyReward"]
    assert sorted(set(history["date"].dt.date)) == [DAY - timedelta(days=d) for d in (3, 2, 1)]
    assert str(history["date"].dtype) == "datetime64[ns]"
    expected = sample.history(DAY - timedelta(days=3), DAY - timedelta(days=1))
    expected = expected[expected["pool"].isin(set(history["pool"]))].reset_index(drop=True)
    pd.testing.assert_frame_equal(history, expected, check_dtype=False)
    assert load_pool_history(engine, before=DAY, days=0).empty
    assert stored_pool_days(engine) == days


def test_chosen_pools_and_days_are_those_of_the_whole_window(
    engine: sa.Engine, sample: SampleUniverse
) -> None:
    """Asked by pool and by day (the trailing APY of held pools, the forecast's days without a
    packed row), the history is the whole window's filtered: the same rows, order and values."""
    days = [DAY - timedelta(days=d) for d in (9, 8, 6, 5, 2, 1, 0)]  # gaps at -7, -4, -3
    for day in days:
        frame, _ = sample.universe_for(day)
        replace_pool_day(engine, day, frame.iloc[:30], [], source="sample")
    whole = load_pool_history(engine, before=DAY, days=8)
    pools = sorted(set(whole["pool"]))[3:40:4] + ["not-stored"]
    only = [DAY - timedelta(days=d) for d in (12, 8, 7, 5, 1, 0)]  # some outside the window

    def expected(keep: pd.Series) -> pd.DataFrame:
        return whole[keep].reset_index(drop=True)

    chosen_pools = whole["pool"].isin(pools)
    chosen_days = whole["date"].dt.date.isin(only)
    by_pool = load_pool_history(engine, before=DAY, days=8, pools=pools)
    pd.testing.assert_frame_equal(by_pool, expected(chosen_pools))
    by_day = load_pool_history(engine, before=DAY, days=8, only_days=only)
    pd.testing.assert_frame_equal(by_day, expected(chosen_days))
    both = load_pool_history(engine, before=DAY, days=8, pools=pools, only_days=only)
    pd.testing.assert_frame_equal(both, expected(chosen_pools & chosen_days))
    assert sorted(set(by_pool["date"].dt.date)) == days[1:-1]
    assert load_pool_history(engine, before=DAY, days=8, only_days=[DAY]).empty


def test_history_is_in_python_order_whatever_the_collation(engine: sa.Engine) -> None:
    """Ids whose order differs between Python and a locale collation (upper case, digits,
    punctuation), or that a CSV reader could take for a number or a null, come back as text
    in (date, pool) order as Python sorts them, with null numbers as NaN."""
    ids = ["b-pool", "B-pool", "a_pool", "A-pool", "10", "9", "é-pool", "NA", "1e5", "nan", 'x,"y']
    records = [
        {"pool": p, "chain": "Ethereum", "project": "aave-v3", "symbol": "USDC", "tvlUsd": 1e6 + i}
        | ({"apyBase": 1.5} if i % 2 else {})
        for i, p in enumerate(ids)
    ]
    frame, _ = validate_pool_records(records, source="defillama")
    for k in (2, 1):
        replace_pool_day(engine, DAY - timedelta(days=k), frame, [], source="defillama")
    history = load_pool_history(engine, before=DAY, days=2)
    assert history["pool"].tolist() == sorted(ids) * 2
    n = len(ids)
    assert (
        history["date"].dt.date.tolist()
        == [DAY - timedelta(days=2)] * n + [DAY - timedelta(days=1)] * n
    )
    expected = frame.set_index("pool").loc[sorted(ids)]
    assert history["tvlUsd"].tolist()[:n] == expected["tvlUsd"].tolist()
    no_apy = 2 * sum(1 for i in range(n) if i % 2 == 0)  # the pools without any APY, twice
    assert np.isnan(history["apy"].to_numpy()).sum() == no_apy
    assert str(history["date"].dtype) == "datetime64[ns]"
