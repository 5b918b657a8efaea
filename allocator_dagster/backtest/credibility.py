"""How much of the gain a strategy's trades forecast was realised (MODEL.md's
`forecast_credibility`, measured).

For each day D on which a strategy changed its positions, from P (held during D) to Q (held
during D+1), the forecast gain is the daily yield of Q - P at D's forecast APY (what the
decision saw) and the realised gain over h days is what Q - P earned at the realised APY of
D+1 .. D+h (a pool missing on a day earns 0), both positions kept as they are. The credibility
over h days is the realised gain summed over the trades divided by h times their forecast gain:
1.0 means the forecast differences between pools were realised in full, 0.3 that 30 % of them
were. Only trades whose h days lie in the range count, and the day-1 placement is not a trade.
A trade whose pools realise an APY beyond `LOSS_APY_PCT` on one of those days is left out: a
principal loss (the sample's "-30,000 %" day) would swamp the yield of every other trade.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from allocator_dagster.backtest.engine import Market, StrategyRun

HORIZONS = (1, 5, 10, 30)
LOSS_APY_PCT = 1000.0  # MODEL.md's ceiling of a live record: beyond it a day is a loss event
_DAYS_PER_YEAR_PCT = 36_500.0


@dataclass(frozen=True)
class Credibility:
    """The trades of one horizon: how many, their forecast and their realised gain."""

    horizon_days: int
    trades: int
    forecast_usd: float  # h x the forecast daily gain, summed over the trades
    realised_usd: float

    @property
    def ratio(self) -> float | None:
        return self.realised_usd / self.forecast_usd if self.forecast_usd else None


def trade_credibility(
    run: StrategyRun, market: Market, horizons: Sequence[int] = HORIZONS
) -> list[Credibility]:
    """The credibility of `run`'s trades over each horizon (one record per market day)."""
    if len(run.days) != len(market.days):
        raise ValueError(f"{run.name}: {len(run.days)} days for a market of {len(market.days)}")
    pools = sorted({p for frame in market.frames for p in frame["pool"].astype(str)})
    at = {p: i for i, p in enumerate(pools)}
    forecast = _matrix(market, "apy_forecast", at)
    realised = _matrix(market, "apy", at)
    loss = np.abs(realised) > LOSS_APY_PCT
    realised = np.where(np.isfinite(realised), realised, 0.0)
    forecast = np.where(np.isfinite(forecast), forecast, 0.0)
    last = len(market.days) - 1
    totals = {h: [0, 0.0, 0.0] for h in horizons}
    for k in range(last):
        before, after = run.days[k].positions, run.days[k + 1].positions
        if not before or before == after:
            continue  # the day-1 placement, or no trade
        delta = np.zeros(len(pools))
        for pool in set(before) | set(after):
            delta[at[pool]] = float(after.get(pool, 0) - before.get(pool, 0))
        moved = delta != 0
        daily = float(delta @ forecast[k]) / _DAYS_PER_YEAR_PCT
        for h in horizons:
            days = slice(k + 1, k + 1 + h)
            if k + h > last or loss[days][:, moved].any():
                continue
            total = totals[h]
            total[0] += 1
            total[1] += h * daily
            total[2] += float((realised[days] @ delta).sum()) / _DAYS_PER_YEAR_PCT
    return [Credibility(h, int(n), f, r) for h, (n, f, r) in totals.items()]


def _matrix(market: Market, column: str, at: dict[str, int]) -> np.ndarray:
    """days x pools of `column` (NaN where a pool has no row that day)."""
    out = np.full((len(market.days), len(at)), np.nan)
    for k, frame in enumerate(market.frames):
        index = [at[p] for p in frame["pool"].astype(str)]
        out[k, index] = frame[column].to_numpy(dtype=float)
    return out


def credibility_text(results: Sequence[Credibility]) -> str:
    """One line: the realised share of the forecast gain per horizon, with the trades counted."""
    parts = [
        f"{c.horizon_days} d {c.ratio:.3f} ({c.trades} trades)"
        if c.ratio is not None
        else f"{c.horizon_days} d - ({c.trades} trades)"
        for c in results
    ]
    return "realised / forecast gain of the trades over " + ", ".join(parts)
