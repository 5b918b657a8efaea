"""Baselines the robust forecast is measured against: persistence (tomorrow equals today) and
the method it replaced ("previous" in docs/forecast.md). Neither is used to allocate."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from allocator_dagster.forecast.robust import (
    LOOKBACK_DAYS,
    empty_forecast,
    factorize_pools,
    lookback_window,
    null_rules,
)
from allocator_dagster.sources.records import FORECAST_COLUMNS


def persistence_for_day(history: pd.DataFrame, day: date) -> pd.DataFrame:
    """The naive forecast: each pool's latest values before `day` (tomorrow equals today)."""
    dates = pd.to_datetime(history["date"]).to_numpy()
    frame = history.loc[dates < np.datetime64(pd.Timestamp(day).to_datetime64())]
    if frame.empty:
        return empty_forecast()
    codes, pools = pd.factorize(frame["pool"].to_numpy(dtype=object), sort=True)
    stamp = pd.to_datetime(frame["date"]).to_numpy().astype("datetime64[D]").astype(np.int64)
    order = np.lexsort((stamp, codes))
    codes = codes[order]
    last = np.flatnonzero(np.append(codes[1:] != codes[:-1], True))
    out = {"pool": pd.Series(np.asarray(pools, dtype=object), dtype="str")}
    sources = ("apy", "apyBase", "apyReward", "tvlUsd")
    for column, source in zip(FORECAST_COLUMNS, sources, strict=True):
        values = np.full(len(pools), np.nan)
        values[codes[last]] = frame[source].to_numpy(dtype=float)[order][last]
        out[column] = values
    return pd.DataFrame(out)


# The method used until the robust forecast replaced it, kept only as the baseline that
# `evaluate` compares against ("previous" in docs/forecast.md): an exponentially weighted base
# APY with spikes capped at 2.5 x a weighted geometric mean, a decaying log-linear reward fit
# since the latest campaign start, and the last TVL moved by a damped trend.
_PREV_BASE_HALF_LIFE = 3.0
_PREV_SPIKE_CAP = 2.5
_PREV_REWARD_WINDOW_DAYS = 21
_PREV_REWARD_HALF_LIFE = 7.0
_PREV_MIN_REWARD_SLOPE = -0.2
_PREV_REWARD_JUMP = 0.4
_PREV_TVL_HALF_LIFE = 1.5
_PREV_TVL_DAMPING = 0.8
_PREV_TVL_TREND_DAYS = 14


def previous_forecast_for_day(history: pd.DataFrame, day: date) -> pd.DataFrame:
    """The previous method's forecasts for `day` (a baseline for `evaluate`, not used to
    allocate)."""
    if history.empty:
        return empty_forecast()
    _target, frame, age_days = lookback_window(history, day)
    if frame.empty:
        return empty_forecast()
    age = age_days.astype(float)
    codes, pools = factorize_pools(frame["pool"].to_numpy(dtype=object))
    n = len(pools)
    order = np.argsort(codes * (LOOKBACK_DAYS + 1) + (LOOKBACK_DAYS - age_days), kind="stable")
    codes, age = codes[order], age[order]
    tvl = frame["tvlUsd"].to_numpy(dtype=float)[order]
    base, reward = null_rules(
        frame["apy"].to_numpy(dtype=float)[order],
        frame["apyBase"].to_numpy(dtype=float)[order],
        frame["apyReward"].to_numpy(dtype=float)[order],
    )
    base_f = _prev_base(codes, age, base, n)
    reward_f = _prev_reward(codes, age, reward, n)
    tvl_f = _prev_tvl(codes, age, tvl, n)
    return pd.DataFrame(
        {
            "pool": pd.Series(np.asarray(pools, dtype=object), dtype="str"),
            "apy_forecast": base_f + reward_f,
            "apy_base_forecast": base_f,
            "apy_reward_forecast": reward_f,
            "tvl_forecast": tvl_f,
        }
    )


def _decay(age: np.ndarray, half_life: float) -> np.ndarray:
    """Weights halving every `half_life` days; the most recent day (age 1) weighs 1."""
    return np.exp((1.0 - age) * (np.log(2.0) / half_life))


def _prev_base(codes: np.ndarray, age: np.ndarray, base: np.ndarray, n: int) -> np.ndarray:
    ok = np.isfinite(base)
    c, a, v = codes[ok], age[ok], np.maximum(base[ok], 0.0)
    w = _decay(a, _PREV_BASE_HALF_LIFE)
    total = np.bincount(c, weights=w, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        typical = np.exp(np.bincount(c, weights=w * np.log(v + 0.01), minlength=n) / total) - 0.01
        capped = np.minimum(v, _PREV_SPIKE_CAP * np.maximum(typical[c], 0.0) + 0.01)
        return np.bincount(c, weights=w * capped, minlength=n) / total


def _latest(
    codes: np.ndarray, age: np.ndarray, values: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per pool, the value and age of its most recent row (rows grouped by pool, oldest first)."""
    value = np.full(n, np.nan)
    when = np.full(n, np.nan)
    if len(codes):
        last = np.flatnonzero(np.append(codes[1:] != codes[:-1], True))
        value[codes[last]] = values[last]
        when[codes[last]] = age[last]
    return value, when


def _step_changes(
    codes: np.ndarray, age: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pool, age, change per day, valid) between consecutive rows of each pool."""
    same = codes[1:] == codes[:-1]
    gap = age[:-1] - age[1:]
    valid = same & (gap > 0)
    with np.errstate(invalid="ignore"):
        change = (values[1:] - values[:-1]) / np.where(valid, gap, 1.0)
    return codes[1:], age[1:], change, valid & np.isfinite(change)


def _prev_reward(codes: np.ndarray, age: np.ndarray, reward: np.ndarray, n: int) -> np.ndarray:
    ok = np.isfinite(reward)
    last, _ = _latest(codes[ok], age[ok], reward[ok], n)
    pos = ok & (reward > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(np.where(pos, reward, np.nan))
    jc, ja, jump, valid = _step_changes(codes[ok], age[ok], logs[ok])
    jumped = valid & (jump > _PREV_REWARD_JUMP)
    since = np.full(n, np.inf)
    np.minimum.at(since, jc[jumped], ja[jumped])
    fit = pos & (age <= _PREV_REWARD_WINDOW_DAYS) & (age <= since[codes])
    c, t, y = codes[fit], -age[fit], logs[fit]
    w = _decay(-t, _PREV_REWARD_HALF_LIFE)
    sw = np.bincount(c, weights=w, minlength=n)
    st = np.bincount(c, weights=w * t, minlength=n)
    sy = np.bincount(c, weights=w * y, minlength=n)
    stt = np.bincount(c, weights=w * t * t, minlength=n)
    sty = np.bincount(c, weights=w * t * y, minlength=n)
    count = np.bincount(c, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        denom = sw * stt - st * st
        slope = np.where((count >= 3) & (denom > 1e-12), (sw * sty - st * sy) / denom, 0.0)
        slope = np.clip(slope, _PREV_MIN_REWARD_SLOPE, 0.0)
        fitted = np.exp((sy - slope * st) / sw)
    return np.where(last > 0, np.where(sw > 0, fitted, last), np.where(np.isnan(last), np.nan, 0.0))


def _prev_tvl(codes: np.ndarray, age: np.ndarray, tvl: np.ndarray, n: int) -> np.ndarray:
    ok = np.isfinite(tvl) & (tvl > 0)
    c, a, v = codes[ok], age[ok], np.log(tvl[ok])
    last, last_age = _latest(c, a, v, n)
    cg, ag, change, valid = _step_changes(c, a, v)
    use = valid & (ag <= _PREV_TVL_TREND_DAYS)
    w = _decay(ag[use], _PREV_TVL_HALF_LIFE)
    with np.errstate(invalid="ignore", divide="ignore"):
        trend = np.bincount(cg[use], weights=w * change[use], minlength=n) / np.bincount(
            cg[use], weights=w, minlength=n
        )
    trend = np.nan_to_num(trend, nan=0.0)
    steps = np.nan_to_num(last_age, nan=1.0)
    damped = _PREV_TVL_DAMPING * (1.0 - _PREV_TVL_DAMPING**steps) / (1.0 - _PREV_TVL_DAMPING)
    with np.errstate(over="ignore"):
        return np.exp(last + damped * trend)
