"""Which of the held pools missing from a day the stored days before it listed, and where each
was last seen: the evidence `vanished` needs before a missing pool is exited."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import sqlalchemy as sa

from allocator_dagster.sources.records import PoolSource
from allocator_dagster.storage.schema import pool_daily_metrics

LAST_SEEN_WINDOW_DAYS = 30  # how far back the last listing of a missing pool is looked up


def listings_before(
    conn: sa.Connection, day: date, pools: Sequence[str], days: int
) -> tuple[dict[date, frozenset[str] | None], dict[str, tuple[str, str, str]]]:
    """For the `days` days before `day`: which of `pools` each stored full snapshot lists (None
    for a day without one: only `/chart` imports or nothing), and the (chain, project, symbol)
    of each pool's latest listing within `LAST_SEEN_WINDOW_DAYS` (for `vanished`)."""
    table = pool_daily_metrics
    if not pools:
        return {}, {}
    first = day - timedelta(days=max(days, 0))
    earlier: dict[date, frozenset[str] | None] = {}
    if days > 0:
        full = sa.func.sum(sa.case((table.c.source != str(PoolSource.DEFILLAMA_CHART), 1), else_=0))
        full_days = {
            d
            for d, n in conn.execute(
                sa.select(table.c.metric_date, full)
                .where(table.c.metric_date >= first, table.c.metric_date < day)
                .group_by(table.c.metric_date)
            )
            if n
        }
        listed: dict[date, set[str]] = {d: set() for d in full_days}
        for d, pool in conn.execute(
            sa.select(table.c.metric_date, table.c.pool_id).where(
                table.c.metric_date >= first,
                table.c.metric_date < day,
                table.c.pool_id.in_(list(pools)),
            )
        ):
            if d in listed:
                listed[d].add(pool)
        for back in range(1, days + 1):
            d = day - timedelta(days=back)
            earlier[d] = frozenset(listed[d]) if d in listed else None
    last_seen: dict[str, tuple[str, str, str]] = {}
    for pool, chain, project, symbol in conn.execute(
        sa.select(table.c.pool_id, table.c.chain, table.c.project, table.c.symbol)
        .where(
            table.c.metric_date >= day - timedelta(days=LAST_SEEN_WINDOW_DAYS),
            table.c.metric_date < day,
            table.c.pool_id.in_(list(pools)),
        )
        .order_by(table.c.metric_date)
    ):
        last_seen[pool] = (chain, project, symbol)  # the latest day wins
    return earlier, last_seen
