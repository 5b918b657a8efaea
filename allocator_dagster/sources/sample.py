"""A generated pool universe in DefiLlama's shape, for development, tests and benchmarks.

The treasury cannot fetch the live API everywhere (CI has no network), yet the pipeline, the
forecast and the solvers need a realistic universe with a long history. `SampleUniverse` makes
one: 15 real chain names, 63 real protocol slugs (29 approved by default), lending, staking,
savings and DEX pools with realistic symbols and underlying token addresses (the real ones for
the main tokens), TVL spread over five orders of magnitude,
mean-reverting base APYs with noise and rare spikes at the real data's levels, a market that
moves every pool's APY together (a common factor, and calm and hot regimes that switch every few
months), reward campaigns that decay after launch, rare principal-loss events (a stablecoin
depeg, a hack: that day's APY is the loss, so the paper ledger books it, and the pool's TVL
drops), pools that are listed and delisted during the history, and a few broken records per
day that validation must reject.

Everything is a pure function of (seed, n_pools, start, day): histories are generated in
chunks of `CHUNK_DAYS` days, each from the state at the end of the previous chunk and a random
generator seeded by (seed, chunk number), so the result never depends on which days were asked
for first or on what the cache holds. Generation is vectorised over pools with numpy.
The catalogue (chains, tokens, protocols) is in `sample_catalogue.py`, the drawing of each
pool's identity and parameters in `sample_pools.py`; this module moves them day by day.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from allocator_dagster.parameters import DynamicLists
from allocator_dagster.sources.records import (
    NO_LIMITS,
    PoolSource,
    Rejection,
    validate_pool_records,
)
from allocator_dagster.sources.sample_catalogue import (
    APY_LEVEL,
    CHAIN_TOKENS,
    DEFAULT_APPROVED_TOKENS,
    PROTOCOLS,
    token_address,
)
from allocator_dagster.sources.sample_pools import SamplePools, draw_pools, pool_uuid

CHUNK_DAYS = 32
# generated chunks kept in memory, at most: a backfill walks forward and its forecast window
# reads the history blocks below, so three chunks of the 20,000-pool universe are enough
CACHE_BYTES = 96 * 1024 * 1024
HISTORY_BLOCKS = 4  # chunks of history rows kept as sorted frames (a 60-day window spans 3)
MEAN_WINDOW = 30  # apyMean30d: mean APY of the last 30 listed days, today included
P_SPIKE = 0.002  # per pool and day: an outlier base APY, 3x to 23x the usual
P_JUMP = 0.01  # per pool and day: a sudden TVL move of up to +-30 %
P_CAMPAIGN = 1.0 / 150.0  # per reward pool and day: a new reward campaign starts
# The market: a common factor of every pool's log base APY (AR(1), stationary sd about 0.26)
# and a regime, calm or hot, that switches about every 90 days and lifts APYs by HOT_REGIME.
MARKET_PERSISTENCE = 0.95
MARKET_SHOCK = 0.08
P_REGIME_SWITCH = 1.0 / 90.0
HOT_REGIME = math.log(2.0)
DAY_FRACTION_PCT = 36500.0  # a loss of a fraction f of principal in one day is an APY of -f * this


@dataclass
class _Chunk:
    """One chunk of generated days: arrays of shape (days, pools), NaN where absent or null."""

    tvl: np.ndarray
    base: np.ndarray
    reward: np.ndarray
    apy: np.ndarray
    mean30: np.ndarray


@dataclass
class _State:
    """The processes' state at the start of a chunk."""

    x: np.ndarray  # OU deviation of log base APY
    g: np.ndarray  # TVL growth (momentum)
    u: np.ndarray  # TVL deviation from the pool's level
    amp: np.ndarray  # current reward campaign amplitude (APY %)
    cage: np.ndarray  # days since the current campaign started
    tail: np.ndarray  # last MEAN_WINDOW - 1 days of apy, for apyMean30d
    market: float = 0.0  # the common factor of log base APYs
    hot: bool = False  # the market's regime


class SampleUniverse:
    """A deterministic universe of `n_pools` pools with daily history from `start` on."""

    def __init__(self, seed: int = 7, n_pools: int = 1200, start: date = date(2025, 1, 1)) -> None:
        if n_pools < 1:
            raise ValueError(f"n_pools must be at least 1, got {n_pools}")
        self.seed = int(seed)
        self.n_pools = int(n_pools)
        self.start = start
        self.pools: SamplePools = draw_pools(self.seed, self.n_pools)
        self._states: list[_State] = [self._initial_state()]
        self._chunks: OrderedDict[int, _Chunk] = OrderedDict()
        self._history_blocks: OrderedDict[int, tuple[pd.DataFrame, np.ndarray]] = OrderedDict()
        self._max_loss_p = float(self.pools.loss_p.max())
        chunk_bytes = 5 * 8 * CHUNK_DAYS * self.n_pools
        self._max_chunks = max(2, CACHE_BYTES // chunk_bytes)

    # .............................................................. static attributes

    # .............................................................. dynamics

    def _initial_state(self) -> _State:
        rng = np.random.default_rng([self.seed, 1])
        n, p = self.n_pools, self.pools
        stationary = p.sigma / np.sqrt(1.0 - (1.0 - p.kappa) ** 2)
        x = stationary * rng.standard_normal(n)
        u = 0.3 * rng.standard_normal(n)
        # Old pools are met mid-campaign; new pools start theirs at launch.
        cage = np.where(p.listing < 0, rng.integers(0, 240, n), -p.listing).astype(float)
        tail = np.full((MEAN_WINDOW - 1, n), np.nan)
        return _State(x=x, g=np.zeros(n), u=u, amp=p.amp0.copy(), cage=cage, tail=tail)

    def _generate(self, k: int, state: _State) -> tuple[_Chunk, _State]:
        """Days [k*CHUNK_DAYS, (k+1)*CHUNK_DAYS) from the state at the chunk's start."""
        n, days, p = self.n_pools, CHUNK_DAYS, self.pools
        rng = np.random.default_rng([self.seed, 2, k])
        # Four noises per pool-day (float32 is plenty for noise and twice as fast to draw)...
        eps = rng.standard_normal((days, 4, n), dtype=np.float32).astype(np.float64)
        # ...and one uniform that decides the rare events, which exclude each other:
        # [0, P_SPIKE) an APY spike, then a TVL jump, then the start of a reward campaign.
        events = rng.random((days, n))
        spike = events < P_SPIKE
        jump_at = events - P_SPIKE
        jump = (jump_at >= 0) & (jump_at < P_JUMP)
        campaign_at = jump_at - P_JUMP
        campaign = (campaign_at >= 0) & (campaign_at < P_CAMPAIGN)
        jumps = np.where(jump, 0.6 * jump_at / P_JUMP - 0.3, 0.0)  # log TVL jump in +-0.3
        # ...then a principal-loss event (a depeg or a hack) at the pool's own rate: that day's
        # APY is the loss (the ledger sees it), and the pool's TVL drops. Rare: found sparsely.
        first_loss = P_SPIKE + P_JUMP + P_CAMPAIGN
        lr, lc = np.nonzero(events < first_loss + self._max_loss_p)
        loss_at = events[lr, lc] - first_loss
        hit = (loss_at >= 0) & (loss_at < p.loss_p[lc])
        lr, lc, loss_at = lr[hit], lc[hit], loss_at[hit]
        lost = p.loss_min[lc] + (p.loss_max[lc] - p.loss_min[lc]) * loss_at / p.loss_p[lc]
        jumps[lr, lc] = p.loss_tvl[lc]
        # The market (one common factor and the regime, the same for every pool) day by day.
        common = rng.standard_normal(days)
        switch = rng.random(days) < P_REGIME_SWITCH
        market_now = np.empty(days)
        hot_now = np.empty(days, dtype=bool)
        market, hot = state.market, state.hot
        for j in range(days):
            market = MARKET_PERSISTENCE * market + MARKET_SHOCK * float(common[j])
            hot = hot != bool(switch[j])
            market_now[j], hot_now[j] = market, hot
        shift = market_now + np.where(hot_now, HOT_REGIME, 0.0)
        # The recursive parts (OU deviation, TVL momentum) step day by day; the rest is
        # computed for the whole chunk at once.
        x, g, u = state.x.copy(), state.g.copy(), state.u.copy()
        xs = np.empty((days, n))
        us = np.empty((days, n))
        one_minus_kappa, sigma, phi, sig_g = 1.0 - p.kappa, p.sigma, p.phi, p.sig_g
        for j in range(days):
            x = one_minus_kappa * x + sigma * eps[j, 0]
            g = phi * g + sig_g * eps[j, 1]
            u = 0.99 * u + g + jumps[j]
            xs[j] = x
            us[j] = u

        day = (k * days + np.arange(days))[:, None]
        age = day - p.listing
        to_delist = p.delisting - day
        active = (age >= 0) & (to_delist > 0)
        ramp = np.log1p(-0.95 * np.exp(-np.maximum(age, 0) / p.tau))
        wind_down = np.where(to_delist <= 45, -3.0 * (45 - to_delist) / 45.0, 0.0)
        log_tvl = p.log_level + ramp + us + wind_down

        base = np.multiply(eps[:, 2], p.noise)
        base += xs
        base += np.multiply.outer(shift, p.beta)
        np.exp(base, out=base)
        base *= p.mu
        base = np.where(spike, base * (3.0 + 20.0 * events / P_SPIKE), base)

        # Reward campaigns: a new one may start on any day after the first month; the reward
        # then decays from its amplitude with the pool's half-life.
        new = p.has_reward & (age > 30) & campaign
        rows = np.broadcast_to(np.arange(days)[:, None], (days, n))
        last_new = np.maximum.accumulate(np.where(new, rows, -1), axis=0)
        started = last_new >= 0
        # a new campaign's amplitude, only where one starts (the only entries read below)
        new_amp = np.zeros((days, n))
        new_amp[new] = APY_LEVEL * np.exp(
            np.log(0.5) + np.log(60.0) * campaign_at[new] / P_CAMPAIGN
        )
        amp_now = np.where(
            started, np.take_along_axis(new_amp, np.maximum(last_new, 0), axis=0), state.amp
        )
        cage_now = np.where(started, rows - last_new, state.cage + rows + 1)
        decay = math.log(2.0) / p.half_life
        reward = amp_now * np.exp(-decay * cage_now + 0.08 * eps[:, 3])
        amp, cage = amp_now[-1].copy(), cage_now[-1].astype(float)

        tvl = np.where(active, np.round(np.exp(log_tvl)), np.nan)
        base_r = np.round(base, 5)
        reward_r = np.where(p.has_reward, np.round(reward, 5), 0.0)
        base_r = np.where(p.base_null, 0.0, base_r)
        base_r[lr, lc] = np.round(-lost * DAY_FRACTION_PCT, 5)
        reward_r[lr, lc] = 0.0
        apy = np.where(active, np.round(base_r + reward_r, 5), np.nan)
        base_out = np.where(active & ~p.base_null, base_r, np.nan)
        base_out[lr, lc] = np.where(active[lr, lc], base_r[lr, lc], np.nan)
        reward_out = np.where(active & p.has_reward, reward_r, np.nan)

        window = np.concatenate([state.tail, apy])
        filled = np.nan_to_num(window)
        counts = np.concatenate([np.zeros((1, n)), np.cumsum(~np.isnan(window), axis=0)])
        sums = np.concatenate([np.zeros((1, n)), np.cumsum(filled, axis=0)])
        w = MEAN_WINDOW
        lo = np.arange(days)
        hi = lo + w
        with np.errstate(invalid="ignore", divide="ignore"):
            mean30 = (sums[hi] - sums[lo]) / (counts[hi] - counts[lo])
        mean30 = np.where(active, np.round(mean30, 5), np.nan)

        chunk = _Chunk(tvl=tvl, base=base_out, reward=reward_out, apy=apy, mean30=mean30)
        new_state = _State(
            x=x, g=g, u=u, amp=amp, cage=cage, tail=window[-(w - 1) :].copy(),
            market=market, hot=hot,
        )  # fmt: skip
        return chunk, new_state

    def _chunk(self, k: int) -> _Chunk:
        cached = self._chunks.get(k)
        if cached is not None:
            self._chunks.move_to_end(k)
            return cached
        while len(self._states) <= k:  # states are tiny: keep every chunk boundary
            i = len(self._states) - 1
            chunk, state = self._generate(i, self._states[i])
            self._states.append(state)
            self._remember(i, chunk)
        chunk, _ = self._generate(k, self._states[k])
        self._remember(k, chunk)
        return chunk

    def _remember(self, k: int, chunk: _Chunk) -> None:
        self._chunks[k] = chunk
        self._chunks.move_to_end(k)
        while len(self._chunks) > self._max_chunks:
            self._chunks.popitem(last=False)

    def _offset(self, day: date) -> int:
        if not isinstance(day, date):
            raise TypeError(f"day must be a datetime.date, got {day!r}")
        offset = (day - self.start).days
        if offset < 0:
            raise ValueError(f"the sample universe starts on {self.start}; no data for {day}")
        return offset

    def _day_arrays(self, offset: int) -> tuple[np.ndarray, ...]:
        k, j = divmod(offset, CHUNK_DAYS)
        c = self._chunk(k)
        return c.tvl[j], c.apy[j], c.base[j], c.reward[j], c.mean30[j]

    # .............................................................. public API

    def active_mask(self, day: date) -> np.ndarray:
        """Which pools are listed on `day` (listed on or before it, not yet delisted)."""
        offset = self._offset(day)
        return (self.pools.listing <= offset) & (self.pools.delisting > offset)

    def records_for(self, day: date) -> list[dict[str, Any]]:
        """The `/pools` response's `data` for `day`: each listed pool, plus a few bad records."""
        offset = self._offset(day)
        tvl, apy, base, reward, mean30 = self._day_arrays(offset)
        idx = np.flatnonzero(~np.isnan(tvl))
        tvl_l = tvl[idx].astype(np.int64).tolist()
        apy_l = apy[idx].tolist()
        base_l = _nullable(base[idx])
        reward_l = _nullable(reward[idx])
        mean_l = _nullable(mean30[idx])
        p = self.pools
        pools, chains, projects, symbols = p.pool_ids, p.chains, p.projects, p.symbols
        stable, il, exposure, meta, under = (
            p.stablecoin, p.il_risk, p.exposure, p.pool_meta, p.underlying
        )  # fmt: skip
        out = []
        for pos, i in enumerate(idx.tolist()):
            tokens = under[i]
            out.append(
                {
                    "chain": chains[i],
                    "project": projects[i],
                    "symbol": symbols[i],
                    "tvlUsd": tvl_l[pos],
                    "apyBase": base_l[pos],
                    "apyReward": reward_l[pos],
                    "apy": apy_l[pos],
                    "pool": pools[i],
                    "stablecoin": stable[i],
                    "ilRisk": il[i],
                    "exposure": exposure[i],
                    "poolMeta": meta[i],
                    "apyMean30d": mean_l[pos],
                    "underlyingTokens": None if tokens is None else list(tokens),
                }
            )
        out.extend(self._bad_records(offset, out))
        return out

    def _bad_records(self, offset: int, good: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """0-3 broken records and sometimes a duplicate id: what validation must catch."""
        if not good:
            return []
        rng = np.random.default_rng([self.seed, 3, offset])
        count = int(rng.integers(0, 4))
        bad = []
        for k in range(count):
            record = dict(good[int(rng.integers(0, len(good)))])
            record["pool"] = pool_uuid(self.seed, "bad", offset, k)
            flaw = int(rng.integers(0, 5))
            if flaw == 0:
                record["tvlUsd"] = math.nan
            elif flaw == 1:
                record["tvlUsd"] = -abs(record["tvlUsd"]) - 1
            elif flaw == 2:
                del record["chain"]
            elif flaw == 3:
                record["symbol"] = None
            else:
                record["apyBase"] = math.inf
            bad.append(record)
        if rng.random() < 0.2:
            duplicate = dict(good[int(rng.integers(0, len(good)))])
            duplicate["tvlUsd"] = int(duplicate["tvlUsd"] * 2 + 1)
            bad.append(duplicate)
        return bad

    def universe_for(self, day: date) -> tuple[pd.DataFrame, list[Rejection]]:
        """`records_for(day)` validated: the universe the pipeline would see for `day`."""
        return validate_pool_records(
            self.records_for(day), source=PoolSource.SAMPLE, limits=NO_LIMITS
        )

    def chart(self, pool_id: str, until: date) -> list[dict[str, Any]]:
        """The `/chart/{pool}` response's `data`: a row per listed day up to `until` (inclusive)."""
        if pool_id not in self.pools.index:
            raise KeyError(f"unknown sample pool {pool_id!r}")
        i = self.pools.index[pool_id]
        last = self._offset(until)
        first = max(int(self.pools.listing[i]), 0)
        last = min(last, int(self.pools.delisting[i]) - 1)
        rows: list[dict[str, Any]] = []
        for k in range(first // CHUNK_DAYS, last // CHUNK_DAYS + 1):
            c = self._chunk(k)
            lo, hi = max(first - k * CHUNK_DAYS, 0), min(last - k * CHUNK_DAYS, CHUNK_DAYS - 1)
            for j in range(lo, hi + 1):
                day = self.start + timedelta(days=k * CHUNK_DAYS + j)
                rows.append(
                    {
                        "timestamp": f"{day.isoformat()}T00:00:00.000Z",
                        "tvlUsd": int(c.tvl[j, i]),
                        "apy": float(c.apy[j, i]),
                        "apyBase": _nullable(c.base[j, i : i + 1])[0],
                        "apyReward": _nullable(c.reward[j, i : i + 1])[0],
                        "il7d": None,
                        "apyBase7d": None,
                    }
                )
        return rows

    def history(self, start: date, end: date) -> pd.DataFrame:
        """Daily (date, pool, tvlUsd, apy, apyBase, apyReward) of listed pools, start..end.

        Values are those validation keeps (a null part of the APY counts as 0), so this frame
        equals what storing `records_for` each day and reading it back would give.
        """
        first, last = self._offset(start), self._offset(end)
        if last < first:
            raise ValueError(f"end {end} is before start {start}")
        parts = []
        for k in range(first // CHUNK_DAYS, last // CHUNK_DAYS + 1):
            block, offsets = self._history_block(k)
            lo = np.searchsorted(offsets, first, side="left")
            hi = np.searchsorted(offsets, last, side="right")
            parts.append(block.iloc[lo:hi])
        return (
            pd.concat(parts, ignore_index=True)
            if len(parts) > 1
            else parts[0].reset_index(drop=True)
        )

    def _history_block(self, k: int) -> tuple[pd.DataFrame, np.ndarray]:
        """The history rows of chunk k, sorted by (date, pool), and each row's day offset.

        Kept for the last few chunks: consecutive days (a backfill) slice the same blocks
        instead of building and sorting their 60-day window again.
        """
        cached = self._history_blocks.get(k)
        if cached is not None:
            self._history_blocks.move_to_end(k)
            return cached
        c = self._chunk(k)
        rows, cols = np.nonzero(~np.isnan(c.tvl))
        offsets = k * CHUNK_DAYS + rows
        frame = pd.DataFrame(
            {
                "date": np.datetime64(self.start, "D") + offsets.astype("timedelta64[D]"),
                "pool": np.array(self.pools.pool_ids, dtype=object)[cols],
                "tvlUsd": c.tvl[rows, cols],
                "apy": c.apy[rows, cols],
                "apyBase": np.nan_to_num(c.base[rows, cols], nan=0.0),
                "apyReward": np.nan_to_num(c.reward[rows, cols], nan=0.0),
            }
        )
        frame["date"] = frame["date"].astype("datetime64[ns]")
        frame["pool"] = frame["pool"].astype("str")
        order = frame.sort_values(["date", "pool"], kind="stable").index.to_numpy()
        block = (frame.take(order).reset_index(drop=True), offsets[order])
        self._history_blocks[k] = block
        while len(self._history_blocks) > HISTORY_BLOCKS:
            self._history_blocks.popitem(last=False)
        return block

    @property
    def token_addresses(self) -> dict[tuple[str, str], str]:
        """(chain, symbol) -> address, for every token the sample uses on every chain."""
        return {
            (chain, symbol): token_address(chain, symbol)
            for chain, symbols in CHAIN_TOKENS.items()
            for symbol in symbols
        } | {
            (chain, symbol): token_address(chain, symbol)
            for proto in PROTOCOLS
            for chain in proto.chains
            for symbol in proto.tokens
        }

    def default_lists(self) -> DynamicLists:
        """The treasury's starting lists: main stablecoins and majors, the blue-chip protocols."""
        return DynamicLists(
            approved_tokens=DEFAULT_APPROVED_TOKENS,
            approved_protocols=tuple(p.slug for p in PROTOCOLS if p.approved),
            blacklisted_tokens=(),
            icebox_tokens=(),
        )


def _nullable(values: np.ndarray) -> list[float | None]:
    """Floats with NaN as None (JSON null), as the API sends absent values."""
    return [None if v != v else v for v in values.tolist()]
