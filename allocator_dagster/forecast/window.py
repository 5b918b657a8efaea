"""The forecast's lookback window moved one day at a time through a range of days.

`robust.matrices` builds each pool's 60-day log series from a history frame: at 20,000 pools
that is about 1.1 million rows to select, factorise and scatter, every day, although a range
run's consecutive windows share 59 of their 60 days. `ForecastWindow` keeps each day's rows in
compact form (pool numbers and the three log series, computed once per day) and builds the
same matrices from them: the day that enters is read from the source, the day that leaves is
dropped. A day can also be given as its arrays (`add_day`: the live forecast reads each stored
day's packed row, `storage.day_series`). The matrices are exactly `robust.matrices`' (the tests
compare them value for value), so the forecast's numbers do not depend on which path built them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
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


class _Numbers(dict[str, int]):
    """Pool id -> pool number, in order of first sight: looking up an id not seen yet numbers
    it (one dict lookup per row, in C, for the ids already known)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __missing__(self, pool: str) -> int:
        if type(pool) is not str:
            raise TypeError("pool ids of a forecast window must be str")
        number = self[pool] = len(self.names)
        self.names.append(pool)
        return number


class ForecastWindow:
    """The matrices of `robust.matrices(history, day)` for the days of one source whose rows
    never change (a generated sample, a recording): `history(first, last)` gives its rows, and
    nothing before `start` exists."""

    def __init__(self, start: dt.date) -> None:
        self._start = start
        self._numbers = _Numbers()
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
            self._read(history(missing[0], missing[-1]), missing)
        kept = [d for d in days if len(self._days[d].pools)]
        if not kept:
            return np.array([], dtype=object), {}
        present = np.flatnonzero(
            np.bincount(
                np.concatenate([self._days[d].pools for d in kept]),
                minlength=len(self._numbers.names),
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
            by_id = sorted(present.tolist(), key=self._numbers.names.__getitem__)
            ordered = np.array(by_id, dtype=np.intp)
            self._order = (key, ordered)
        ordered = self._order[1]
        position = np.full(len(self._numbers.names), -1, dtype=np.intp)
        position[ordered] = np.arange(len(ordered))
        return np.array(self._numbers.names, dtype=object)[ordered], position

    def add_day(self, day: dt.date, pools: Sequence[str], values: Mapping[str, np.ndarray]) -> None:
        """Keep `day` given as its pools and their tvlUsd, apy, apyBase and apyReward (`values`,
        NaN for a null), instead of reading its rows; a pool listed twice counts once (its
        last entry, as in `_read`)."""
        codes = self._codes(pools)
        logs = _logs(values)
        rows = _survivors(codes, np.arange(len(codes)))
        self._days[day] = _Day(codes[rows], {s: logs[s][rows] for s in SERIES})

    def _codes(self, ids: Sequence[str]) -> np.ndarray:
        """The pool number of each id (new ids numbered in order of first sight)."""
        return np.fromiter(map(self._numbers.__getitem__, ids), dtype=np.intp, count=len(ids))

    def _read(self, frame: pd.DataFrame, days: Sequence[dt.date]) -> None:
        """Keep each of `days` (ascending) of the source's rows `frame` in compact form (rows
        of other days are ignored)."""
        dates = pd.to_datetime(frame["date"]).to_numpy().astype("datetime64[D]")
        codes = self._codes(frame["pool"].to_numpy(dtype=object).tolist())
        logs = _logs({name: frame[name].to_numpy(dtype=float) for name in _INPUTS})
        order = np.argsort(dates, kind="stable")
        wanted = np.array([np.datetime64(d, "D") for d in days], dtype="datetime64[D]")
        lows = np.searchsorted(dates[order], wanted, side="left").tolist()
        highs = np.searchsorted(dates[order], wanted, side="right").tolist()
        for d, lo, hi in zip(days, lows, highs, strict=True):
            rows = _survivors(codes, order[lo:hi])
            self._days[d] = _Day(codes[rows], {s: logs[s][rows] for s in SERIES})


_INPUTS = ("tvlUsd", "apy", "apyBase", "apyReward")


def _logs(values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each series' log values of rows with these tvlUsd, apy, apyBase, apyReward."""
    base, reward = null_rules(values["apy"], values["apyBase"], values["apyReward"])
    raw = {"base": base, "reward": reward, "tvl": values["tvlUsd"]}
    return {s: to_log(raw[s], s) for s in SERIES}


def _survivors(codes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`rows` (in source order) with one row per pool: the last of duplicated rows (the
    survivor `matrices` keeps)."""
    reversed_codes = codes[rows][::-1]
    _, last_seen = np.unique(reversed_codes, return_index=True)
    return rows[len(rows) - 1 - last_seen]
