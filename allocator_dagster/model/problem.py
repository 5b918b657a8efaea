"""One day's problem of MODEL.md over the eligible pools, specified once for every backend.

`build_problem` turns a pool universe, holdings, parameters and the dynamic lists into a
`Problem`: eligible pools, bounds, groups, costs, and the held pools that must be exited.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from allocator_dagster.model.eligibility import (
    effective_apy_columns,
    group_column,
    number_column,
    screen,
)
from allocator_dagster.model.holdings import Holdings
from allocator_dagster.money import (
    HALF_CENT_USD,
    AmountTooLargeError,
    check_usd,
    to_cent_grid,
)
from allocator_dagster.parameters import AllocationParameters, DynamicLists

DAYS_PER_YEAR_PCT = 36500.0  # APY in percent per year -> daily fraction


class ModelInputError(ValueError):
    """Input that cannot form a problem (e.g. a chain without a gas cost); names the pool and field."""


@dataclass(frozen=True)
class ForcedExit:
    """A held pool that is no longer eligible (or vanished from the data): its money is taken
    out, for its chain's gas, and joins the capital to place."""

    pool: str
    amount_usd: float
    reason: str
    gas_usd: float


CAP_NAMES = (
    "tvl_limit_percentage",
    "position_max_pct_pool_tvl",
    "position_max_pct_total_assets",
    "max_alloc_percentage",
)


@dataclass(frozen=True)
class Problem:
    """One day's problem over the eligible pools (sorted by pool id), in USD.

    Arrays are aligned; `lower` is 0, or the holding in yield-only mode. Ineligible held pools
    are not variables: they are exited (`forced_exits`), their money joins the capital to place.
    """

    pool_ids: np.ndarray
    chain: np.ndarray
    project: np.ndarray
    symbol: np.ndarray
    group: np.ndarray
    apy: np.ndarray
    apy_base: np.ndarray
    apy_reward: np.ndarray
    tvl: np.ndarray
    held: np.ndarray
    upper: np.ndarray
    upper_cap: np.ndarray  # index into CAP_NAMES: which limit sets `upper`
    lower: np.ndarray
    gas: np.ndarray
    conversion_rate: np.ndarray  # fraction of a positive move charged as conversion
    total_usd: float
    horizon_days: float  # the credible horizon (MODEL.md, forecast_credibility)
    group_caps_usd: tuple[float, float, float]
    min_pools: int
    min_position_usd: float
    yield_model: str
    mode: str = "full"
    min_withdrawal_usd: float = (
        0.0  # constraint 8: a held pool is reduced by 0, >= this, or emptied
    )
    forced_exits: tuple[ForcedExit, ...] = ()
    presolve_removed: int = 0
    presolve_note: str = ""

    @property
    def n(self) -> int:
        return len(self.pool_ids)

    @property
    def is_held(self) -> np.ndarray:
        return self.held > 0

    def untouched(self, x: np.ndarray) -> np.ndarray:
        """Held pools that `x` leaves at their holding (to the cent): no trade, no cost."""
        return self.is_held & (np.abs(x - self.held) < HALF_CENT_USD)

    def cannot_stay(self) -> np.ndarray:
        """Held pools that no feasible x leaves at their holding: a holding under
        min_position_usd (constraint 6) or above its bound `upper` (limits 3-5): each is traded."""
        below = self.held < self._min_position_floor() - HALF_CENT_USD
        return self.is_held & (below | (self.held > self.upper + HALF_CENT_USD))

    def floors_conflict(self) -> bool:
        """The floors `lower` already break a limit, so no x is feasible: a pool must keep more
        than its bound, or a group's floors add up to more than its cap (yield-only when a
        holding's limit or the capital fell). Decided on the cent grid, exactly: a MIP solver's
        row tolerance (HiGHS: 1e-6 of T) would accept a group 7 USD over its cap."""
        if np.any(self.lower > self.upper + HALF_CENT_USD):
            return True
        return any(
            float(self.lower[self.group == k].sum()) > cap + HALF_CENT_USD
            for k, cap in enumerate(self.group_caps_usd, start=1)
        )

    def _min_position_floor(self) -> float:
        return float(to_cent_grid(np.array([self.min_position_usd]))[0])

    def withdrawal_ceiling(self) -> np.ndarray:
        """Constraint 8: the most a held pool may keep once it is reduced at all,
        `max(h_i - min_withdrawal_usd, 0)` (emptying a smaller holding is always allowed)."""
        return np.maximum(self.held - self.min_withdrawal_usd, 0.0)

    @property
    def limits_withdrawals(self) -> bool:
        """Constraint 8 restricts some pool: a minimum is set and a held pool may be reduced
        (in yield-only mode no pool can be)."""
        return self.min_withdrawal_usd > 0 and bool(np.any(self.lower < self.held))

    def upper_given(self, x: np.ndarray) -> np.ndarray:
        """Each pool's upper bound where `x` sits: a held pool that `x` reduces may not come back
        above its withdrawal ceiling (constraint 8), so rounding never undoes a withdrawal's
        minimum."""
        if not self.limits_withdrawals:
            return self.upper
        reduced = self.is_held & (x < self.held - HALF_CENT_USD)
        return np.where(reduced, np.minimum(self.upper, self.withdrawal_ceiling()), self.upper)

    @property
    def exit_gas_usd(self) -> float:
        return float(sum(e.gas_usd for e in self.forced_exits))

    @property
    def needs_integers(self) -> bool:
        """Binaries matter when a minimum, min_pools, a fixed gas cost or a minimum withdrawal
        from a held pool is present."""
        return (
            self.min_pools > 0
            or self.min_position_usd > 0
            or bool(np.any(self.gas > 0))
            or self.limits_withdrawals
        )

    def reward_emission_per_day(self) -> np.ndarray:
        """Diluted model: the pool's reward emission in USD per day, shared pro rata."""
        return self.apy_reward * self.tvl / DAYS_PER_YEAR_PCT

    def others_tvl(self) -> np.ndarray:
        """Diluted model: TVL that is not ours (at least 1 USD, so the share is defined)."""
        return np.maximum(self.tvl - self.held, 1.0)

    def linear_rate(self) -> np.ndarray:
        return self.apy / DAYS_PER_YEAR_PCT

    def yield_only(self) -> Problem:
        """The same problem with x_i >= h_i for every eligible held pool.

        A held pool keeps x_i >= h_i > 0, so it is selected and constraint 6 asks
        x_i >= min_position_usd too: its bound is max(h_i, min_position_usd) (a holding below
        the minimum is topped up). Said in the bound, not left to the binaries, because a MIP
        solver's row tolerance (HiGHS: 1e-6 of T, 10 USD on 10 M USD) would let an untouched
        holding a few USD below the minimum pass as selected.
        """
        lower = np.where(self.is_held, np.maximum(self.held, self._min_position_floor()), 0.0)
        return replace(self, lower=lower, mode="yield-only")

    def subset(self, keep: np.ndarray) -> Problem:
        arrays = {
            name: getattr(self, name)[keep]
            for name in (
                "pool_ids", "chain", "project", "symbol", "group", "apy", "apy_base",
                "apy_reward", "tvl", "held", "upper", "upper_cap", "lower", "gas",
                "conversion_rate",
            )
        }  # fmt: skip
        return replace(self, **arrays)


def _forecast_or_current(frame: pd.DataFrame, forecast: str, current: np.ndarray) -> np.ndarray:
    if forecast in frame.columns:
        values = pd.to_numeric(frame[forecast], errors="coerce")
        return np.where(values.notna(), values, current).astype(float, copy=True)
    return np.array(current, dtype=float, copy=True)


def build_problem(
    universe: pd.DataFrame,
    holdings: Holdings,
    params: AllocationParameters,
    lists: DynamicLists,
) -> tuple[Problem, dict[str, str]]:
    """The problem for one day and, for every ineligible pool of the universe, why.

    Forecast columns are used where present (MODEL.md), falling back to current values.
    Column-wise: the token and protocol rules are memoised per (symbol, underlying, project).
    """
    try:
        check_usd(holdings.total_usd, "the total capital")
    except AmountTooLargeError as exc:
        raise ModelInputError(str(exc)) from None
    frame = _pool_frame(universe)
    tvl_now = number_column(frame, "tvlUsd")
    apy_now, base_now, reward_now = effective_apy_columns(frame)
    eligible, reasons = screen(frame, tvl_now, apy_now, params, lists)
    held_map = {p: float(a) for p, a in holdings.held().items()}
    total = float(holdings.total_usd)
    exits = _forced_exits(frame, held_map, reasons, params)

    rows = np.flatnonzero(eligible)
    apy = _forecast_or_current(frame, "apy_forecast", apy_now)[rows]
    base = _forecast_or_current(frame, "apy_base_forecast", base_now)[rows]
    reward = _forecast_or_current(frame, "apy_reward_forecast", reward_now)[rows]
    for arr in (apy, base, reward):
        arr[~np.isfinite(arr)] = 0.0
    tvl = _forecast_or_current(frame, "tvl_forecast", tvl_now)[rows]
    tvl = np.where(np.isfinite(tvl) & (tvl > 0), tvl, tvl_now[rows])

    pool_ids = frame["pool"].astype(str).to_numpy()[rows]
    chains = frame["chain"].astype(str).to_numpy()[rows]
    symbols = frame["symbol"].astype(str).to_numpy()[rows]
    held = np.array([held_map.get(p, 0.0) for p in pool_ids], dtype=float)
    upper, upper_cap = _upper_limits(tvl, total, params)
    upper = _drift_band(upper, held, params.limit_drift_pct)
    problem = Problem(
        pool_ids=pool_ids,
        chain=chains,
        project=frame["project"].astype(str).to_numpy()[rows],
        symbol=symbols,
        group=group_column(frame, rows, pool_ids, params.pool_groups),
        apy=apy,
        apy_base=base,
        apy_reward=reward,
        tvl=tvl,
        held=held,
        upper=upper,
        upper_cap=upper_cap,
        lower=np.zeros(len(rows)),
        gas=_gas_costs(pool_ids, chains, params),
        conversion_rate=np.where(
            symbols == params.base_token, 0.0, params.conversion_penalty_bps / 10_000.0
        ).astype(float),
        total_usd=total,
        horizon_days=params.credible_horizon_days(),
        group_caps_usd=tuple(
            float(to_cent_grid(np.array([g * total]))[0]) for g in params.group_caps()
        ),  # type: ignore[arg-type]
        min_pools=params.min_pools,
        min_position_usd=params.min_position_usd,
        yield_model=params.yield_model,
        forced_exits=exits,
        min_withdrawal_usd=float(to_cent_grid(np.array([params.min_withdrawal_pct * total]))[0]),
    )
    return problem, reasons


def _pool_frame(universe: pd.DataFrame) -> pd.DataFrame:
    """The universe sorted by pool id with a fresh index; a pool listed twice is refused."""
    frame = universe
    if not frame["pool"].is_monotonic_increasing:
        frame = frame.sort_values("pool", kind="stable")
    frame = frame.reset_index(drop=True)
    if frame["pool"].duplicated().any():
        dup = frame.loc[frame["pool"].duplicated(), "pool"].iloc[0]
        raise ModelInputError(f"pool {dup!r} appears twice in the pool universe")
    return frame


def _forced_exits(
    frame: pd.DataFrame,
    held_map: dict[str, float],
    reasons: dict[str, str],
    params: AllocationParameters,
) -> tuple[ForcedExit, ...]:
    """Held pools that are not eligible (or have vanished from the data) must be exited."""
    pool_all = frame["pool"].tolist()
    symbol_all = frame["symbol"].tolist()
    project_all = frame["project"].tolist()
    chain_all = frame["chain"].tolist()
    position = {str(p): i for i, p in enumerate(pool_all)}
    exits = []
    for pool, amount in held_map.items():
        row = position.get(pool)
        if row is None:
            reason = f"pool {pool} vanished from the pool data"
            chain = None
        elif pool in reasons:
            reason = f"pool {pool} ({symbol_all[row]} on {project_all[row]}): {reasons[pool]}"
            chain = str(chain_all[row])
        else:
            continue
        gas = params.gas_for(chain) if chain else params.gas_usd.get("default")
        if gas is None:
            where = f"chain {chain!r}" if chain else "an unknown chain (it vanished from the data)"
            raise ModelInputError(
                f"held pool {pool!r} must be exited but {where} has no gas cost in gas_usd and there is no 'default'"
            )
        exits.append(ForcedExit(pool, amount, reason, float(gas)))
    return tuple(exits)


def _upper_limits(
    tvl: np.ndarray, total: float, params: AllocationParameters
) -> tuple[np.ndarray, np.ndarray]:
    """Each pool's limit (the smallest of CAP_NAMES, on the cent grid) and which one sets it."""
    n = len(tvl)
    if not n:
        return np.zeros(0), np.zeros(0, dtype=int)
    caps = np.vstack(
        [
            params.tvl_limit_percentage * tvl,
            params.position_max_pct_pool_tvl * tvl,
            np.full(n, params.position_max_pct_total_assets * total),
            np.full(
                n, math.inf if params.profit_optimization else params.max_alloc_percentage * total
            ),
        ]
    )
    return to_cent_grid(caps.min(axis=0)), np.argmin(caps, axis=0)


def _drift_band(upper: np.ndarray, held: np.ndarray, drift: float) -> np.ndarray:
    """The no-trade band on the pool limits (MODEL.md, constraints 3-5): a holding above its
    limit by at most `drift` of it may stay, `max(U_i, min(h_i, (1 + drift) U_i))`, so a pool's
    TVL wobbling around the cap does not buy a small withdrawal and a top-up on alternate days."""
    if drift <= 0 or not len(upper):
        return upper
    band = to_cent_grid((1.0 + drift) * upper)
    return np.where(held > upper, np.minimum(held, band), upper)


def _gas_costs(
    pool_ids: np.ndarray, chains: np.ndarray, params: AllocationParameters
) -> np.ndarray:
    """Gas per pool from its chain; a chain without a cost (and no 'default') is refused."""
    gas_by_chain = {c: params.gas_for(c) for c in set(chains.tolist())}
    for pool, chain in zip(pool_ids, chains, strict=True):
        if gas_by_chain[chain] is None:
            raise ModelInputError(
                f"pool {pool!r}: chain {chain!r} has no gas cost in gas_usd and there is no 'default'"
            )
    return np.array([float(gas_by_chain[c]) for c in chains.tolist()], dtype=float)  # type: ignore[arg-type]
