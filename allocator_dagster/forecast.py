"""Next-day forecasts of each pool's APY and TVL, from the pool's own recent history.

The allocation for day D is decided with the values expected on D (MODEL.md uses the forecast
columns for `apy_i`, `apyBase_i`, `apyReward_i` and `tvl_i`). The method is deliberately
simple, so that a treasurer can check any number by hand, and it only ever looks at rows dated
before D:

* base APY: an exponentially weighted mean of the observed base APY (half-life
  `BASE_HALF_LIFE` days), after capping values above `SPIKE_CAP` times the pool's weighted
  geometric mean, so a single outlier day barely moves the forecast;
* reward APY: rewards are emissions that decay, so a straight line is fitted to the log of the
  positive reward APYs of the last `REWARD_WINDOW_DAYS` days (only those since the latest jump
  up of more than `REWARD_JUMP` in log, which marks a new campaign), weighted with half-life
  `REWARD_HALF_LIFE`, its slope capped to [`MIN_REWARD_SLOPE`, 0] per day, and carried to D;
  a pool whose latest reward is 0 is forecast 0;
* TVL: the last TVL, moved by a damped trend: the weighted mean daily log change (half-life
  `TVL_HALF_LIFE`) times the sum of `TVL_DAMPING`**k over the days ahead;
* apy = base + reward forecasts.

Pools without any row before D get no forecast (NaN); the model falls back to current values.
`evaluate_forecast` measures the method against persistence (tomorrow equals today) on the
generated sample; `python -m allocator_dagster.forecast evaluate --days 120` prints the table.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta

import numpy as np
import pandas as pd

from allocator_dagster.sources.records import FORECAST_COLUMNS
from allocator_dagster.sources.sample import SampleUniverse

LOOKBACK_DAYS = 60
BASE_HALF_LIFE = 3.0
SPIKE_CAP = 2.5
REWARD_WINDOW_DAYS = 21
REWARD_HALF_LIFE = 7.0
MIN_REWARD_SLOPE = -0.2
REWARD_JUMP = 0.4  # a rise of the log reward above this in a day is a new campaign
TVL_HALF_LIFE = 1.5
TVL_DAMPING = 0.8
TVL_TREND_DAYS = 14

OUTPUT_COLUMNS = ("pool", *FORECAST_COLUMNS)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pool": pd.Series([], dtype="str"),
            **{c: pd.Series([], dtype="float64") for c in FORECAST_COLUMNS},
        }
    )


def forecast_for_day(history: pd.DataFrame, day: date) -> pd.DataFrame:
    """Forecasts for `day` of every pool with history before it (pool + FORECAST_COLUMNS).

    `history` has columns date, pool, tvlUsd, apy, apyBase, apyReward (as `load_pool_history`
    gives). Only rows dated before `day` are used, whatever else the frame holds.
    """
    if history.empty:
        return _empty()
    target = np.datetime64(pd.Timestamp(day).normalize().to_datetime64(), "D")
    dates = pd.to_datetime(history["date"]).to_numpy().astype("datetime64[D]")
    keep = (dates < target) & (dates >= target - np.timedelta64(LOOKBACK_DAYS, "D"))
    if not keep.any():
        return _empty()
    frame = history.loc[keep]
    age = (target - dates[keep]).astype(np.int64).astype(float)  # days before `day`, >= 1
    codes, pools = _factorize_sorted(frame["pool"].to_numpy(dtype=object))
    n = len(pools)
    # Every helper below expects rows grouped by pool, oldest first.
    order = np.argsort(codes * (LOOKBACK_DAYS + 1) + (LOOKBACK_DAYS - age.astype(np.int64)))
    codes, age = codes[order], age[order]

    tvl = frame["tvlUsd"].to_numpy(dtype=float)[order]
    apy = frame["apy"].to_numpy(dtype=float)[order]
    base = frame["apyBase"].to_numpy(dtype=float)[order]
    reward = frame["apyReward"].to_numpy(dtype=float)[order]
    # MODEL.md's null rules: a missing part is 0 when the other exists; apy alone is all base.
    only_apy = np.isnan(base) & np.isnan(reward) & np.isfinite(apy)
    base = np.where(only_apy, apy, np.where(np.isnan(base) & np.isfinite(reward), 0.0, base))
    reward = np.where(only_apy, 0.0, np.where(np.isnan(reward) & np.isfinite(base), 0.0, reward))

    base_f = _base_forecast(codes, age, base, n)
    reward_f = _reward_forecast(codes, age, reward, n)
    tvl_f = _tvl_forecast(codes, age, tvl, n)
    apy_f = base_f + reward_f

    out = pd.DataFrame(
        {
            "pool": pd.Series(np.asarray(pools, dtype=object), dtype="str"),
            "apy_forecast": apy_f,
            "apy_base_forecast": base_f,
            "apy_reward_forecast": reward_f,
            "tvl_forecast": tvl_f,
        }
    )
    return out.reset_index(drop=True)


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


def _decay(age: np.ndarray, half_life: float) -> np.ndarray:
    """Weights halving every `half_life` days; the most recent day (age 1) weighs 1."""
    return np.exp((1.0 - age) * (np.log(2.0) / half_life))


def _base_forecast(codes: np.ndarray, age: np.ndarray, base: np.ndarray, n: int) -> np.ndarray:
    ok = np.isfinite(base)
    c, a, v = codes[ok], age[ok], np.maximum(base[ok], 0.0)
    w = _decay(a, BASE_HALF_LIFE)
    total = np.bincount(c, weights=w, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        # A weighted geometric mean barely moves on one spike day; cap values far above it.
        typical = np.exp(np.bincount(c, weights=w * np.log(v + 0.01), minlength=n) / total) - 0.01
        capped = np.minimum(v, SPIKE_CAP * np.maximum(typical[c], 0.0) + 0.01)
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
    """(pool, age, change per day, valid) between consecutive rows of each pool.

    Rows must be grouped by pool, oldest first; the change is dated by its later row.
    """
    same = codes[1:] == codes[:-1]
    gap = age[:-1] - age[1:]
    valid = same & (gap > 0)
    with np.errstate(invalid="ignore"):
        change = (values[1:] - values[:-1]) / np.where(valid, gap, 1.0)
    return codes[1:], age[1:], change, valid & np.isfinite(change)


def _reward_forecast(codes: np.ndarray, age: np.ndarray, reward: np.ndarray, n: int) -> np.ndarray:
    ok = np.isfinite(reward)
    last, _ = _latest(codes[ok], age[ok], reward[ok], n)
    # A new reward campaign shows as a jump up: fit only the rows since the latest jump.
    pos = ok & (reward > 0)
    logs = np.log(np.where(pos, reward, np.nan))
    jc, ja, jump, valid = _step_changes(codes[ok], age[ok], logs[ok])
    jumped = valid & (jump > REWARD_JUMP)
    since = np.full(n, np.inf)
    np.minimum.at(since, jc[jumped], ja[jumped])
    fit = pos & (age <= REWARD_WINDOW_DAYS) & (age <= since[codes])
    c, t, y = codes[fit], -age[fit], logs[fit]
    w = _decay(-t, REWARD_HALF_LIFE)
    sw = np.bincount(c, weights=w, minlength=n)
    st = np.bincount(c, weights=w * t, minlength=n)
    sy = np.bincount(c, weights=w * y, minlength=n)
    stt = np.bincount(c, weights=w * t * t, minlength=n)
    sty = np.bincount(c, weights=w * t * y, minlength=n)
    count = np.bincount(c, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = sw * stt - st * st
        slope = np.where((count >= 3) & (denom > 1e-12), (sw * sty - st * sy) / denom, 0.0)
        slope = np.clip(slope, MIN_REWARD_SLOPE, 0.0)
        # The weighted mean point lies on the fitted line; carry it to t = 0 (the day itself).
        fitted = np.exp((sy - slope * st) / sw)
    return np.where(last > 0, np.where(sw > 0, fitted, last), np.where(np.isnan(last), np.nan, 0.0))


def _tvl_forecast(codes: np.ndarray, age: np.ndarray, tvl: np.ndarray, n: int) -> np.ndarray:
    ok = np.isfinite(tvl) & (tvl > 0)
    c, a, v = codes[ok], age[ok], np.log(tvl[ok])
    last, last_age = _latest(c, a, v, n)
    cg, ag, change, valid = _step_changes(c, a, v)
    use = valid & (ag <= TVL_TREND_DAYS)
    w = _decay(ag[use], TVL_HALF_LIFE)
    with np.errstate(invalid="ignore", divide="ignore"):
        trend = np.bincount(cg[use], weights=w * change[use], minlength=n) / np.bincount(
            cg[use], weights=w, minlength=n
        )
    trend = np.nan_to_num(trend, nan=0.0)
    steps = np.nan_to_num(last_age, nan=1.0)
    # Damped trend: the daily change times the sum of TVL_DAMPING**k for k = 1..steps.
    damped = TVL_DAMPING * (1.0 - TVL_DAMPING**steps) / (1.0 - TVL_DAMPING)
    return np.exp(last + damped * trend)


def attach_forecast(universe: pd.DataFrame, history: pd.DataFrame, day: date) -> pd.DataFrame:
    """The universe with the forecast columns for `day` (NaN for pools without history)."""
    forecast = forecast_for_day(history, day).set_index("pool")
    out = universe.drop(columns=[c for c in FORECAST_COLUMNS if c in universe.columns])
    # what `out["pool"].map(forecast[column])` gives, with the pools looked up once
    positions = forecast.index.get_indexer(out["pool"]) if len(forecast) else None
    for column in FORECAST_COLUMNS:
        if positions is None:
            values = np.nan
        else:
            values = np.where(positions >= 0, forecast[column].to_numpy()[positions], np.nan)
        out[column] = pd.Series(values, index=out.index, dtype="float64")
    return out


# ------------------------------------------------------------------ evaluation


def persistence_for_day(history: pd.DataFrame, day: date) -> pd.DataFrame:
    """The naive forecast: each pool's latest values before `day` (tomorrow equals today)."""
    dates = pd.to_datetime(history["date"]).to_numpy()
    frame = history.loc[dates < np.datetime64(pd.Timestamp(day).to_datetime64())]
    if frame.empty:
        return _empty()
    codes, pools = pd.factorize(frame["pool"].to_numpy(dtype=object), sort=True)
    stamp = pd.to_datetime(frame["date"]).to_numpy().astype("datetime64[D]").astype(np.int64)
    order = np.lexsort((stamp, codes))
    codes, age = codes[order], -stamp[order].astype(float)
    n = len(pools)
    out = {"pool": pd.Series(np.asarray(pools, dtype=object), dtype="str")}
    sources = ("apy", "apyBase", "apyReward", "tvlUsd")
    for column, source in zip(FORECAST_COLUMNS, sources, strict=True):
        out[column] = _latest(codes, age, frame[source].to_numpy(dtype=float)[order], n)[0]
    return pd.DataFrame(out)


TARGETS = (
    ("apy_base", "apyBase", "apy_base_forecast", 0.01),
    ("apy_reward", "apyReward", "apy_reward_forecast", 0.01),
    ("apy", "apy", "apy_forecast", 0.01),
    ("tvl", "tvlUsd", "tvl_forecast", 1.0),
)


def evaluate_forecast(universe: SampleUniverse, start: date, end: date) -> pd.DataFrame:
    """MAE and MAPE of the method and of persistence, per target, over days start..end.

    MAPE only counts actual values above a floor (0.01 % APY, 1 USD TVL): reward APYs are
    often exactly 0, where a percentage error means nothing.
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    first = max(universe.start, start - timedelta(days=LOOKBACK_DAYS))
    history = universe.history(first, end)
    dates = history["date"].to_numpy()
    errors: dict[tuple[str, str], list[np.ndarray]] = {}
    day = start
    while day <= end:
        t = np.datetime64(day, "ns")
        lo = np.searchsorted(dates, t - np.timedelta64(LOOKBACK_DAYS, "D"), side="left")
        mid = np.searchsorted(dates, t, side="left")
        hi = np.searchsorted(dates, t, side="right")
        past, actual = history.iloc[lo:mid], history.iloc[mid:hi].set_index("pool")
        if len(past) and len(actual):
            for method, forecast in (
                ("method", forecast_for_day(past, day)),
                ("persistence", persistence_for_day(past, day)),
            ):
                joined = forecast.join(actual, on="pool", how="inner")
                for name, actual_col, forecast_col, _ in TARGETS:
                    pair = joined[[actual_col, forecast_col]].to_numpy(dtype=float)
                    pair = pair[np.isfinite(pair).all(axis=1)]
                    errors.setdefault((name, method), []).append(pair)
        day += timedelta(days=1)

    rows = []
    for name, _, _, floor in TARGETS:
        row: dict[str, object] = {"target": name}
        for method in ("method", "persistence"):
            chunks = errors.get((name, method), [])
            pair = np.concatenate(chunks) if chunks else np.empty((0, 2))
            err = np.abs(pair[:, 1] - pair[:, 0])
            positive = pair[:, 0] > floor
            row[f"{method}_mae"] = float(err.mean()) if len(err) else np.nan
            row[f"{method}_mape_pct"] = (
                float(100.0 * (err[positive] / pair[positive, 0]).mean())
                if positive.any()
                else np.nan
            )
            row["n"] = len(err)
        rows.append(row)
    table = pd.DataFrame(rows)
    table["mae_vs_persistence_pct"] = 100.0 * (table["method_mae"] / table["persistence_mae"] - 1.0)
    columns = [
        "target",
        "n",
        "method_mae",
        "persistence_mae",
        "mae_vs_persistence_pct",
        "method_mape_pct",
        "persistence_mape_pct",
    ]
    return table[columns]


def format_table(table: pd.DataFrame) -> str:
    """The evaluation as a Markdown table (what docs/forecast.md shows)."""
    header = (
        "| target | n | MAE method | MAE persistence | MAE change "
        "| MAPE method | MAPE persistence |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in table.itertuples(index=False):
        big = r.target == "tvl"
        mae = (lambda v: f"{v:,.0f}") if big else (lambda v: f"{v:.4f}")
        lines.append(
            f"| {r.target} | {r.n:,} | {mae(r.method_mae)} | {mae(r.persistence_mae)} | "
            f"{r.mae_vs_persistence_pct:+.1f} % | {r.method_mape_pct:.2f} % | "
            f"{r.persistence_mape_pct:.2f} % |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m allocator_dagster.forecast evaluate --days N`: the table on the sample."""
    parser = argparse.ArgumentParser(prog="python -m allocator_dagster.forecast")
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="forecast error vs persistence on the generated sample")
    ev.add_argument("--days", type=int, default=120, help="number of days evaluated (default 120)")
    ev.add_argument(
        "--end", type=date.fromisoformat, default=None, help="last day (default: yesterday)"
    )
    ev.add_argument("--seed", type=int, default=7)
    ev.add_argument("--n-pools", type=int, default=1200)
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")
    end = args.end or date.today() - timedelta(days=1)
    start = end - timedelta(days=args.days - 1)
    universe = SampleUniverse(seed=args.seed, n_pools=args.n_pools)
    if start <= universe.start:
        parser.error(f"the sample starts on {universe.start}; evaluate days after it")
    table = evaluate_forecast(universe, start, end)
    print(
        f"Forecast vs persistence on the sample (seed {args.seed}, {args.n_pools} pools), "
        f"{start} .. {end}:"
    )
    print(format_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
