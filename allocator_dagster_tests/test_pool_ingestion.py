"""One day of pool data: stored with its forecast and rejections, refused clearly, checked.

Runs on SQLite and on the real PostgreSQL (the `engine` fixture).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from allocator_dagster import pool_ingestion
from allocator_dagster.forecast import LOOKBACK_DAYS
from allocator_dagster.pool_ingestion import (
    POOL_CHECKS,
    PoolDataError,
    check_pool_day,
    ingest_defillama_day,
    ingest_sample_day,
    sample_universe,
)
from allocator_dagster.sources.records import FORECAST_COLUMNS, validate_pool_records
from allocator_dagster.storage.pools import (
    load_pool_day,
    load_pool_rejections,
    replace_pool_day,
    stored_pool_days,
)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "defillama" / "pools.json"
TODAY = dt.date(2026, 3, 10)


def records() -> list[dict]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))["data"]


def never_called():
    raise AssertionError("the live API must not be asked for a past day")


# ------------------------------------------------------------------ sample


def test_sample_day_is_stored_with_its_forecast_and_rejections(engine: sa.Engine) -> None:
    source = sample_universe(7, 150)
    assert sample_universe(7, 150) is source  # one generator (and one history) per process
    day = source.start + dt.timedelta(days=40)
    result = ingest_sample_day(engine, day, source)
    assert (result.day, result.source, result.reused_stored_day) == (day, "sample", False)
    stored = load_pool_day(engine, day)
    assert result.stored_rows == len(stored) == len(result.universe) > 0
    pd.testing.assert_frame_equal(stored, result.universe.reset_index(drop=True))
    assert load_pool_rejections(engine, day) == result.rejections
    # 40 days of the sample's own history: every pool has a base-APY forecast
    assert stored["apy_base_forecast"].notna().all()


def test_a_sample_day_does_not_depend_on_other_stored_days(engine: sa.Engine) -> None:
    source = sample_universe(7, 150)
    day = source.start + dt.timedelta(days=20)
    alone = ingest_sample_day(engine, day, source).universe
    for other in (day - dt.timedelta(days=1), day + dt.timedelta(days=3)):
        ingest_sample_day(engine, other, source)
    again = ingest_sample_day(engine, day, source)
    pd.testing.assert_frame_equal(again.universe, alone)
    assert len(load_pool_day(engine, day)) == len(alone)  # replaced, never duplicated
    assert stored_pool_days(engine) == sorted(
        [day - dt.timedelta(days=1), day, day + dt.timedelta(days=3)]
    )


def test_the_sample_first_day_has_no_forecast(engine: sa.Engine) -> None:
    source = sample_universe(7, 150)
    result = ingest_sample_day(engine, source.start, source)
    assert result.stored_rows == len(result.universe) > 0
    assert load_pool_day(engine, source.start)[list(FORECAST_COLUMNS)].isna().all().all()


# ------------------------------------------------------------------ defillama


def test_todays_snapshot_keeps_valid_records_and_stores_the_rejections(engine: sa.Engine) -> None:
    data = records()[:10]
    bad = [
        {"chain": "Ethereum", "project": "aave-v3"},
        dict(data[0], tvlUsd="NaN"),
        dict(data[1], pool=data[2]["pool"]),
    ]
    calls = []

    def fetch():
        calls.append(1)
        return validate_pool_records(data + bad, source="defillama")

    result = ingest_defillama_day(engine, TODAY, fetch, today=TODAY)
    assert calls == [1] and result.source == "defillama" and not result.reused_stored_day
    stored = load_pool_day(engine, TODAY)
    assert set(stored["pool"]) == {r["pool"] for r in data} and result.stored_rows == 10
    assert [(r.row_number, r.pool_id) for r in result.rejections] == [
        (10, None),
        (11, data[0]["pool"]),
        (12, data[2]["pool"]),
    ]
    assert "required field 'pool' is missing" in result.rejections[0].reason
    assert "'tvlUsd' must be a number, got 'NaN'" in result.rejections[1].reason
    assert "duplicate pool id" in result.rejections[2].reason
    assert load_pool_rejections(engine, TODAY) == result.rejections


def test_todays_forecast_reads_the_stored_history(engine: sa.Engine) -> None:
    frame, _ = validate_pool_records(records()[:10], source="defillama")
    pools = frame["pool"].tolist()
    for k in range(1, 8):  # a week of imported history (`/chart`) for the first four pools
        replace_pool_day(
            engine, TODAY - dt.timedelta(days=k), frame.iloc[:4], [], source="defillama-chart"
        )
    old = TODAY - dt.timedelta(days=LOOKBACK_DAYS + 1)  # one day too old to count
    replace_pool_day(engine, old, frame.iloc[4:6], [], source="x")
    ingest_defillama_day(engine, TODAY, lambda: (frame, []), today=TODAY)
    stored = load_pool_day(engine, TODAY).set_index("pool")
    forecast = stored.loc[pools, "tvl_forecast"]
    assert forecast.iloc[:4].notna().all()
    assert forecast.iloc[4:].isna().all()


def test_a_past_day_that_was_not_stored_is_refused_without_writing(engine: sa.Engine) -> None:
    past = TODAY - dt.timedelta(days=3)
    with pytest.raises(PoolDataError) as refused:
        ingest_defillama_day(engine, past, never_called, today=TODAY)
    message = str(refused.value)
    assert f"only serves today ({TODAY})" in message
    assert f"no snapshot of {past} is stored" in message
    assert "allocator pools import-history" in message
    assert stored_pool_days(engine) == []


def test_a_past_day_that_was_stored_is_served_from_the_database(engine: sa.Engine) -> None:
    past = TODAY - dt.timedelta(days=3)
    frame, _ = validate_pool_records(records()[:8], source="defillama")
    replace_pool_day(engine, past, frame, [], source="defillama")
    result = ingest_defillama_day(engine, past, never_called, today=TODAY)
    assert result.reused_stored_day and result.stored_rows == 8 and result.rejections == []
    pd.testing.assert_frame_equal(result.universe, load_pool_day(engine, past))


# ------------------------------------------------------------------ checks


def test_a_clean_day_passes_every_check(engine: sa.Engine) -> None:
    source = sample_universe(7, 150)
    day = source.start + dt.timedelta(days=10)
    ingest_sample_day(engine, day - dt.timedelta(days=1), source)
    ingest_sample_day(engine, day, source)
    assert check_pool_day(engine, day) == {name: [] for name in POOL_CHECKS}


def test_an_empty_day_is_reported(engine: sa.Engine) -> None:
    assert check_pool_day(engine, TODAY)["row_count"] == [
        f"{TODAY}: no pools (an empty answer is never a day's universe)"
    ]


@pytest.mark.parametrize(("rows", "ok"), [(7, False), (8, True), (20, True), (21, False)])
def test_the_row_count_is_compared_with_the_median_of_the_last_accepted_days(
    engine: sa.Engine, rows: int, ok: bool
) -> None:
    frame, _ = validate_pool_records(records(), source="defillama")
    assert len(frame) >= 40
    day = TODAY - dt.timedelta(days=2)
    # 8 earlier full days: the oldest (40 pools) is beyond the last 7, one odd day (30) does
    # not move the median (10), and a day of imported charts only (3 pools) never counts
    sizes = [40, 10, 30, 10, 10, 9, 11, 10]
    for k, size in enumerate(sizes):
        replace_pool_day(engine, day - dt.timedelta(days=9 - k), frame.iloc[:size], [], source="x")
    chart_day = day - dt.timedelta(days=1)
    replace_pool_day(engine, chart_day, frame.iloc[:3], [], source="defillama-chart")
    replace_pool_day(engine, day, frame.iloc[:rows], [], source="x")
    found = check_pool_day(engine, day)["row_count"]
    if ok:
        assert found == []
    else:
        ratio = rows / 10
        assert found == [
            f"{day}: {rows} pools against a median of 10 over the last 7 accepted day(s) "
            f"(ratio {ratio:.2f} outside [0.8, 2.0])"
        ]


def test_duplicates_and_non_finite_values_are_named_by_pool(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame, _ = validate_pool_records(records()[:6], source="defillama")
    frame = frame.assign(**{c: 1.0 for c in FORECAST_COLUMNS})
    p = frame["pool"].tolist()
    frame.loc[1, "tvlUsd"] = 0.0
    frame.loc[2, "tvlUsd"] = math.nan
    frame.loc[3, "apy"] = math.inf
    frame.loc[4, "tvl_forecast"] = -np.inf
    frame.loc[5, "apyReward"] = math.nan  # a null APY part is allowed
    doubled = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
    monkeypatch.setattr(pool_ingestion, "load_pool_day", lambda engine, day: doubled)
    found = check_pool_day(engine, TODAY)
    assert found["duplicates"] == [f"{TODAY}: pool {p[0]} appears more than once"]
    assert found["finite_values"] == [
        f"{TODAY}: pool {p[1]} has a TVL that is not finite and positive",
        f"{TODAY}: pool {p[2]} has a TVL that is not finite and positive",
        f"{TODAY}: pool {p[3]} has apy = inf",
        f"{TODAY}: pool {p[4]} has tvl_forecast = inf",
    ]
