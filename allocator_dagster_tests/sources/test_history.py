"""Recorded history as a pool source: validated like a live fetch, deterministic, clear errors."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from allocator_dagster.defs.resources import PoolSourceResource
from allocator_dagster.forecast import forecast_for_day
from allocator_dagster.pool_ingestion import PoolDataError, ingest_history_day
from allocator_dagster.sources import load_universe, pool_source
from allocator_dagster.sources.history import HistoryError, PoolHistory, open_history
from allocator_dagster.sources.records import FORECAST_COLUMNS, validate_pool_records
from allocator_dagster.storage.pool_reads import load_pool_day, load_pool_rejections

RECORDING = Path(__file__).parents[1] / "fixtures" / "history" / "chart_2025-06.csv"
FIRST, LAST = date(2025, 6, 1), date(2025, 6, 28)


def rows() -> tuple[list[str], list[dict[str, str]]]:
    with open(RECORDING, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def write_csv(path: Path, header: list[str], body: list[dict[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(body)
    return path


def as_record(row: dict[str, str]) -> dict[str, object]:
    """The CSV row as the live API would have sent it (what a /pools save holds)."""
    number = lambda text: float(text) if text else None  # noqa: E731
    return {
        "pool": row["pool"],
        "chain": row["chain"],
        "project": row["project"],
        "symbol": row["symbol"],
        "tvlUsd": number(row["tvlUsd"]),
        "apy": number(row["apy"]),
        "apyBase": number(row["apyBase"]),
        "apyReward": number(row["apyReward"]),
        "stablecoin": {"True": True, "False": False}.get(row["stablecoin"]),
        "ilRisk": row["ilRisk"] or None,
        "exposure": row["exposure"] or None,
        "underlyingTokens": row["underlyingTokens"].split(";") if row["underlyingTokens"] else None,
    }


def test_the_fixture_replays_day_by_day() -> None:
    recording = PoolHistory(RECORDING)
    assert (recording.start, recording.end, len(recording.days)) == (FIRST, LAST, 28)
    universe, rejections = recording.universe_for(date(2025, 6, 15))
    assert len(universe) == 6 and rejections == []
    assert universe.attrs["source"] == "history"
    # exactly what validating the same records as a live answer gives
    _, body = rows()
    live, _ = validate_pool_records(
        [as_record(r) for r in body if r["date"] == "2025-06-15"], source="history"
    )
    pd.testing.assert_frame_equal(universe, live)
    # deterministic: another reader of the same file, or a gzip copy, gives the same frame
    again, _ = PoolHistory(RECORDING).universe_for(date(2025, 6, 15))
    pd.testing.assert_frame_equal(universe, again)
    history = recording.history(FIRST, LAST)
    assert len(history) == 168 and history["date"].is_monotonic_increasing
    assert list(history.columns) == ["date", "pool", "tvlUsd", "apy", "apyBase", "apyReward"]
    assert history[["apyBase", "apyReward"]].notna().all().all()  # null parts count as 0


def test_gzip_and_a_folder_of_saves_give_the_same_days(tmp_path: Path) -> None:
    packed = tmp_path / "chart.csv.gz"
    with open(RECORDING, "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    folder = tmp_path / "saves"
    folder.mkdir()
    _, body = rows()
    for day in ("2025-06-01", "2025-06-02", "2025-06-03"):
        data = [as_record(r) for r in body if r["date"] == day]
        (folder / f"pools_{day}.json").write_text(json.dumps({"status": "success", "data": data}))
    (folder / "README.txt").write_text("not a save")
    saves, csv_file, gz_file = PoolHistory(folder), PoolHistory(RECORDING), PoolHistory(packed)
    assert saves.days == (date(2025, 6, 1), date(2025, 6, 2), date(2025, 6, 3))
    for day in saves.days:
        expected = csv_file.universe_for(day)
        for other in (saves, gz_file):
            frame, rejections = other.universe_for(day)
            pd.testing.assert_frame_equal(frame, expected[0])
            assert rejections == []
    pd.testing.assert_frame_equal(
        saves.history(FIRST, LAST), csv_file.history(FIRST, date(2025, 6, 3))
    )


def test_bad_rows_are_rejected_like_a_live_fetch_and_named(tmp_path: Path) -> None:
    header, body = rows()
    body = [dict(r) for r in body]
    day = [r for r in body if r["date"] == "2025-06-02"]
    day[0]["tvlUsd"] = "inf"
    day[1]["tvlUsd"] = "nan"
    day[2]["apyBase"] = "lots"
    day[3]["symbol"] = ""
    path = write_csv(tmp_path / "bad.csv", header, body)
    line = {id(r): n + 2 for n, r in enumerate(body)}  # the header is line 1
    universe, rejections = PoolHistory(path).universe_for(date(2025, 6, 2))
    assert len(universe) == 2 and len(rejections) == 4
    by_pool = {r.pool_id: r for r in rejections}
    for row, field in zip(day[:4], ("tvlUsd", "tvlUsd", "apyBase", "symbol"), strict=True):
        rejection = by_pool[row["pool"]]
        assert rejection.row_number == line[id(row)]
        assert rejection.reason.startswith(f"{path} line {line[id(row)]}: ")
        assert f"'{field}'" in rejection.reason
    assert "not finite" in by_pool[day[0]["pool"]].reason
    # the other days are untouched
    assert len(PoolHistory(path).universe_for(date(2025, 6, 3))[0]) == 6


def test_a_file_that_cannot_be_used_is_a_clear_error(tmp_path: Path) -> None:
    header, body = rows()
    no_tvl = write_csv(tmp_path / "no_tvl.csv", [h for h in header if h != "tvlUsd"], body)
    with pytest.raises(HistoryError, match=r"no_tvl\.csv: missing column\(s\) tvlUsd"):
        PoolHistory(no_tvl)
    body = [dict(r) for r in body]
    body[5]["date"] = "2025-13-01"
    bad_date = write_csv(tmp_path / "bad_date.csv", header, body)
    with pytest.raises(HistoryError, match=r"bad_date\.csv: line 7, field 'date': '2025-13-01'"):
        PoolHistory(bad_date)
    with pytest.raises(HistoryError, match=r"chart_2025-06\.csv: no records for 2025-07-01 "):
        PoolHistory(RECORDING).universe_for(date(2025, 7, 1))
    with pytest.raises(HistoryError, match="no such file"):
        PoolHistory(tmp_path / "missing.csv")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HistoryError, match="no daily /pools saves"):
        PoolHistory(empty)
    (empty / "2025-06-01.json").write_text('{"status": "error", "data": []}')
    with pytest.raises(HistoryError, match=r"2025-06-01\.json: the save's status is 'error'"):
        PoolHistory(empty).universe_for(date(2025, 6, 1))
    (empty / "2025-06-01.json").write_text("[1, 2")
    with pytest.raises(HistoryError, match=r"2025-06-01\.json: not JSON"):
        PoolHistory(empty).universe_for(date(2025, 6, 1))


def test_ingest_stores_the_day_with_a_forecast_from_earlier_days(engine: sa.Engine) -> None:
    recording = open_history(RECORDING)
    day = date(2025, 6, 20)
    result = ingest_history_day(engine, day, recording)
    assert result.source == "history" and result.stored_rows == 6
    stored = load_pool_day(engine, day)
    assert len(stored) == 6 and stored[list(FORECAST_COLUMNS)].notna().all().all()
    # the forecast reads only the recording's days before `day`
    expected = forecast_for_day(recording.history(FIRST, day - timedelta(days=1)), day)
    assert stored["apy_base_forecast"].tolist() == pytest.approx(
        expected.set_index("pool").loc[stored["pool"], "apy_base_forecast"].tolist()
    )
    assert load_pool_rejections(engine, day) == []
    # the first day has no history: stored without a forecast
    first = ingest_history_day(engine, FIRST, recording)
    assert first.universe[list(FORECAST_COLUMNS)].isna().all().all()
    with pytest.raises(PoolDataError, match="no records for 2025-07-01"):
        ingest_history_day(engine, date(2025, 7, 1), recording)


def test_the_pool_source_resource_and_setting(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    resource = PoolSourceResource(source="history", history_file=str(RECORDING))
    assert resource.ingest(engine, date(2025, 6, 10)).stored_rows == 6
    with pytest.raises(HistoryError, match="ALLOCATOR_HISTORY_FILE"):
        PoolSourceResource(source="history").ingest(engine, date(2025, 6, 10))
    assert pool_source("history") == "history"
    monkeypatch.setenv("ALLOCATOR_HISTORY_FILE", str(RECORDING))
    frame, rejections, name = load_universe(date(2025, 6, 10), source="history")
    assert (len(frame), rejections, name) == (6, [], "history")
