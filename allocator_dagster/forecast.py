"""Next-day forecasts of each pool's APY and TVL that one bad day cannot move.

The allocation for day D is decided with the values expected on D (MODEL.md uses the forecast
columns for `apy_i`, `apyBase_i`, `apyReward_i` and `tvl_i`), computed only from rows dated
before D. Pool data glitches: an API answers 5,000 % for one day, or 1e300, and is back to
3.52 % the next. Money must not follow such a day, so each series (base APY, reward APY, TVL)
is forecast robustly, on a log scale (`log(apy + APY_OFFSET)`, `log(1 + tvl)`), per pool:

* values that are not numbers a yield or TVL can have (negative, above `MAX_APY` % or
  `MAX_TVL` USD) are ignored, as missing days are;
* the recent level is the median of the last `2 * persist_days - 1` observations: one odd day
  never moves it, a new level that persists `persist_days` days does;
* the newest observation is used as it is when it lies within `threshold` robust standard
  deviations (1.4826 x the median absolute deviation over the long window, at least
  `SCALE_FLOOR`) of the recent level (a Hampel filter), or within `band` of it (log units: a
  pool whose series is usually still may still move by that much without waiting), and is
  replaced by the recent level when not;
* the forecast shrinks toward the pool's long-run level, the median of its observations in the
  last `long_days` days: `long + weight * (recent - long)`;
* and it stays within `max_step` (in log) of the level the rule gives from the days before the
  newest one, so the newest day can move the forecast by at most `max_step`, however it looks.

The rules were tuned on the real DefiLlama history of 2023-2024 and are measured on 2025
(`docs/forecast.md`; `python -m allocator_dagster.forecast evaluate|tune`). Pools without any
usable row before D get no forecast (NaN); the model falls back to current values.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

import numpy as np
import pandas as pd

from allocator_dagster.sources.records import FORECAST_COLUMNS

LOOKBACK_DAYS = 60
APY_OFFSET = 1.0  # percentage points added before the log: 0 % is a value, not minus infinity
MAX_APY = 1e6  # percent a year; above it a value is a broken number, not a yield
MAX_TVL = 1e13  # USD; more than all of DeFi
SCALE_FLOOR = 0.05  # log units: the Hampel band is never narrower than a few percent


@dataclass(frozen=True)
class SeriesRule:
    """How one series is forecast (see the module docstring for each field's meaning)."""

    persist_days: int
    threshold: float
    long_days: int
    weight: float
    max_step: float
    band: float = 0.0  # log units: a newest value this close to the recent level is always used

    def __post_init__(self) -> None:
        if not 1 <= self.persist_days <= 10:
            raise ValueError(f"persist_days must be in 1..10, got {self.persist_days}")
        if not 1 <= self.long_days <= LOOKBACK_DAYS:
            raise ValueError(f"long_days must be in 1..{LOOKBACK_DAYS}, got {self.long_days}")
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"weight must be in [0, 1], got {self.weight}")
        if not (self.threshold > 0 and self.max_step > 0):
            raise ValueError("threshold and max_step must be positive")
        if not 0.0 <= self.band <= self.max_step:
            raise ValueError(f"band must be in [0, max_step], got {self.band}")


SERIES = ("base", "reward", "tvl")
# Tuned on 2023-01-01 .. 2024-12-31 of the real history (`python -m allocator_dagster.forecast tune`).
RULES: dict[str, SeriesRule] = {
    "base": SeriesRule(
        persist_days=2, threshold=5.0, long_days=14, weight=0.5, max_step=0.7, band=0.7
    ),
    "reward": SeriesRule(
        persist_days=2, threshold=5.0, long_days=60, weight=1.0, max_step=1.4, band=0.7
    ),
    "tvl": SeriesRule(
        persist_days=2, threshold=5.0, long_days=60, weight=1.0, max_step=1.4, band=1.1
    ),
}

OUTPUT_COLUMNS = ("pool", *FORECAST_COLUMNS)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pool": pd.Series([], dtype="str"),
            **{c: pd.Series([], dtype="float64") for c in FORECAST_COLUMNS},
        }
    )


def _factorize_sorted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`pd.factorize(values, sort=True)` for pool ids: a few hundred ids repeated over the
    lookback, so a dict of the distinct ids is several times faster than hashing every row."""
    listed = values.tolist()
    uniques = sorted(dict.fromkeys(listed))
    if not all(type(p) is str for p in uniques):  # anything but plain ids: pandas' way
        return pd.factorize(values, sort=True)
    position = {p: i for i, p in enumerate(uniques)}
    codes = np.fromiter(map(position.__getitem__, listed), dtype=np.intp, count=len(listed))
    return codes, np.array(uniques, dtype=object)


def _window(history: pd.DataFrame, day: date) -> tuple[np.datetime64, pd.DataFrame, np.ndarray]:
    """(target day, rows of the lookback before it, their age in days >= 1)."""
    target = np.datetime64(pd.Timestamp(day).normalize().to_datetime64(), "D")
    dates = pd.to_datetime(history["date"]).to_numpy().astype("datetime64[D]")
    keep = (dates < target) & (dates >= target - np.timedelta64(LOOKBACK_DAYS, "D"))
    age = (target - dates[keep]).astype(np.int64)
    return target, history.loc[keep], age


def _null_rules(
    apy: np.ndarray, base: np.ndarray, reward: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """MODEL.md's null rules: a missing part is 0 when the other exists; apy alone is all base."""
    only_apy = np.isnan(base) & np.isnan(reward) & np.isfinite(apy)
    base_out = np.where(only_apy, apy, np.where(np.isnan(base) & np.isfinite(reward), 0.0, base))
    reward_out = np.where(
        only_apy, 0.0, np.where(np.isnan(reward) & np.isfinite(base), 0.0, reward)
    )
    return base_out, reward_out


def _to_log(values: np.ndarray, series: str) -> np.ndarray:
    """The series on the forecast's log scale; impossible values become NaN (ignored)."""
    with np.errstate(invalid="ignore", over="ignore"):
        if series == "tvl":
            ok = np.isfinite(values) & (values >= 0) & (values <= MAX_TVL)
            return np.where(ok, np.log1p(np.where(ok, values, 0.0)), np.nan)
        ok = np.isfinite(values) & (values > -APY_OFFSET) & (values <= MAX_APY)
        return np.where(ok, np.log(np.maximum(np.where(ok, values, 0.0), 0.0) + APY_OFFSET), np.nan)


def _from_log(values: np.ndarray, series: str) -> np.ndarray:
    if series == "tvl":
        return np.expm1(values)
    return np.maximum(np.exp(values) - APY_OFFSET, 0.0)


def matrices(history: pd.DataFrame, day: date) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(pools, {series: pools x LOOKBACK_DAYS matrix}) of the log values before `day`.

    Column j holds the value of age j + 1 days (newest first), NaN where the pool has no usable
    value that day. Only rows dated in the `LOOKBACK_DAYS` days before `day` are read.
    """
    _target, frame, age = _window(history, day)
    if frame.empty:
        return np.array([], dtype=object), {}
    codes, pools = _factorize_sorted(frame["pool"].to_numpy(dtype=object))
    base, reward = _null_rules(
        frame["apy"].to_numpy(dtype=float),
        frame["apyBase"].to_numpy(dtype=float),
        frame["apyReward"].to_numpy(dtype=float),
    )
    raw = {"base": base, "reward": reward, "tvl": frame["tvlUsd"].to_numpy(dtype=float)}
    # one value per (pool, age): sorting makes a duplicated row's survivor deterministic
    order = np.lexsort((age, codes))
    out = {}
    for series, values in raw.items():
        dense = np.full((len(pools), LOOKBACK_DAYS), np.nan)
        dense[codes[order], age[order] - 1] = _to_log(values[order], series)
        out[series] = dense
    return pools, out


def _median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row medians of the masked entries (NaN for a row with none), without NaN warnings."""
    kept = np.where(mask, values, np.inf)
    kept.sort(axis=1)
    count = mask.sum(axis=1)
    lo = np.maximum((count - 1) // 2, 0)[:, None]
    hi = np.maximum(count // 2, 0)[:, None]
    low = np.take_along_axis(kept, lo, axis=1)[:, 0]
    high = np.take_along_axis(kept, hi, axis=1)[:, 0]
    with np.errstate(invalid="ignore"):
        middle = np.where(count > 0, (low + high) / 2.0, np.nan)
    return np.where(count > 0, middle, np.nan)


def _level(values: np.ndarray, rule: SeriesRule) -> np.ndarray:
    """The rule's forecast (log scale) from a newest-first matrix, before the step cap."""
    seen = np.isfinite(values)
    rank = np.cumsum(seen, axis=1)  # 1 at the newest observation of each row
    first = np.argmax(seen, axis=1)
    newest = np.where(seen.any(axis=1), values[np.arange(len(values)), first], np.nan)
    recent = _median(values, seen & (rank <= 2 * rule.persist_days - 1))
    in_long = seen.copy()
    in_long[:, rule.long_days :] = False
    long = _median(values, in_long)
    with np.errstate(invalid="ignore"):
        spread = _median(np.abs(values - long[:, None]), in_long)
        scale = np.maximum(np.nan_to_num(1.4826 * spread, nan=0.0), SCALE_FLOOR)
        width = np.maximum(rule.threshold * scale, rule.band)
        accepted = np.where(np.abs(newest - recent) <= width, newest, recent)
    long = np.where(np.isnan(long), accepted, long)
    return long + rule.weight * (accepted - long)


def series_forecast(values: np.ndarray, rule: SeriesRule) -> np.ndarray:
    """The capped forecast (log scale): within `max_step` of the level from the days before the
    newest column, which the newest day's value cannot change."""
    today = _level(values, rule)
    if values.shape[1] < 2:
        return today
    yesterday = _level(values[:, 1:], rule)
    capped = np.clip(today, yesterday - rule.max_step, yesterday + rule.max_step)
    return np.where(np.isfinite(yesterday), capped, today)


def forecast_for_day(
    history: pd.DataFrame, day: date, rules: Mapping[str, SeriesRule] | None = None
) -> pd.DataFrame:
    """Forecasts for `day` of every pool with history before it (pool + FORECAST_COLUMNS).

    `history` has columns date, pool, tvlUsd, apy, apyBase, apyReward (as `load_pool_history`
    gives). Only rows dated before `day` are used, whatever else the frame holds.
    """
    if history.empty:
        return _empty()
    pools, values = matrices(history, day)
    if not len(pools):
        return _empty()
    return _frame(pools, values, rules or RULES)


def _frame(
    pools: np.ndarray, values: Mapping[str, np.ndarray], rules: Mapping[str, SeriesRule]
) -> pd.DataFrame:
    out = {s: _from_log(series_forecast(values[s], rules[s]), s) for s in SERIES}
    return pd.DataFrame(
        {
            "pool": pd.Series(np.asarray(pools, dtype=object), dtype="str"),
            "apy_forecast": out["base"] + out["reward"],
            "apy_base_forecast": out["base"],
            "apy_reward_forecast": out["reward"],
            "tvl_forecast": out["tvl"],
        }
    )


def attach_forecast(universe: pd.DataFrame, history: pd.DataFrame, day: date) -> pd.DataFrame:
    """The universe with the forecast columns for `day` (NaN for pools without history)."""
    forecast = forecast_for_day(history, day).set_index("pool")
    out = universe.drop(columns=[c for c in FORECAST_COLUMNS if c in universe.columns])
    # what `out["pool"].map(forecast[column])` gives, with the pools looked up once
    positions = forecast.index.get_indexer(out["pool"]) if len(forecast) else None
    for column in FORECAST_COLUMNS:
        values: float | np.ndarray
        if positions is None:
            values = np.nan
        else:
            values = np.where(positions >= 0, forecast[column].to_numpy()[positions], np.nan)
        out[column] = pd.Series(values, index=out.index, dtype="float64")
    return out


# ------------------------------------------------------------------ baselines and evaluation


def persistence_for_day(history: pd.DataFrame, day: date) -> pd.DataFrame:
    """The naive forecast: each pool's latest values before `day` (tomorrow equals today)."""
    dates = pd.to_datetime(history["date"]).to_numpy()
    frame = history.loc[dates < np.datetime64(pd.Timestamp(day).to_datetime64())]
    if frame.empty:
        return _empty()
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
        return _empty()
    _target, frame, age_days = _window(history, day)
    if frame.empty:
        return _empty()
    age = age_days.astype(float)
    codes, pools = _factorize_sorted(frame["pool"].to_numpy(dtype=object))
    n = len(pools)
    order = np.argsort(codes * (LOOKBACK_DAYS + 1) + (LOOKBACK_DAYS - age_days), kind="stable")
    codes, age = codes[order], age[order]
    tvl = frame["tvlUsd"].to_numpy(dtype=float)[order]
    base, reward = _null_rules(
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


class HistorySource(Protocol):
    """What evaluation reads: a recording (`sources.history.PoolHistory`) or the sample."""

    @property
    def start(self) -> date: ...

    def history(self, start: date, end: date) -> pd.DataFrame: ...


# target name, actual column, forecast column, series whose glitches mark abnormal days
TARGETS = (
    ("apy_base", "apyBase", "apy_base_forecast"),
    ("apy_reward", "apyReward", "apy_reward_forecast"),
    ("apy", "apy", "apy_forecast"),
    ("tvl", "tvlUsd", "tvl_forecast"),
)
METHODS = ("persistence", "previous", "robust")
GLITCH_FACTOR = 3.0  # a value 3x off (or a third of) its neighbours' median is a glitch day
GLITCH_NEIGHBOURS = 3  # days either side


def _actuals(history: pd.DataFrame) -> pd.DataFrame:
    """The history with MODEL.md's null rules applied (what each day actually paid)."""
    base, reward = _null_rules(
        history["apy"].to_numpy(dtype=float),
        history["apyBase"].to_numpy(dtype=float),
        history["apyReward"].to_numpy(dtype=float),
    )
    apy = history["apy"].to_numpy(dtype=float)
    out = history[["date", "pool"]].copy()
    out["date"] = pd.to_datetime(out["date"]).astype("datetime64[ns]")
    out["apyBase"], out["apyReward"] = base, reward
    out["apy"] = np.where(np.isfinite(apy), apy, base + reward)
    out["tvlUsd"] = history["tvlUsd"].to_numpy(dtype=float)
    return out


def glitch_flags(actuals: pd.DataFrame) -> pd.DataFrame:
    """Per row and target, whether the value is a glitch: more than GLITCH_FACTOR times off
    the median of the pool's values within GLITCH_NEIGHBOURS days either side (at least two of
    them; on the log scale of the forecast). Uses later days: for evaluation only."""
    out = pd.DataFrame(index=actuals.index)
    days = pd.to_datetime(actuals["date"]).to_numpy().astype("datetime64[D]").astype(np.int64)
    codes, pools = pd.factorize(actuals["pool"].to_numpy(dtype=object))
    first = days.min() if len(days) else 0
    width = (days.max() - first + 1) if len(days) else 0
    for name, column, _ in TARGETS:
        kind = "tvl" if column == "tvlUsd" else "apy"
        grid = np.full((len(pools), width + 2 * GLITCH_NEIGHBOURS), np.nan)
        col = days - first + GLITCH_NEIGHBOURS
        grid[codes, col] = _to_log(actuals[column].to_numpy(dtype=float), kind)
        shifts = [k for k in range(-GLITCH_NEIGHBOURS, GLITCH_NEIGHBOURS + 1) if k != 0]
        near = np.stack([grid[codes, col + k] for k in shifts], axis=1)
        seen = np.isfinite(near)
        middle = _median(near, seen)
        value = grid[codes, col]
        with np.errstate(invalid="ignore"):
            off = np.abs(value - middle) > np.log(GLITCH_FACTOR)
        out[name] = off & (seen.sum(axis=1) >= 2)
    return out


@dataclass
class _Day:
    """One evaluated day: the forecast inputs and the actual values of the pools seen on it."""

    day: date
    pools: np.ndarray
    values: dict[str, np.ndarray]
    actual: pd.DataFrame  # indexed by pool, the pools with a forecast and an actual value
    past: pd.DataFrame


def _days(source: HistorySource, start: date, end: date) -> list[_Day]:
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    first = max(source.start, start - timedelta(days=LOOKBACK_DAYS))
    history = source.history(first, end + timedelta(days=GLITCH_NEIGHBOURS))
    actuals = _actuals(history)
    actuals = pd.concat([actuals, glitch_flags(actuals).add_prefix("glitch_")], axis=1)
    dates = actuals["date"].to_numpy()
    raw_dates = pd.to_datetime(history["date"]).to_numpy()
    out = []
    day = max(start, first + timedelta(days=1))
    while day <= end:
        t = np.datetime64(day, "ns")
        lo = np.searchsorted(raw_dates, t - np.timedelta64(LOOKBACK_DAYS, "D"), side="left")
        mid = np.searchsorted(raw_dates, t, side="left")
        hi = np.searchsorted(dates, t, side="right")
        past = history.iloc[lo:mid]
        if len(past) and hi > mid:
            pools, values = matrices(past, day)
            actual = actuals.iloc[mid:hi].set_index("pool").reindex(pools)
            out.append(_Day(day, pools, values, actual, past))
        day += timedelta(days=1)
    return out


def _errors(days: list[_Day], method: str, rules: Mapping[str, SeriesRule]) -> pd.DataFrame:
    """One row per (day, pool) with an actual value: the forecast and its absolute errors."""
    parts = []
    for d in days:
        if method == "robust":
            forecast = _frame(d.pools, d.values, rules)
        elif method == "persistence":
            forecast = persistence_for_day(d.past, d.day)
        else:
            forecast = previous_forecast_for_day(d.past, d.day)
        joined = forecast.set_index("pool").join(d.actual, how="inner")
        parts.append(joined)
    return pd.concat(parts) if parts else pd.DataFrame()


def _summary(joined: pd.DataFrame, name: str, column: str, forecast: str) -> dict[str, float]:
    pair = joined[[column, forecast]].to_numpy(dtype=float)
    ok = np.isfinite(pair).all(axis=1)
    err = np.abs(pair[ok, 1] - pair[ok, 0])
    normal = ~joined[f"glitch_{name}"].to_numpy(dtype=bool)[ok]
    return {
        "n": int(ok.sum()),
        "mae": float(err.mean()) if len(err) else np.nan,
        "medae": float(np.median(err)) if len(err) else np.nan,
        "n_normal": int(normal.sum()),
        "mae_normal": float(err[normal].mean()) if normal.any() else np.nan,
        "medae_normal": float(np.median(err[normal])) if normal.any() else np.nan,
    }


def evaluate_forecast(
    source: HistorySource,
    start: date,
    end: date,
    *,
    rules: Mapping[str, SeriesRule] | None = None,
    methods: Iterable[str] = METHODS,
) -> pd.DataFrame:
    """Error per pool-day of each method's one-day-ahead forecast, per target, over start..end.

    A forecast for day D is made from rows dated before D and compared with D's value (the
    horizon the allocation uses: day D is decided with the forecast for D). `n_normal` and the
    `_normal` errors leave out the days whose actual value is a glitch (`glitch_flags`).
    """
    days = _days(source, start, end)
    rows = []
    for method in methods:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; use {', '.join(METHODS)}")
        joined = _errors(days, method, rules or RULES)
        for name, column, forecast in TARGETS:
            summary = _summary(joined, name, column, forecast) if len(joined) else {}
            rows.append({"target": name, "method": method, **summary})
    return pd.DataFrame(rows)


def format_table(table: pd.DataFrame) -> str:
    """The evaluation as a Markdown table (what docs/forecast.md shows)."""
    lines = [
        "| target | method | pool-days | MAE | median AE | normal days | MAE normal "
        "| median AE normal |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table.itertuples(index=False):
        fmt = (lambda v: f"{v:,.0f}") if r.target == "tvl" else (lambda v: f"{v:.4f}")
        lines.append(
            f"| {r.target} | {r.method} | {r.n:,} | {fmt(r.mae)} | {fmt(r.medae)} | "
            f"{r.n_normal:,} | {fmt(r.mae_normal)} | {fmt(r.medae_normal)} |"
        )
    return "\n".join(lines)


# persist_days is fixed at 2 by design, not tuned: with 1 the newest day alone moves the
# forecast (the tuning period, whose glitches are rare, would choose it), which is exactly what a
# treasury must not do with a 5,000 % day.
GRID = {
    "persist_days": (2,),
    "threshold": (3.0, 5.0),
    "long_days": (14, 30, 60),
    "weight": (0.5, 0.75, 0.9, 1.0),
    "max_step": (0.7, 1.4),
    "band": (0.0, 0.35, 0.7, 1.1),  # at most max_step (a combination beyond it is skipped)
}
_TUNED = {
    "base": ("apy_base", "apyBase"),
    "reward": ("apy_reward", "apyReward"),
    "tvl": ("tvl", "tvlUsd"),
}


def tune_rules(source: HistorySource, start: date, end: date) -> dict[str, SeriesRule]:
    """Per series, the GRID rule with the least MAE on normal days of start..end."""
    days = _days(source, start, end)
    best: dict[str, SeriesRule] = {}
    for series, (name, column) in _TUNED.items():
        actual = [d.actual[column].to_numpy(dtype=float) for d in days]
        normal = [~d.actual[f"glitch_{name}"].to_numpy(dtype=bool) for d in days]
        scores = []
        for combo in itertools.product(*GRID.values()):
            persist, threshold, long_days, weight, max_step, band = combo  # GRID in field order
            if band > max_step:
                continue
            rule = SeriesRule(
                int(persist),
                float(threshold),
                int(long_days),
                float(weight),
                float(max_step),
                float(band),
            )
            total, count = 0.0, 0
            for d, a, ok in zip(days, actual, normal, strict=True):
                f = _from_log(series_forecast(d.values[series], rule), series)
                use = ok & np.isfinite(a) & np.isfinite(f)
                total += float(np.abs(f[use] - a[use]).sum())
                count += int(use.sum())
            scores.append((total / max(count, 1), combo, rule))
        best[series] = min(scores, key=lambda s: (s[0], s[1]))[2]
    return best


def main(argv: list[str] | None = None) -> int:
    """`python -m allocator_dagster.forecast evaluate|tune`: the tables of docs/forecast.md."""
    parser = argparse.ArgumentParser(prog="python -m allocator_dagster.forecast")
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="forecast error per pool-day against the baselines")
    tu = sub.add_parser("tune", help="the best rule of the grid per series on a period")
    for p in (ev, tu):
        p.add_argument("--history", default=None, help="a recording (CSV, CSV.gz or folder)")
        p.add_argument("--start", type=date.fromisoformat, default=None)
        p.add_argument("--end", type=date.fromisoformat, default=None)
        p.add_argument("--days", type=int, default=120, help="days before --end (no --start)")
        p.add_argument("--seed", type=int, default=7, help="sample seed (no --history)")
        p.add_argument("--n-pools", type=int, default=1200, help="sample size (no --history)")
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")
    if args.history:
        from allocator_dagster.sources.history import HistoryError, open_history

        try:
            history = open_history(args.history)
        except HistoryError as exc:
            parser.exit(2, f"error: {exc}\n")
        source: HistorySource = history
        label = f"the recording {args.history}"
        end = args.end or history.end
    else:
        from allocator_dagster.sources.sample import SampleUniverse

        source = SampleUniverse(seed=args.seed, n_pools=args.n_pools)
        label = f"the sample (seed {args.seed}, {args.n_pools} pools)"
        end = args.end or date.today() - timedelta(days=1)
    start = args.start or end - timedelta(days=args.days - 1)
    if end < start:
        parser.error(f"--end {end} is before --start {start}")
    if start <= source.start:
        parser.error(f"{label} starts on {source.start}; evaluate days after it")
    if args.command == "tune":
        for series, rule in tune_rules(source, start, end).items():
            print(f"{series}: {rule}")
        return 0
    table = evaluate_forecast(source, start, end)
    print(f"One-day-ahead forecast error per pool-day on {label}, {start} .. {end}:")
    print(format_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
