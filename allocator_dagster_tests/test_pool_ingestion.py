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
from allocator_dagster.forecast import LOOKBACK_DAYS, attach_forecast
from allocator_dagster.pool_ingestion import (
    POOL_CHECKS,
    PoolDataError,
    check_pool_day,
    ingest_defillama_day,
    ingest_sample_day,
    sample_universe,
)
from allocator_dagster.sources.records import FORECAST_COLUMNS, validate_pool_records
from allocator_dagster.storage.day_series import load_day_series, pack_floats, pack_ids
from allocator_dagster.storage.pool_days import stored_pool_days
from allocator_dagster.storage.pool_history import load_pool_history
from allocator_dagster.storage.pool_reads import load_pool_day, load_pool_rejections
from allocator_dagster.storage.pool_writes import replace_pool_day
from allocator_dagster.storage.schema import pool_daily_metrics, pool_day_series

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
    monkeypatch.setattr(pool_ingestion, "load_pool_values", lambda engine, day: doubled)
    found = check_pool_day(engine, TODAY)
    assert found["duplicates"] == [f"{TODAY}: pool {p[0]} appears more than once"]
    assert found["finite_values"] == [
        f"{TODAY}: pool {p[1]} has a TVL that is not finite and positive",
        f"{TODAY}: pool {p[2]} has a TVL that is not finite and positive",
        f"{TODAY}: pool {p[3]} has apy = inf",
        f"{TODAY}: pool {p[4]} has tvl_forecast = inf",
    ]


# ------------------------------------------------------------------ staged swap (issue 10 §1)


def _stored_week(engine: sa.Engine, frame: pd.DataFrame, size: int) -> None:
    """Seven accepted full days of `size` pools before TODAY."""
    for k in range(1, 8):
        replace_pool_day(
            engine, TODAY - dt.timedelta(days=k), frame.iloc[:size], [], source="defillama"
        )


def _fetch(frame: pd.DataFrame, rejections=()):
    return lambda: (frame.reset_index(drop=True), list(rejections))


@pytest.mark.parametrize("share", [0.0, 0.6])
def test_a_refetch_with_an_empty_or_partial_list_keeps_the_stored_day(
    engine: sa.Engine, share: float
) -> None:
    frame, _ = validate_pool_records(records(), source="defillama")
    _stored_week(engine, frame, 40)
    first = validate_pool_records(records()[:40] + [{"pool": "x"}], source="defillama")
    ingest_defillama_day(engine, TODAY, lambda: first, today=TODAY)
    before = load_pool_day(engine, TODAY)
    assert len(before) == 40
    partial = frame.iloc[: int(40 * share)]
    with pytest.raises(PoolDataError) as refused:
        ingest_defillama_day(engine, TODAY, _fetch(partial), today=TODAY)
    message = str(refused.value)
    assert f"data for {TODAY} refused, the stored day (40 pools) is kept" in message
    if share == 0:
        assert "no pools (an empty answer is never a day's universe)" in message
    else:
        assert "24 pools against a median of 40 over the last 7 accepted day(s)" in message
    pd.testing.assert_frame_equal(load_pool_day(engine, TODAY), before)
    assert load_pool_rejections(engine, TODAY) == first[1]  # the day's rejections stay too


def test_a_refused_day_never_becomes_the_reference(engine: sa.Engine) -> None:
    frame, _ = validate_pool_records(records(), source="defillama")
    small = frame.iloc[:10]
    _stored_week(engine, frame, 10)
    swollen = frame.iloc[:40]  # 4x the usual universe (a duplicated page, a glitch)
    with pytest.raises(PoolDataError, match="40 pools against a median of 10"):
        ingest_defillama_day(engine, TODAY, _fetch(swollen), today=TODAY)
    assert load_pool_day(engine, TODAY).empty
    tomorrow = TODAY + dt.timedelta(days=1)
    result = ingest_defillama_day(engine, tomorrow, _fetch(small), today=tomorrow)
    assert result.stored_rows == 10
    assert check_pool_day(engine, tomorrow) == {name: [] for name in POOL_CHECKS}


def test_an_outlier_stored_day_does_not_block_the_next_good_day(engine: sa.Engine) -> None:
    frame, _ = validate_pool_records(records(), source="defillama")
    _stored_week(engine, frame, 10)
    # a day stored before the checks existed (or by hand) with 4x the pools
    replace_pool_day(engine, TODAY - dt.timedelta(days=1), frame.iloc[:40], [], source="x")
    result = ingest_defillama_day(engine, TODAY, _fetch(frame.iloc[:10]), today=TODAY)
    assert result.stored_rows == 10
    assert check_pool_day(engine, TODAY)["row_count"] == []


def test_the_first_live_fetch_after_a_history_import_is_the_bootstrap(engine: sa.Engine) -> None:
    frame, _ = validate_pool_records(records(), source="defillama")
    for k in range(1, 8):  # `allocator pools import-history --top 4`: chart rows only
        replace_pool_day(
            engine, TODAY - dt.timedelta(days=k), frame.iloc[:4], [], source="defillama-chart"
        )
    result = ingest_defillama_day(engine, TODAY, _fetch(frame.iloc[:40]), today=TODAY)
    assert result.stored_rows == 40
    assert check_pool_day(engine, TODAY) == {name: [] for name in POOL_CHECKS}
    tomorrow = TODAY + dt.timedelta(days=1)
    with pytest.raises(PoolDataError, match="4 pools against a median of 40"):
        ingest_defillama_day(engine, tomorrow, _fetch(frame.iloc[:4]), today=tomorrow)


# ------------------------------------------------------------------ hostile records


def test_an_unstorable_character_rejects_that_record_only(engine: sa.Engine) -> None:
    data = records()[:10]
    hostile = [
        dict(data[0], symbol="USDC\x00DROP"),
        dict(data[1], poolMeta="\ud800 lone surrogate"),
        dict(data[2], underlyingTokens=["0xabc\x00"]),
        dict(data[3], pool="bad\x00pool"),
    ]
    fetched = validate_pool_records(data[4:] + hostile, source="defillama")
    result = ingest_defillama_day(engine, TODAY, lambda: fetched, today=TODAY)
    assert result.stored_rows == 6
    assert set(load_pool_day(engine, TODAY)["pool"]) == {r["pool"] for r in data[4:]}
    stored = load_pool_rejections(engine, TODAY)
    assert [(r.row_number, r.pool_id, r.reason) for r in stored] == [
        (6, data[0]["pool"], "field 'symbol' holds a NUL character"),
        (7, data[1]["pool"], "field 'poolMeta' holds an unpaired surrogate U+D800"),
        (8, data[2]["pool"], "field 'underlyingTokens' holds a NUL character"),
        (9, "bad\\x00pool", "field 'pool' holds a NUL character"),
    ]


def test_absurd_but_finite_apy_and_tvl_are_rejected_with_the_reason(engine: sa.Engine) -> None:
    data = records()[:10]
    absurd = [
        dict(data[0], apyBase=5000.0, apy=5003.0),
        dict(data[1], apy=1e300, apyBase=None, apyReward=None),
        dict(data[2], tvlUsd=5e15),
    ]
    fetched = validate_pool_records(data[3:] + absurd, source="defillama")
    result = ingest_defillama_day(engine, TODAY, lambda: fetched, today=TODAY)
    assert result.stored_rows == 7
    assert [r.reason for r in load_pool_rejections(engine, TODAY)] == [
        "field 'apy' is beyond the ceiling of ±1000 %: 5003.0",
        "field 'apy' is beyond the ceiling of ±1000 %: 1e+300",
        "field 'tvlUsd' is above the ceiling of 1e+12 USD: 5000000000000000.0",
    ]


# ------------------------------------------------------------------ the packed days (issue 16)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.where(np.isnan(a), np.nan, a), np.where(np.isnan(b), np.nan, b)
    return a.tobytes() == b.tobytes()


def test_the_live_forecast_is_the_same_from_packed_days_and_from_rows(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = sample_universe(7, 150)
    today = source.start + dt.timedelta(days=LOOKBACK_DAYS + 10)
    gap, unpacked = today - dt.timedelta(days=17), today - dt.timedelta(days=5)
    for back in range(LOOKBACK_DAYS + 2, 0, -1):  # the window, and days before it
        day = today - dt.timedelta(days=back)
        if day != gap:
            universe, rejections = source.universe_for(day)
            replace_pool_day(engine, day, universe, rejections, source="defillama")
    with engine.begin() as conn:  # a day stored by an older version: rows, no packed row
        conn.execute(pool_day_series.delete().where(pool_day_series.c.metric_date == unpacked))
    universe, rejections = source.universe_for(today)
    read_from_rows: list[list[dt.date]] = []

    def history_spy(engine: sa.Engine, **kwargs):
        read_from_rows.append(sorted(kwargs["only_days"]))
        return load_pool_history(engine, **kwargs)

    monkeypatch.setattr(pool_ingestion, "load_pool_history", history_spy)

    def stored_forecast() -> pd.DataFrame:
        ingest_defillama_day(engine, today, lambda: (universe, rejections), today=today)
        return load_pool_day(engine, today)[["pool", *FORECAST_COLUMNS]]

    from_packed = stored_forecast()
    assert read_from_rows == [[gap, unpacked]]  # only the days without a packed row
    # the forecast as it was computed before the packed days: from the rows' history frame
    history = load_pool_history(engine, before=today, days=LOOKBACK_DAYS)
    expected = attach_forecast(universe, history, today).sort_values("pool")
    with engine.begin() as conn:
        conn.execute(pool_day_series.delete())
    read_from_rows.clear()
    from_rows = stored_forecast()
    assert len(read_from_rows[0]) == LOOKBACK_DAYS  # every day from the rows this time
    assert from_packed["pool"].tolist() == from_rows["pool"].tolist()
    assert from_packed["pool"].tolist() == expected["pool"].tolist()
    for column in FORECAST_COLUMNS:
        values = from_packed[column].to_numpy()
        assert np.isfinite(values).sum() > 100, column  # there is a forecast to compare
        assert _same_bits(values, from_rows[column].to_numpy()), column
        assert _same_bits(values, expected[column].to_numpy()), column


@pytest.mark.parametrize("tamper", ["number", "pools", "missing", "rows"])
def test_a_packed_day_that_differs_from_its_rows_fails_the_check(
    engine: sa.Engine, tamper: str
) -> None:
    frame, _ = validate_pool_records(records()[:10], source="defillama")
    replace_pool_day(engine, TODAY, frame, [], source="defillama")
    assert check_pool_day(engine, TODAY)["packed_row"] == []
    series = load_day_series(engine, first=TODAY, before=TODAY + dt.timedelta(days=1))[TODAY]
    pools = list(series.pools)
    where = pool_day_series.c.metric_date == TODAY
    with engine.begin() as conn:
        if tamper == "number":  # one bit of one TVL
            tvl = series.values["tvlUsd"].copy()
            tvl[3] = np.nextafter(tvl[3], np.inf)
            conn.execute(pool_day_series.update().where(where).values(tvl_usd=pack_floats(tvl)))
            expected = [
                f"{TODAY}: the packed tvlUsd of 1 pool(s) differs from the rows ({pools[3]})"
            ]
        elif tamper == "pools":
            ids = [*pools[:3], "someone-else", *pools[4:]]
            conn.execute(pool_day_series.update().where(where).values(pool_ids=pack_ids(ids)))
            expected = [
                f"{TODAY}: the packed row lists 10 pools, the rows 10; only packed: someone-else; "
                f"only in rows: {pools[3]}"
            ]
        elif tamper == "missing":
            conn.execute(pool_day_series.delete().where(where))
            expected = [f"{TODAY}: 10 pool rows but no packed row"]
        else:  # the rows changed behind the packed row: a NULL APY became a number
            table = pool_daily_metrics
            conn.execute(
                table.update()
                .where(table.c.metric_date == TODAY, table.c.pool_id == pools[0])
                .values(apy_reward=12.5)
            )
            assert (
                math.isnan(series.values["apyReward"][0]) or series.values["apyReward"][0] != 12.5
            )
            expected = [
                f"{TODAY}: the packed apyReward of 1 pool(s) differs from the rows ({pools[0]})"
            ]
    found = check_pool_day(engine, TODAY)
    assert found["packed_row"] == expected
    assert found["duplicates"] == found["finite_values"] == []
