"""The day's platform metrics round-trip through the four tables; missing ones are named."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from allocator_dagster.profit_split.metrics import sample_metrics
from allocator_dagster.profit_split.policy import RulesProposer
from allocator_dagster.profit_split.split import SEED_SPLIT
from allocator_dagster.storage import profit_split as store


def test_metrics_round_trip_through_the_tables(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    day = date(2025, 5, 6)
    for scenario in ("declining", "treasury_critical"):
        written = sample_metrics(day, scenario, seed.split, str(seed.id))
        store.write_platform_metrics(engine, written)  # replaces the day
    read = store.read_platform_metrics(engine, day, seed)
    expected = sample_metrics(day, "treasury_critical", seed.split, str(seed.id))
    assert read.source == "database"
    assert read.engagement == expected.engagement and read.token == expected.token
    assert read.treasury == expected.treasury and read.community == expected.community
    assert read.current_split == SEED_SPLIT and read.current_proposal_id == str(seed.id)
    assert RulesProposer().propose(read).split == RulesProposer().propose(expected).split


def test_missing_metrics_name_the_tables(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    with pytest.raises(store.MetricsUnavailable, match="platform_engagement_daily, token_perf"):
        store.read_platform_metrics(engine, date(2025, 5, 6), seed)
