"""The day's platform metrics in the four metrics tables: the automatic proposer's input."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from allocator_dagster.profit_split.metrics import (
    CommunityGrowth,
    DaoTreasury,
    EngagementMetrics,
    PlatformMetrics,
    TokenPerformance,
)
from allocator_dagster.profit_split.metrics_file import DayMetrics
from allocator_dagster.storage.profit_split.proposal_log import StoredProposal, as_decimal
from allocator_dagster.storage.schema import (
    community_growth_daily,
    dao_treasury_daily,
    platform_engagement_daily,
    token_performance_daily,
)


class MetricsUnavailable(LookupError):
    """The metrics tables have no row for the day; the message names the tables."""


def read_platform_metrics(engine: sa.Engine, day: date, current: StoredProposal) -> PlatformMetrics:
    """The day's rows of the four metrics tables, with the split in force."""
    tables = {
        "engagement": platform_engagement_daily,
        "token": token_performance_daily,
        "treasury": dao_treasury_daily,
        "community": community_growth_daily,
    }
    rows: dict[str, sa.RowMapping] = {}
    with engine.connect() as conn:
        for name, table in tables.items():
            row = conn.execute(sa.select(table).where(table.c.metric_date == day)).first()
            if row is not None:
                rows[name] = row._mapping
    missing = [tables[name].name for name in tables if name not in rows]
    if missing:
        raise MetricsUnavailable(f"no metrics for {day.isoformat()} in {', '.join(missing)}")
    e, t, d, c = (rows[k] for k in ("engagement", "token", "treasury", "community"))
    return PlatformMetrics(
        metric_date=day,
        engagement=EngagementMetrics(
            wallet_connections=e["wallet_connections"],
            trades=e["trades"],
            page_views=e["page_views"],
            engagement_score=as_decimal(e["engagement_score"]),
        ),
        token=TokenPerformance(
            price_usd=as_decimal(t["price_usd"]),
            price_trend_pct_7d=as_decimal(t["price_trend_pct_7d"]),
            volume_usd=as_decimal(t["volume_usd"]),
            holders=t["holders"],
            holder_growth_pct_7d=as_decimal(t["holder_growth_pct_7d"]),
        ),
        treasury=DaoTreasury(
            balance_usd=as_decimal(d["balance_usd"]),
            monthly_burn_usd=as_decimal(d["monthly_burn_usd"]),
        ),
        community=CommunityGrowth(
            members=c["members"],
            new_members_7d=c["new_members_7d"],
            growth_pct_7d=as_decimal(c["growth_pct_7d"]),
        ),
        current_split=current.split,
        current_proposal_id=str(current.id),
        source="database",
    )


class MetricsExist(RuntimeError):
    """The day already has metrics and replacing them was not asked for."""


METRICS_TABLES = (
    platform_engagement_daily,
    token_performance_daily,
    dao_treasury_daily,
    community_growth_daily,
)


def write_platform_metrics(
    engine: sa.Engine, metrics: PlatformMetrics | DayMetrics, *, replace: bool = True
) -> None:
    """Write the day's rows of the four metrics tables in one transaction; with `replace` False
    a day that already has any of them raises MetricsExist and nothing is written."""
    day = metrics.metric_date
    e, t, d, c = metrics.engagement, metrics.token, metrics.treasury, metrics.community
    rows: dict[sa.Table, dict[str, Any]] = {
        platform_engagement_daily: {
            "wallet_connections": e.wallet_connections,
            "trades": e.trades,
            "page_views": e.page_views,
            "engagement_score": float(e.engagement_score),
        },
        token_performance_daily: {
            "price_usd": float(t.price_usd),
            "price_trend_pct_7d": float(t.price_trend_pct_7d),
            "volume_usd": float(t.volume_usd),
            "holders": t.holders,
            "holder_growth_pct_7d": float(t.holder_growth_pct_7d),
        },
        dao_treasury_daily: {"balance_usd": d.balance_usd, "monthly_burn_usd": d.monthly_burn_usd},
        community_growth_daily: {
            "members": c.members,
            "new_members_7d": c.new_members_7d,
            "growth_pct_7d": float(c.growth_pct_7d),
        },
    }
    with engine.begin() as conn:
        if not replace:
            present = [
                table.name
                for table in rows
                if conn.execute(
                    sa.select(table.c.metric_date).where(table.c.metric_date == day)
                ).first()
            ]
            if present:
                raise MetricsExist(
                    f"{day} already has metrics in {', '.join(present)}; give --replace to "
                    "replace them"
                )
        for table, values in rows.items():
            conn.execute(table.delete().where(table.c.metric_date == day))
            conn.execute(table.insert().values(metric_date=day, **values))
