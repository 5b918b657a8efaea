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
  newest one, so the newest day can move the forecast by at most `max_step`, however it looks;
  with `follow_persisted` the reference is the interval between that level and the previous
  observation (`cap_reference`), so a level that has lasted two days is followed on the second
  and not held back a third day by the cap (the newest day alone still moves it by `max_step`);
* except (reward and TVL, `shift_tolerance` > 0) a jump that the pool's own history shows to be
  a regime change: the newest value returns to a level the pool held on two consecutive
  observations, or the pool has made a confirmed shift (a move beyond the Hampel width that the
  next observation held) at least as large as this jump less `band`. Such a jump is followed at
  once and past the cap; a pool whose series never shifted still waits `persist_days`.

The rules were tuned on the real DefiLlama history of 2023-2024 and are measured on 2025
(`docs/forecast.md`; `python -m allocator_dagster.forecast evaluate|tune`). Pools without any
usable row before D get no forecast (NaN); the model falls back to current values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from allocator_dagster.sources.records import FORECAST_COLUMNS

LOOKBACK_DAYS = 60
APY_OFFSET = 1.0  # percentage points added before the log: 0 % is a value, not minus infinity
MAX_APY = 1e6  # percent a year; above it a value is a broken number, not a yield
MAX_TVL = 1e13  # USD; more than all of DeFi
SCALE_FLOOR = 0.05  # log units: the Hampel band is never narrower than a few percent
FOLLOW_PERSISTED = ("never", "always", "falls")


@dataclass(frozen=True)
class SeriesRule:
    """How one series is forecast (see the module docstring for each field's meaning)."""

    persist_days: int
    threshold: float
    long_days: int
    weight: float
    max_step: float
    band: float = 0.0  # log units: a newest value this close to the recent level is always used
    shift_tolerance: float = 0.0  # log units: "the same level" when following regime changes;
    # 0 never follows one at once (`regime_change`)
    follow_persisted: str = "never"  # the step cap's reference admits the previous observation:
    # "never", "always", or "falls" only (`cap_reference`)

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
        if not 0.0 <= self.shift_tolerance <= self.band:
            raise ValueError(f"shift_tolerance must be in [0, band], got {self.shift_tolerance}")
        if self.follow_persisted not in FOLLOW_PERSISTED:
            raise ValueError(
                f"follow_persisted must be one of {', '.join(FOLLOW_PERSISTED)}, "
                f"got {self.follow_persisted!r}"
            )


SERIES = ("base", "reward", "tvl")
# Tuned on 2023-01-01 .. 2024-12-31 of the real history (`python -m allocator_dagster.forecast tune`).
RULES: dict[str, SeriesRule] = {
    "base": SeriesRule(
        persist_days=2, threshold=5.0, long_days=14, weight=0.5, max_step=0.7, band=0.7
    ),
    "reward": SeriesRule(
        persist_days=2,
        threshold=5.0,
        long_days=60,
        weight=1.0,
        max_step=1.4,
        band=0.7,
        shift_tolerance=0.1,
        follow_persisted="always",
    ),
    "tvl": SeriesRule(
        persist_days=2,
        threshold=3.0,
        long_days=60,
        weight=1.0,
        max_step=1.4,
        band=1.1,
        shift_tolerance=0.2,
        follow_persisted="falls",
    ),
}

OUTPUT_COLUMNS = ("pool", *FORECAST_COLUMNS)


def empty_forecast() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pool": pd.Series([], dtype="str"),
            **{c: pd.Series([], dtype="float64") for c in FORECAST_COLUMNS},
        }
    )


def factorize_pools(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`pd.factorize(values, sort=True)` for pool ids: a few hundred ids repeated over the
    lookback, so a dict of the distinct ids is several times faster than hashing every row."""
    listed = values.tolist()
    uniques = sorted(dict.fromkeys(listed))
    if not all(type(p) is str for p in uniques):  # anything but plain ids: pandas' way
        return pd.factorize(values, sort=True)
    position = {p: i for i, p in enumerate(uniques)}
    codes = np.fromiter(map(position.__getitem__, listed), dtype=np.intp, count=len(listed))
    return codes, np.array(uniques, dtype=object)


def lookback_window(
    history: pd.DataFrame, day: date
) -> tuple[np.datetime64, pd.DataFrame, np.ndarray]:
    """(target day, rows of the lookback before it, their age in days >= 1)."""
    target = np.datetime64(pd.Timestamp(day).normalize().to_datetime64(), "D")
    dates = pd.to_datetime(history["date"]).to_numpy().astype("datetime64[D]")
    keep = (dates < target) & (dates >= target - np.timedelta64(LOOKBACK_DAYS, "D"))
    age = (target - dates[keep]).astype(np.int64)
    return target, history.loc[keep], age


def null_rules(
    apy: np.ndarray, base: np.ndarray, reward: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """MODEL.md's null rules: a missing part is 0 when the other exists; apy alone is all base."""
    only_apy = np.isnan(base) & np.isnan(reward) & np.isfinite(apy)
    base_out = np.where(only_apy, apy, np.where(np.isnan(base) & np.isfinite(reward), 0.0, base))
    reward_out = np.where(
        only_apy, 0.0, np.where(np.isnan(reward) & np.isfinite(base), 0.0, reward)
    )
    return base_out, reward_out


def to_log(values: np.ndarray, series: str) -> np.ndarray:
    """The series on the forecast's log scale; impossible values become NaN (ignored)."""
    with np.errstate(invalid="ignore", over="ignore"):
        if series == "tvl":
            ok = np.isfinite(values) & (values >= 0) & (values <= MAX_TVL)
            return np.where(ok, np.log1p(np.where(ok, values, 0.0)), np.nan)
        ok = np.isfinite(values) & (values > -APY_OFFSET) & (values <= MAX_APY)
        return np.where(ok, np.log(np.maximum(np.where(ok, values, 0.0), 0.0) + APY_OFFSET), np.nan)


def from_log(values: np.ndarray, series: str) -> np.ndarray:
    if series == "tvl":
        return np.expm1(values)
    return np.maximum(np.exp(values) - APY_OFFSET, 0.0)


def matrices(history: pd.DataFrame, day: date) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(pools, {series: pools x LOOKBACK_DAYS matrix}) of the log values before `day`.

    Column j holds the value of age j + 1 days (newest first), NaN where the pool has no usable
    value that day. Only rows dated in the `LOOKBACK_DAYS` days before `day` are read.
    """
    _target, frame, age = lookback_window(history, day)
    if frame.empty:
        return np.array([], dtype=object), {}
    codes, pools = factorize_pools(frame["pool"].to_numpy(dtype=object))
    base, reward = null_rules(
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
        dense[codes[order], age[order] - 1] = to_log(values[order], series)
        out[series] = dense
    return pools, out


def row_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
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


def compacted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's observations newest first with the missing days moved to the end, and which
    entries are observations (so column k is the (k + 1)-th newest observation)."""
    seen = np.isfinite(values)
    order = np.argsort(~seen, axis=1, kind="stable")
    return np.take_along_axis(values, order, axis=1), np.take_along_axis(seen, order, axis=1)


def regime_change(
    values: np.ndarray, newest: np.ndarray, recent: np.ndarray, width: np.ndarray, rule: SeriesRule
) -> np.ndarray:
    """Rows whose newest value is a jump the pool's own history shows to be plausible: it is
    within `shift_tolerance` of a level the pool held on two consecutive older observations, or
    the pool made a confirmed shift (consecutive older observations further apart than `width`,
    the next one within `shift_tolerance` of the new value) no smaller than this jump less
    `band`. A glitch in a series that never shifted is neither. The newest observation itself
    is never part of the evidence."""
    if rule.shift_tolerance <= 0 or values.shape[1] < 4:
        return np.zeros(len(values), dtype=bool)
    obs, seen = compacted(values)
    tol = rule.shift_tolerance
    with np.errstate(invalid="ignore"):
        near = seen[:, 1:] & (np.abs(obs[:, 1:] - newest[:, None]) <= tol)
        known = (near[:, :-1] & near[:, 1:]).any(axis=1)
        # obs[k] vs obs[k + 1] for k >= 2, held by obs[k - 1]
        size = np.abs(obs[:, 2:-1] - obs[:, 3:])
        held = np.abs(obs[:, 1:-2] - obs[:, 2:-1]) <= tol
        shifts = seen[:, 3:] & seen[:, 1:-2] & held & (size > width[:, None])
        largest = np.where(shifts, size, 0.0).max(axis=1)
        shifted = shifts.any(axis=1) & (np.abs(newest - recent) <= largest + rule.band)
    return known | shifted


def _level(values: np.ndarray, rule: SeriesRule) -> tuple[np.ndarray, np.ndarray]:
    """(the rule's forecast on the log scale from a newest-first matrix before the step cap,
    whether it follows a regime change the cap must not hold back)."""
    seen = np.isfinite(values)
    rank = np.cumsum(seen, axis=1)  # 1 at the newest observation of each row
    first = np.argmax(seen, axis=1)
    newest = np.where(seen.any(axis=1), values[np.arange(len(values)), first], np.nan)
    recent = row_median(values, seen & (rank <= 2 * rule.persist_days - 1))
    in_long = seen.copy()
    in_long[:, rule.long_days :] = False
    long = row_median(values, in_long)
    with np.errstate(invalid="ignore"):
        spread = row_median(np.abs(values - long[:, None]), in_long)
        scale = np.maximum(np.nan_to_num(1.4826 * spread, nan=0.0), SCALE_FLOOR)
        width = np.maximum(rule.threshold * scale, rule.band)
        within = np.abs(newest - recent) <= width
    shift = ~within & np.isfinite(newest)  # a jump; followed only if a regime change
    if shift.any():  # a few rows a day: the history is searched for those only
        shift[shift] = regime_change(
            values[shift], newest[shift], recent[shift], width[shift], rule
        )
    accepted = np.where(within | shift, newest, recent)
    long = np.where(np.isnan(long), accepted, long)
    # a regime change is the new level: shrinking it toward the old one would chase the past
    return np.where(shift, newest, long + rule.weight * (accepted - long)), shift


def cap_reference(earlier: np.ndarray, rule: SeriesRule) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) on the log scale: what the step cap keeps the forecast within `max_step` of,
    from the days before the newest one (`earlier`, newest first), which the newest day's value
    cannot change. It is the level the rule gives from those days, widened with
    `follow_persisted` to the previous observation (the newest of `earlier`): the median level
    follows a new level once it has lasted two days (persist_days = 2), but the level of the day
    before held the jump back, so a cap around that level alone held a persisted jump larger
    than `max_step` back a third day. "falls" widens it downward only: a rise that lasted two
    days still waits a day beyond the cap (a TVL glitch of two days must not lift a pool's
    limit, MODEL.md constraint 3)."""
    level, _ = _level(earlier, rule)
    if rule.follow_persisted == "never":
        return level, level
    seen = np.isfinite(earlier)
    first = np.argmax(seen, axis=1)
    previous = earlier[np.arange(len(earlier)), first]
    previous = np.where(seen.any(axis=1), previous, level)
    low = np.fmin(level, previous)
    high = level if rule.follow_persisted == "falls" else np.fmax(level, previous)
    return low, high


def series_forecast(values: np.ndarray, rule: SeriesRule) -> np.ndarray:
    """The capped forecast (log scale): within `max_step` of `cap_reference`, which the newest
    day's value cannot change, unless the newest day is a regime change (`regime_change`)."""
    today, shift = _level(values, rule)
    if values.shape[1] < 2:
        return today
    low, high = cap_reference(values[:, 1:], rule)
    capped = np.clip(today, low - rule.max_step, high + rule.max_step)
    return np.where(np.isfinite(low) & ~shift, capped, today)


def forecast_for_day(
    history: pd.DataFrame, day: date, rules: Mapping[str, SeriesRule] | None = None
) -> pd.DataFrame:
    """Forecasts for `day` of every pool with history before it (pool + FORECAST_COLUMNS).

    `history` has columns date, pool, tvlUsd, apy, apyBase, apyReward (as `load_pool_history`
    gives). Only rows dated before `day` are used, whatever else the frame holds.
    """
    if history.empty:
        return empty_forecast()
    pools, values = matrices(history, day)
    if not len(pools):
        return empty_forecast()
    return forecast_frame(pools, values, rules or RULES)


def forecast_frame(
    pools: np.ndarray, values: Mapping[str, np.ndarray], rules: Mapping[str, SeriesRule]
) -> pd.DataFrame:
    out = {s: from_log(series_forecast(values[s], rules[s]), s) for s in SERIES}
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
    return with_forecast(universe, forecast_for_day(history, day))


def with_forecast(universe: pd.DataFrame, forecast: pd.DataFrame) -> pd.DataFrame:
    """The universe with the forecast columns of `forecast` (pool + FORECAST_COLUMNS; NaN for
    pools it does not have)."""
    forecast = forecast.set_index("pool")
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
