"""The forecast's lookback window moved one day at a time through a range of days.

`robust.matrices` builds each pool's 60-day log series from a history frame: at 20,000 pools
that is about 1.1 million rows to select, factorise and scatter, every day, although a range
run's consecutive windows share 59 of their 60 days. `ForecastWindow` keeps each day's rows in
compact form (pool numbers and the three log series, computed once per day) and builds the
same matrices from them: the day that enters is read from the source, the day that leaves is
dropped. The matrices are exactly `robust.matrices`' (the tests compare them value for value),
so the forecast's numbers do not depend on which path built them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from allocator_dagster.forecast.robust import (
    LOOKBACK_DAYS,
    RULES,
    SERIES,
    empty_forecast,
    forecast_frame,
    null_rules,
    to_log,
)

# rows (date, pool, tvlUsd, apy, apyBase, apyReward) of the days first..last, both included
HistoryRows = Callable[[dt.date, dt.date], pd.DataFrame]


@dataclass(frozen=True)
class _Day:
    """One day's rows: pool numbers (one row per pool: the last of duplicates, as in
    `robust.matrices`) and each series' log values."""

    pools: np.ndarray
    logs: dict[str, np.ndarray]


class ForecastWindow:
    """The matrices of `robust.matrices(history, day)` for the days of one source whose rows
    never change (a generated sample, a recording): `history(first, last)` gives its rows, and
    nothing before `start` exists."""

    def __init__(self, start: dt.date) -> None:
        self._start = start
        self._numbers: dict[str, int] = {}  # pool id -> pool number, in order of first sight
        self._names: list[str] = []
        self._days: dict[dt.date, _Day] = {}
        self._order: tuple[bytes, np.ndarray] | None = None  # (pools present, in id order)

    def matrices(
        self, day: dt.date, history: HistoryRows
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(pools, {series: pools x LOOKBACK_DAYS matrix}) as `robust.matrices` gives them."""
        first = max(self._start, day - dt.timedelta(days=LOOKBACK_DAYS))
        days = [first + dt.timedelta(days=k) for k in range((day - first).days)]
        self._days = {d: rows for d, rows in self._days.items() if first <= d < day}
        missing = [d for d in days if d not in self._days]
        if missing:
            self._read(history(missing[0], missing[-1]), missing[0], missing[-1])
        kept = [d for d in days if len(self._days[d].pools)]
        if not kept:
            return np.array([], dtype=object), {}
        present = np.flatnonzero(
            np.bincount(
                np.concatenate([self._days[d].pools for d in kept]), minlength=len(self._names)
            )
        )
        pools, position = self._sorted(present)
        out = {s: np.full((len(pools), LOOKBACK_DAYS), np.nan) for s in SERIES}
        for d in kept:
            rows = self._days[d]
            where = position[rows.pools]
            age = (day - d).days
            for s in SERIES:
                out[s][where, age - 1] = rows.logs[s]
        return pools, out

    def forecast(self, day: dt.date, history: HistoryRows) -> pd.DataFrame:
        """`robust.forecast_for_day(history(...), day)` from the window (pool +
        FORECAST_COLUMNS)."""
        pools, values = self.matrices(day, history)
        if not len(pools):
            return empty_forecast()
        return forecast_frame(pools, values, RULES)

    def _sorted(self, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The present pools sorted by id (as `sorted()` orders str) and each pool number's
        row (-1: absent); the order is reused while the same pools are present."""
        key = present.tobytes()
        if self._order is None or self._order[0] != key:
            by_id = sorted(present.tolist(), key=self._names.__getitem__)
            ordered = np.array(by_id, dtype=np.intp)
            self._order = (key, ordered)
        ordered = self._order[1]
        position = np.full(len(self._names), -1, dtype=np.intp)
        position[ordered] = np.arange(len(ordered))
        return np.array(self._names, dtype=object)[ordered], position

    def _read(self, frame: pd.DataFrame, first: dt.date, last: dt.date) -> None:
        """Keep each day first..last of the source's rows `frame` in compact form."""
        dates = pd.to_datetime(frame["date"]).to_numpy().astype("datetime64[D]")
        ids = frame["pool"].to_numpy(dtype=object)
        if not all(type(p) is str for p in dict.fromkeys(ids.tolist())):
            raise TypeError("pool ids of a forecast window must be str")
        numbers = self._numbers
        for pool in dict.fromkeys(ids.tolist()):
            if pool not in numbers:
                numbers[pool] = len(self._names)
                self._names.append(pool)
        codes = np.fromiter(map(numbers.__getitem__, ids.tolist()), dtype=np.intp, count=len(ids))
        base, reward = null_rules(
            frame["apy"].to_numpy(dtype=float),
            frame["apyBase"].to_numpy(dtype=float),
            frame["apyReward"].to_numpy(dtype=float),
        )
        raw = {"base": base, "reward": reward, "tvl": frame["tvlUsd"].to_numpy(dtype=float)}
        logs = {s: to_log(raw[s], s) for s in SERIES}
        order = np.argsort(dates, kind="stable")
        each_day = np.arange(np.datetime64(first, "D"), np.datetime64(last, "D") + 2)
        edges = np.searchsorted(dates[order], each_day, side="left").tolist()
        for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
            rows = order[lo:hi]
            # one row per pool: the last of duplicated rows (the survivor `matrices` keeps)
            reversed_codes = codes[rows][::-1]
            _, last_seen = np.unique(reversed_codes, return_index=True)
            rows = rows[len(rows) - 1 - last_seen]
            self._days[first + dt.timedelta(days=k)] = _Day(
                codes[rows], {s: logs[s][rows] for s in SERIES}
            )
