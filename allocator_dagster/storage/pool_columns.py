"""The pool table's columns under the universe's names (`sources.records`), shared by the
writes and the reads of a pool day, so that a stored day reads back as the frame written."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from allocator_dagster.sources.records import FLOAT_COLUMNS, FORECAST_COLUMNS

# Universe column -> table column.
COLUMN_MAP: dict[str, str] = {
    "pool": "pool_id",
    "chain": "chain",
    "project": "project",
    "symbol": "symbol",
    "underlyingTokens": "underlying_tokens",
    "tvlUsd": "tvl_usd",
    "apy": "apy",
    "apyBase": "apy_base",
    "apyReward": "apy_reward",
    "apyMean30d": "apy_mean_30d",
    "stablecoin": "stablecoin",
    "ilRisk": "il_risk",
    "exposure": "exposure",
    "poolMeta": "pool_meta",
    **{name: name for name in FORECAST_COLUMNS},
}
# The numeric columns: floats, with SQL null as NaN in a frame.
REAL_COLUMNS = (*FLOAT_COLUMNS, *FORECAST_COLUMNS)


def nullable_floats(values: Sequence[Any]) -> np.ndarray:
    """Floats with None (SQL null) as NaN; numpy converts None to NaN itself, in C."""
    return np.array(values, dtype=float) if len(values) else np.array([], dtype=float)
