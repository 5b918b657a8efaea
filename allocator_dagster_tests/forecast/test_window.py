"""The forecast window moved day by day gives exactly the matrices built from the history."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from allocator_dagster.forecast.robust import LOOKBACK_DAYS, forecast_for_day, matrices
from allocator_dagster.forecast.window import ForecastWindow
from allocator_dagster.pool_ingestion import sample_day_frame, sample_universe
from allocator_dagster.sources.sample import SampleUniverse

START = dt.date(2025, 1, 1)


def rebuilt(history, start: dt.date, day: dt.date) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """`robust.matrices` on the history frame of the window before `day`."""
    first = max(start, day - dt.timedelta(days=LOOKBACK_DAYS))
    if day <= first:
        return np.array([], dtype=object), {}
    return matrices(history(first, day - dt.timedelta(days=1)), day)


def assert_identical(window: ForecastWindow, history, start: dt.date, day: dt.date) -> None:
    pools, values = window.matrices(day, history)
    want_pools, want = rebuilt(history, start, day)
    assert pools.dtype == want_pools.dtype and pools.tolist() == want_pools.tolist(), day
    assert values.keys() == want.keys(), day
    for series in want:  # bit for bit, NaN included
        assert values[series].shape == want[series].shape, (day, series)
        assert values[series].tobytes() == want[series].tobytes(), (day, series)


def test_the_sample_window_equals_the_rebuilt_matrices_forward_and_back() -> None:
    source = SampleUniverse(seed=3, n_pools=300, start=START)
    window = ForecastWindow(START)
    forward = [START + dt.timedelta(days=k) for k in range(0, 75)]  # the start, chunk edges
    jumps = [dt.date(2025, 9, 1), dt.date(2025, 6, 1), dt.date(2025, 6, 3), START]
    for day in forward + jumps:
        assert_identical(window, source.history, START, day)


def hostile_history(first: dt.date, last: dt.date) -> pd.DataFrame:
    """Rows in no order (the days newest first, each day's rows shuffled), duplicated (pool,
    day) rows with other values, gaps, pools that come and go, and values the forecast must
    ignore (negative, NaN, infinite, absurd). Each day's rows are the same whatever is asked."""
    days = []
    day = first
    while day <= last:
        k = (day - START).days
        rng = np.random.default_rng([11, k])
        rows = []
        if k % 9 != 4:  # a gap every ninth day
            for p in range(12):
                if (p + k) % 7 == 0:  # the pool is missing that day
                    continue
                value = float(rng.choice([3.5, -2.0, np.nan, np.inf, 1e9, 0.0, 12.25]))
                rows.append((day, f"pool-{p:02d}", 1e6 * (p + 1), value, value / 2, np.nan))
                if p % 5 == 0:  # a duplicated row with other values
                    rows.append((day, f"pool-{p:02d}", 2e6, 1.0, 0.5, 0.5))
        days.append([rows[i] for i in rng.permutation(len(rows))])
        day += dt.timedelta(days=1)
    rows = [row for each in reversed(days) for row in each]
    frame = pd.DataFrame(rows, columns=["date", "pool", "tvlUsd", "apy", "apyBase", "apyReward"])
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    frame["pool"] = frame["pool"].astype("str")
    return frame


def test_hostile_rows_give_the_same_matrices() -> None:
    window = ForecastWindow(START)
    for k in [0, 1, 2, 3, 30, 61, 62, 63, 64, 100, 40, 41, 150]:
        assert_identical(window, hostile_history, START, START + dt.timedelta(days=k))


def test_the_sample_day_frame_forecast_is_the_history_forecast() -> None:
    source = sample_universe(5, 250)
    day = dt.date(2025, 4, 20)
    frame, _ = sample_day_frame(source, day)
    history = source.history(day - dt.timedelta(days=LOOKBACK_DAYS), day - dt.timedelta(days=1))
    expected = forecast_for_day(history, day).set_index("pool").reindex(frame["pool"])
    got = frame.set_index("pool")[expected.columns]
    assert got.notna().any().all()  # there is a forecast to compare
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_names=False)


def test_pool_ids_must_be_text() -> None:
    def numbered(first: dt.date, last: dt.date) -> pd.DataFrame:
        frame = hostile_history(first, last)
        frame["pool"] = frame["pool"].str[5:].astype(int)
        return frame

    with pytest.raises(TypeError, match="must be str"):
        ForecastWindow(START).matrices(START + dt.timedelta(days=3), numbered)
