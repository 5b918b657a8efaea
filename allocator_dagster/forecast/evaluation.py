"""How good a forecast is on recorded history: the error per pool-day of the robust forecast
against the baselines, normal and glitch days apart, and the grid search that tuned its rules."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

import numpy as np
import pandas as pd

from allocator_dagster.forecast.baselines import persistence_for_day, previous_forecast_for_day
from allocator_dagster.forecast.robust import (
    LOOKBACK_DAYS,
    RULES,
    SeriesRule,
    forecast_frame,
    from_log,
    matrices,
    null_rules,
    row_median,
    series_forecast,
    to_log,
)


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
    base, reward = null_rules(
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
        grid[codes, col] = to_log(actuals[column].to_numpy(dtype=float), kind)
        shifts = [k for k in range(-GLITCH_NEIGHBOURS, GLITCH_NEIGHBOURS + 1) if k != 0]
        near = np.stack([grid[codes, col + k] for k in shifts], axis=1)
        seen = np.isfinite(near)
        middle = row_median(near, seen)
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
            forecast = forecast_frame(d.pools, d.values, rules)
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
    "shift_tolerance": (0.0, 0.1, 0.2),  # at most band (likewise)
    "follow_persisted": ("never", "always"),
}
# Design bounds, not tuning. Base APY never follows a jump at once: it is the fee income the
# money follows directly and moves by noise, not by campaign steps, so its step cap stays
# absolute. A reward band above log(2.5) = 0.92 would let a reward falling from 1.5 % to 0 for
# one day through (test_reward_and_tvl_glitches_are_ignored_too), so reward's stops at 0.7.
# TVL's cap reference widens downward only: TVL sets a pool's limit (MODEL.md, constraint 3),
# and a rise that lasted two days may be a two-day glitch (10,000x), which must still wait a day
# beyond the step cap; a fall lowers the limit, the safe side.
GRID_OVERRIDES: dict[str, dict[str, tuple[float | str, ...]]] = {
    "base": {"shift_tolerance": (0.0,)},
    "reward": {"band": (0.0, 0.35, 0.7)},
    "tvl": {"follow_persisted": ("never", "falls")},
}
_TUNED = {
    "base": ("apy_base", "apyBase"),
    "reward": ("apy_reward", "apyReward"),
    "tvl": ("tvl", "tvlUsd"),
}


def grid_rules(series: str) -> list[SeriesRule]:
    """The rules of GRID (with the series' overrides) that are valid, in GRID's order."""
    grid = {**GRID, **GRID_OVERRIDES.get(series, {})}
    out = []
    for combo in itertools.product(*grid.values()):
        persist, threshold, long_days, weight, max_step, band, tolerance, follow = combo
        if float(band) > float(max_step) or float(tolerance) > float(band):
            continue
        out.append(
            SeriesRule(  # field order
                int(persist),
                float(threshold),
                int(long_days),
                float(weight),
                float(max_step),
                float(band),
                float(tolerance),
                str(follow),
            )
        )
    return out


def tune_rules(source: HistorySource, start: date, end: date) -> dict[str, SeriesRule]:
    """Per series, the GRID rule with the least MAE on normal days of start..end (ties: the
    first in GRID's order)."""
    days = _days(source, start, end)
    best: dict[str, SeriesRule] = {}
    for series, (name, column) in _TUNED.items():
        actual = [d.actual[column].to_numpy(dtype=float) for d in days]
        normal = [~d.actual[f"glitch_{name}"].to_numpy(dtype=bool) for d in days]
        scores = []
        for order, rule in enumerate(grid_rules(series)):
            total, count = 0.0, 0
            for d, a, ok in zip(days, actual, normal, strict=True):
                f = from_log(series_forecast(d.values[series], rule), series)
                use = ok & np.isfinite(a) & np.isfinite(f)
                total += float(np.abs(f[use] - a[use]).sum())
                count += int(use.sum())
            scores.append((total / max(count, 1), order, rule))
        best[series] = min(scores, key=lambda s: (s[0], s[1]))[2]
    return best
