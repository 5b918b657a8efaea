"""The observed APY of the stored days that the daily allocation's APY volatility reads.

`risk.apy_volatility` needs the last `VOLATILITY_DAYS` days of every held pool's APY. A range
run decides day after day, so the window is read from the database once, at the run's first day
(or after a gap), and then moved on with each decided day's own universe: no query per day.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from allocator_dagster.risk import VOLATILITY_DAYS
from allocator_dagster.storage.pools import load_pool_history


class TrailingApy:
    """(date, pool, apy) of the stored days in the `length` days up to each day asked for."""

    def __init__(self, engine: sa.Engine, length: int = VOLATILITY_DAYS) -> None:
        if length < 1:
            raise ValueError(f"length must be at least 1, got {length}")
        self._engine, self._length = engine, length
        self._days: dict[date, pd.DataFrame] = {}
        self._last: date | None = None

    def up_to(self, day: date, universe: pd.DataFrame) -> pd.DataFrame:
        """The window ending on `day`, whose rows are `universe` (the day's stored pools)."""
        first = day - timedelta(days=self._length - 1)
        if self._last != day - timedelta(days=1):
            self._days = self._read(before=day, days=self._length - 1)
        self._days[day] = self._rows(day, universe["pool"], universe["apy"])
        self._days = {d: f for d, f in self._days.items() if first <= d <= day}
        self._last = day
        return pd.concat([self._days[d] for d in sorted(self._days)], ignore_index=True)

    def _read(self, *, before: date, days: int) -> dict[date, pd.DataFrame]:
        if days < 1:
            return {}
        history = load_pool_history(self._engine, before=before, days=days)
        return {
            d: self._rows(d, part["pool"], part["apy"])
            for d, part in history.groupby(history["date"].dt.date, sort=True)
        }

    @staticmethod
    def _rows(day: date, pools: pd.Series, apy: pd.Series) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "date": np.full(len(pools), day, dtype=object),
                "pool": pools.astype(str).to_numpy(),
                "apy": apy.to_numpy(dtype=float),
            }
        )
