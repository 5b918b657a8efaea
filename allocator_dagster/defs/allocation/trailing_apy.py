"""The observed APY of the stored days that the daily allocation's APY volatility reads.

`risk.apy_volatility` needs the last `VOLATILITY_DAYS` days of the APY of the pools a day
holds, and nothing of the others. A range run decides day after day, so the days it decided come
from each day's own universe (no query), and the stored days before the run are read once per
pool, only for the pools held: a handful of rows, where the whole universe's 29 days are over
half a million at 20,000 pools (the live day's cost).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from allocator_dagster.risk import VOLATILITY_DAYS
from allocator_dagster.storage.pool_days import stored_days_between
from allocator_dagster.storage.pool_history import load_pool_history


class TrailingApy:
    """(date, pool, apy) of the stored days in the `length` days up to each day asked for, for
    the pools asked for: one row per stored day and pool, NaN where the pool has no row that day
    (which `risk.apy_volatility` counts as 0, as it counts a missing row)."""

    def __init__(self, engine: sa.Engine, length: int = VOLATILITY_DAYS) -> None:
        if length < 1:
            raise ValueError(f"length must be at least 1, got {length}")
        self._engine, self._length = engine, length
        self._last: date | None = None
        self._decided: dict[date, pd.Series] = {}  # days of this stretch: every pool's APY
        self._earlier_days: list[date] = []  # stored days before the stretch, in the window
        self._earlier: dict[tuple[date, str], float] = {}  # their APYs of the pools read so far
        self._read: set[str] = set()
        self._since: date | None = None

    def up_to(self, day: date, universe: pd.DataFrame, pools: Collection[str]) -> pd.DataFrame:
        """The window ending on `day` for `pools`; `universe` is the day's stored pools."""
        if self._last != day - timedelta(days=1):  # a new stretch of consecutive days
            self._since, self._decided, self._earlier, self._read = day, {}, {}, set()
            self._earlier_days = stored_days_between(
                self._engine, first=day - timedelta(days=self._length - 1), before=day
            )
        self._last = day
        first = day - timedelta(days=self._length - 1)
        apy = pd.Series(universe["apy"].to_numpy(dtype=float), index=universe["pool"].astype(str))
        self._decided[day] = apy[~apy.index.duplicated()]
        self._decided = {d: s for d, s in self._decided.items() if d >= first}
        earlier = [d for d in self._earlier_days if d >= first]
        wanted = sorted(set(map(str, pools)))
        self._read_earlier([p for p in wanted if p not in self._read], earlier)
        days = earlier + sorted(self._decided)
        values = [self._earlier.get((d, p), np.nan) for d in earlier for p in wanted]
        values += [
            float(v)
            for d in sorted(self._decided)
            for v in self._decided[d].reindex(wanted).to_numpy(dtype=float)
        ]
        return pd.DataFrame(
            {
                "date": np.repeat(np.array(days, dtype=object), len(wanted)),
                "pool": np.tile(np.array(wanted, dtype=object), len(days)),
                "apy": np.array(values, dtype=float),
            }
        )

    def _read_earlier(self, pools: list[str], earlier: list[date]) -> None:
        """The stored APYs of `pools` on the days before the stretch (once per pool)."""
        if not pools or not earlier or self._since is None:
            return
        history = load_pool_history(
            self._engine, before=self._since, days=self._length - 1, pools=pools
        )
        self._read.update(pools)
        if history.empty:
            return
        for d, pool, value in zip(
            history["date"].dt.date,
            history["pool"],
            history["apy"].to_numpy(dtype=float),
            strict=True,
        ):
            self._earlier[(d, str(pool))] = float(value)
