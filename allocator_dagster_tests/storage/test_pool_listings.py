"""The listings of missing held pools on SQLite and PostgreSQL: which full snapshot before a day
lists them, and where each was last seen."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from allocator_dagster.sources.sample import SampleUniverse
from allocator_dagster.storage.pool_listings import LAST_SEEN_WINDOW_DAYS, listings_before
from allocator_dagster.storage.pool_writes import replace_pool_day

DAY = date(2026, 3, 10)


def test_listings_before_name_the_full_snapshots_and_the_last_listing(
    engine: sa.Engine, sample: SampleUniverse
) -> None:
    """A day with a full snapshot lists the pools it holds; a day of `/chart` rows only, or of
    no rows, is no evidence (None); the last listing is the latest within the window, `/chart`
    rows included."""
    frame, _ = sample.universe_for(DAY)
    ids = frame["pool"].tolist()
    renamed = frame.iloc[:2].assign(symbol="RENAMED")
    replace_pool_day(engine, DAY - timedelta(days=4), frame.iloc[:10], [], source="sample")
    replace_pool_day(engine, DAY - timedelta(days=3), frame.iloc[5:10], [], source="sample")
    replace_pool_day(engine, DAY - timedelta(days=2), renamed, [], source="defillama-chart")
    old = DAY - timedelta(days=LAST_SEEN_WINDOW_DAYS + 1)
    replace_pool_day(engine, old, frame.iloc[10:12], [], source="sample")
    wanted = [ids[0], ids[5], ids[10]]
    with engine.connect() as conn:
        earlier, seen = listings_before(conn, DAY, wanted, 4)
        assert listings_before(conn, DAY, wanted, 0)[0] == {}
        assert listings_before(conn, DAY, [], 4) == ({}, {})
    assert earlier == {
        DAY - timedelta(days=1): None,
        DAY - timedelta(days=2): None,
        DAY - timedelta(days=3): frozenset({ids[5]}),
        DAY - timedelta(days=4): frozenset({ids[0], ids[5]}),
    }
    row = frame.set_index("pool")
    assert seen == {
        ids[0]: (row.loc[ids[0], "chain"], row.loc[ids[0], "project"], "RENAMED"),
        ids[5]: (row.loc[ids[5], "chain"], row.loc[ids[5], "project"], row.loc[ids[5], "symbol"]),
    }
