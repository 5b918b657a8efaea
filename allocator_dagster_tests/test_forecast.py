"""The next-day forecast: no look-ahead, sensible on known series, better than persistence, fast."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from allocator_dagster.forecast import (
    LOOKBACK_DAYS,
    attach_forecast,
    evaluate_forecast,
    forecast_for_day,
    format_table,
    persistence_for_day,
)
from allocator_dagster.sources.records import FORECAST_COLUMNS
from allocator_dagster.sources.sample import SampleUniverse

DAY = date(2026, 5, 1)


def series(pool: str, days: int, *, tvl, base, reward, end: date = DAY) -> pd.DataFrame:
    """`days` daily rows of one pool ending the day before `end`; values are functions of age."""
    ages = np.arange(days, 0, -1)
    dates = [end - timedelta(days=int(a)) for a in ages]
    b = np.array([base(a) for a in ages], dtype=float)
    r = np.array([reward(a) for a in ages], dtype=float)
    return pd.DataFrame(
        {
            "date": pd.to_datetime(dates),
            "pool": pool,
            "tvlUsd": [tvl(a) for a in ages],
            "apy": b + r,
            "apyBase": b,
            "apyReward": r,
        }
    )


@pytest.fixture(scope="module")
def sample() -> SampleUniverse:
    return SampleUniverse(n_pools=1000)


@pytest.fixture(scope="module")
def history(sample: SampleUniverse) -> pd.DataFrame:
    return sample.history(DAY - timedelta(days=LOOKBACK_DAYS), DAY + timedelta(days=5))


def test_rows_on_or_after_the_day_never_change_the_forecast(history: pd.DataFrame) -> None:
    before = history[history["date"] < pd.Timestamp(DAY)]
    expected = forecast_for_day(before, DAY)
    assert len(expected) > 900
    # The full frame holds the day itself and five later days, with values made absurd.
    later = history["date"] >= pd.Timestamp(DAY)
    poisoned = history.copy()
    poisoned.loc[later, ["tvlUsd", "apy", "apyBase", "apyReward"]] *= 1000.0
    shuffled = poisoned.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(forecast_for_day(shuffled, DAY), expected)
    pd.testing.assert_frame_equal(
        persistence_for_day(shuffled, DAY), persistence_for_day(before, DAY)
    )


def test_output_shape_and_pools_without_history(
    history: pd.DataFrame, sample: SampleUniverse
) -> None:
    forecast = forecast_for_day(history, DAY)
    assert list(forecast.columns) == ["pool", *FORECAST_COLUMNS]
    assert forecast["pool"].is_monotonic_increasing and forecast["pool"].is_unique
    assert forecast[list(FORECAST_COLUMNS)].notna().all().all()
    assert np.allclose(
        forecast["apy_forecast"], forecast["apy_base_forecast"] + forecast["apy_reward_forecast"]
    )
    universe, _ = sample.universe_for(DAY)
    extra = universe.iloc[:1].assign(pool="brand-new-pool")
    attached = attach_forecast(pd.concat([universe, extra], ignore_index=True), history, DAY)
    assert attached[attached["pool"] == "brand-new-pool"][list(FORECAST_COLUMNS)].isna().all().all()
    assert attached[list(FORECAST_COLUMNS)].notna().sum().min() >= len(universe) - 5
    assert list(attached.columns[: len(universe.columns)]) == list(universe.columns)
    empty = forecast_for_day(history.iloc[:0], DAY)
    assert empty.empty and list(empty.columns) == ["pool", *FORECAST_COLUMNS]
    assert forecast_for_day(history, DAY - timedelta(days=LOOKBACK_DAYS + 3)).empty


def test_known_series() -> None:
    flat, decaying = (lambda a: 1e6), (lambda a: 10 * 0.95**-a)
    frames = [
        # Constant everything: the forecast is the constant.
        series("flat", 30, tvl=lambda a: 1e6, base=lambda a: 4.0, reward=lambda a: 0.0),
        # Reward decaying 5 % a day: the fit continues the decay one more day.
        series("decay", 30, tvl=flat, base=lambda a: 1.0, reward=decaying),
        # TVL growing 2 % a day: a damped trend, between persistence and full growth.
        series("growth", 30, tvl=lambda a: 1e8 * 1.02**-a, base=lambda a: 2.0, reward=lambda a: 0),
        # One spike yesterday: it must not dominate the base forecast.
        series("spike", 30, tvl=flat, base=lambda a: 50.0 if a == 1 else 5.0, reward=lambda a: 0),
        # Rewards ended: the forecast is 0.
        series("ended", 30, tvl=flat, base=lambda a: 3.0, reward=lambda a: 0.0 if a < 5 else 2.0),
        # A new campaign started two days ago: the forecast follows the new level.
        series("restart", 30, tvl=flat, base=lambda a: 1.0, reward=lambda a: 20 if a <= 2 else 0.5),
    ]  # fmt: skip
    forecast = forecast_for_day(pd.concat(frames, ignore_index=True), DAY).set_index("pool")
    assert forecast.loc["flat", "apy_base_forecast"] == pytest.approx(4.0)
    assert forecast.loc["flat", "tvl_forecast"] == pytest.approx(1e6)
    assert forecast.loc["flat", "apy_reward_forecast"] == 0.0
    assert forecast.loc["decay", "apy_reward_forecast"] == pytest.approx(10 * 0.95**0, rel=1e-6)
    grown = forecast.loc["growth", "tvl_forecast"] / (1e8 / 1.02)  # vs yesterday's TVL
    assert 1.0 < grown < 1.02 and grown == pytest.approx(1.02**0.8, rel=1e-6)
    assert forecast.loc["spike", "apy_base_forecast"] < 15.0
    assert forecast.loc["ended", "apy_reward_forecast"] == 0.0
    assert 10.0 < forecast.loc["restart", "apy_reward_forecast"] <= 20.0


def test_gaps_in_history_forecast_several_days_ahead() -> None:
    growth = series("g", 30, tvl=lambda a: 1e8 * 1.02**-a, base=lambda a: 2.0, reward=lambda a: 0)
    decay = series("d", 30, tvl=lambda a: 1e6, base=lambda a: 1.0, reward=lambda a: 10 * 0.95**-a)
    frame = pd.concat([growth, decay], ignore_index=True)
    three_days_later = forecast_for_day(frame, DAY + timedelta(days=2)).set_index("pool")
    damped = 0.8 + 0.8**2 + 0.8**3
    expected = 1e8 / 1.02 * 1.02**damped  # from the last TVL (DAY - 1), three damped steps
    assert three_days_later.loc["g", "tvl_forecast"] == pytest.approx(expected, rel=1e-6)
    assert three_days_later.loc["d", "apy_reward_forecast"] == pytest.approx(10 * 0.95**2, rel=1e-6)


def test_null_parts_follow_the_model() -> None:
    only_apy = series("a", 10, tvl=lambda a: 1e6, base=lambda a: 3.0, reward=lambda a: 0.0)
    only_apy["apyBase"] = np.nan
    only_apy["apyReward"] = np.nan
    forecast = forecast_for_day(only_apy, DAY).set_index("pool")
    assert forecast.loc["a", "apy_base_forecast"] == pytest.approx(3.0)
    assert forecast.loc["a", "apy_reward_forecast"] == 0.0
    nothing = only_apy.assign(apy=np.nan)
    forecast = forecast_for_day(nothing, DAY).set_index("pool")
    assert math.isnan(forecast.loc["a", "apy_forecast"])
    assert forecast.loc["a", "tvl_forecast"] == pytest.approx(1e6)


def test_beats_persistence_on_the_sample(sample: SampleUniverse) -> None:
    table = evaluate_forecast(sample, date(2026, 9, 1), date(2026, 9, 20)).set_index("target")
    assert table.loc["apy_base", "n"] > 15_000
    for target in ("apy_base", "apy_reward", "apy", "tvl"):
        assert table.loc[target, "method_mae"] < table.loc[target, "persistence_mae"], target
    text = format_table(table.reset_index())
    assert text.splitlines()[0].startswith("| target | n | MAE method")


def test_command_line_evaluation() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "allocator_dagster.forecast", "evaluate", "--days", "3",
         "--end", "2026-02-10", "--n-pools", "200"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "2026-02-08 .. 2026-02-10" in lines[0]
    assert [line.split("|")[1].strip() for line in lines[3:]] == [
        "apy_base",
        "apy_reward",
        "apy",
        "tvl",
    ]
