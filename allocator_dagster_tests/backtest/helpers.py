"""Small hand-made markets for the backtest tests: a few pools, known APYs and forecasts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd

from allocator_dagster.backtest.engine import FrameOf
from allocator_dagster.parameters import AllocationParameters, DynamicLists

START = dt.date(2025, 3, 1)
# every limit wide open but min_position; one gas cost; no conversion for the base token
PARAMS = AllocationParameters(
    tvl_limit_percentage=1.0,
    position_max_pct_pool_tvl=1.0,
    position_max_pct_total_assets=1.0,
    max_alloc_percentage=1.0,
    min_pools=1,
    min_position_usd=1_000.0,
    group2_max_pct=1.0,
    group3_max_pct=1.0,
    gas_usd={"default": 1.0},
    min_tvl_usd=0.0,
    min_improvement_usd=0.0,
)
LISTS = DynamicLists(approved_tokens=("A", "B", "C", "USDC"), approved_protocols=("p", "q"))

# pool -> (realised apy, forecast apy, tvl)
Day = Mapping[str, tuple[float, float, float]]


def frame(pools: Day) -> pd.DataFrame:
    ids = sorted(pools)
    return pd.DataFrame(
        {
            "pool": ids,
            "chain": ["Ethereum"] * len(ids),
            "project": ["p" if p != "c" else "q" for p in ids],
            "symbol": [p.upper() for p in ids],
            "tvlUsd": [pools[p][2] for p in ids],
            "apy": [pools[p][0] for p in ids],
            "apyBase": [pools[p][0] for p in ids],
            "apyReward": [0.0] * len(ids),
            "stablecoin": [False] * len(ids),
            "ilRisk": ["no"] * len(ids),
            "exposure": ["single"] * len(ids),
            "underlyingTokens": [None] * len(ids),
            "apy_forecast": [pools[p][1] for p in ids],
            "apy_base_forecast": [pools[p][1] for p in ids],
            "apy_reward_forecast": [0.0] * len(ids),
            "tvl_forecast": [pools[p][2] for p in ids],
        }
    )


def market_of(days: list[Day]) -> FrameOf:
    frames = {START + dt.timedelta(days=k): frame(d) for k, d in enumerate(days)}

    def frame_of(day: dt.date) -> pd.DataFrame:
        return frames[day]

    return frame_of
