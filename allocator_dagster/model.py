"""The daily allocation problem of MODEL.md, specified once.

`build_problem` turns a pool universe, holdings, parameters and the dynamic lists into a
`Problem` (eligible pools, bounds, groups, costs) that every backend consumes; `evaluate` scores
any allocation with the model itself, so backends are compared on one scale; `diagnose`
explains an infeasible day in words a treasurer understands; `presolve_dominated` removes pools
that provably cannot change the optimum.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from functools import lru_cache

import numpy as np
import pandas as pd

from allocator_dagster.parameters import AllocationParameters, DynamicLists

CENT = Decimal("0.01")
DAYS_PER_YEAR_PCT = 36500.0  # APY in percent per year -> daily fraction
IDLE = "idle_usd"


class ModelInputError(ValueError):
    """Input that cannot form a problem (e.g. a chain without a gas cost); names the pool and field."""


def to_cent_grid(limits: np.ndarray) -> np.ndarray:
    """Limits on the cent grid, rounded up: money moves in cents, so a limit of 20,000.006 USD
    admits 20,000.01 (and a holding rounded to the cent never breaks the limit it was placed at)."""
    return np.ceil(np.round(limits * 100.0, 6)) / 100.0


def to_cents(value: float | Decimal | str) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_EVEN)


# ------------------------------------------------------------------ holdings


@dataclass(frozen=True)
class Holdings:
    """USD held per pool at the start of the day, and idle cash (yesterday's yield lands here)."""

    positions: Mapping[str, Decimal]
    idle_usd: Decimal = Decimal("0")

    @classmethod
    def idle(cls, capital_usd: float | Decimal) -> Holdings:
        return cls(positions={}, idle_usd=to_cents(capital_usd))

    @property
    def total_usd(self) -> Decimal:
        return self.idle_usd + sum(self.positions.values(), Decimal("0"))

    def held(self) -> dict[str, Decimal]:
        return {p: a for p, a in sorted(self.positions.items()) if a > 0}

    def as_records(self) -> list[dict[str, str]]:
        rows = [{"pool": p, "amount_usd": str(a)} for p, a in self.held().items()]
        rows.append({"pool": IDLE, "amount_usd": str(self.idle_usd)})
        return rows


# ------------------------------------------------------------------ tokens, groups, eligibility


def pool_tokens(
    symbol: str, underlying: Iterable[str] | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A pool's tokens: symbol parts (upper-case) and underlying addresses (lower-case)."""
    parts = tuple(p.strip().upper() for p in str(symbol).split("-") if p.strip())
    if underlying is None or isinstance(underlying, float | str):  # null, NaN, or a bare string
        underlying = (underlying,) if isinstance(underlying, str) else ()
    addresses = tuple(str(a).strip().lower() for a in underlying if str(a).strip())
    return parts, addresses


def _flag(value: object) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return bool(value)


def pool_group(row: Mapping[str, object], overrides: Mapping[str, int]) -> int:
    """Group 1: stable, single exposure, no IL; group 3: IL risk; group 2: the rest (MODEL.md)."""
    pool = str(row["pool"])
    if pool in overrides:
        return int(overrides[pool])
    il_risk = str(row.get("ilRisk") or "").strip().lower() == "yes"
    if il_risk:
        return 3
    single = str(row.get("exposure") or "").strip().lower() == "single"
    if _flag(row.get("stablecoin")) and single:
        return 1
    return 2


@dataclass(frozen=True)
class ListIndex:
    """The dynamic lists prepared for matching by symbol (upper) or address (lower).

    `verdicts` memoises the token and protocol rules per (symbol, underlying tokens, project):
    pools repeat from day to day, so a backfill parses and matches each pool's tokens once.
    """

    approved: frozenset[str]
    blacklisted: frozenset[str]
    icebox: frozenset[str]
    protocols: frozenset[str]
    verdicts: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def of(cls, lists: DynamicLists) -> ListIndex:
        def norm(values: Iterable[str]) -> frozenset[str]:
            out: set[str] = set()
            for v in values:
                out.add(v.upper())
                out.add(v.lower())
            return frozenset(out)

        return cls(
            approved=norm(lists.approved_tokens),
            blacklisted=norm(lists.blacklisted_tokens),
            icebox=norm(lists.icebox_tokens),
            protocols=frozenset(p.lower() for p in lists.approved_protocols),
        )


@lru_cache(maxsize=16)
def _list_index(lists: DynamicLists) -> ListIndex:
    """One `ListIndex` (and its verdict cache) per distinct set of lists."""
    return ListIndex.of(lists)


def _underlying_key(underlying: object) -> object:
    """A hashable stand-in for `underlyingTokens` that `pool_tokens` reads the same way."""
    if underlying is None or isinstance(underlying, float):  # null or NaN: no addresses
        return None
    if isinstance(underlying, str | tuple):
        return underlying
    return tuple(underlying)  # type: ignore[call-overload]


@lru_cache(maxsize=65536)
def _cached_pool_tokens(symbol: str, underlying: object) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return pool_tokens(symbol, underlying)  # type: ignore[arg-type]


def _token_reason(
    parts: tuple[str, ...], addresses: tuple[str, ...], symbol: str, project: str, index: ListIndex
) -> str | None:
    """The token and protocol rules of eligibility (the first one broken), or None."""
    for token in parts + addresses:
        if token in index.blacklisted:
            return f"token {token} is blacklisted"
    for token in parts + addresses:
        if token in index.icebox:
            return f"token {token} is in the icebox"
    if project.lower() not in index.protocols:
        return f"protocol {project} is not approved"
    symbols_ok = bool(parts) and all(p in index.approved for p in parts)
    addresses_ok = bool(addresses) and all(a in index.approved for a in addresses)
    if not (symbols_ok or addresses_ok):
        missing = [p for p in parts if p not in index.approved] or list(parts)
        return f"token {', '.join(missing) or symbol} is not approved"
    return None


def _token_verdict(symbol: str, underlying: object, project: str, index: ListIndex) -> str | None:
    """`_token_reason` for one pool, memoised in the index per (symbol, underlying, project)."""
    try:
        key = (symbol, _underlying_key(underlying), project)
        return index.verdicts[key]
    except KeyError:
        parts, addresses = _cached_pool_tokens(symbol, key[1])
        verdict = index.verdicts[key] = _token_reason(parts, addresses, symbol, project, index)
        return verdict
    except TypeError:  # unhashable tokens: no memo
        parts, addresses = pool_tokens(symbol, underlying)  # type: ignore[arg-type]
        return _token_reason(parts, addresses, symbol, project, index)


def _tvl_reason(tvl: float, params: AllocationParameters) -> str | None:
    if not math.isfinite(tvl) or tvl <= 0:
        return f"TVL {tvl} is not finite and positive"
    if tvl < params.min_tvl_usd:
        return f"TVL {tvl:,.0f} USD is below min_tvl_usd {params.min_tvl_usd:,.0f}"
    return None


def ineligibility_reason(
    row: Mapping[str, object], index: ListIndex, params: AllocationParameters
) -> str | None:
    """Why a pool is not eligible (the first rule it breaks), or None when it is eligible."""
    parts, addresses = pool_tokens(str(row["symbol"]), row.get("underlyingTokens"))  # type: ignore[arg-type]
    reason = _token_reason(parts, addresses, str(row["symbol"]), str(row["project"]), index)
    if reason is not None:
        return reason
    reason = _tvl_reason(_num(row.get("tvlUsd")), params)
    if reason is not None:
        return reason
    apy = effective_apy(row)
    if not math.isfinite(apy[0]):
        return "no finite APY"
    return None


def _num(value: object) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def effective_apy(row: Mapping[str, object], suffix: str = "") -> tuple[float, float, float]:
    """(apy, apyBase, apyReward) with MODEL.md's null rules: a null part is 0 when the other exists."""
    base = _num(row.get(f"apyBase{suffix}"))
    reward = _num(row.get(f"apyReward{suffix}"))
    apy = _num(row.get(f"apy{suffix}"))
    if math.isnan(base) and math.isnan(reward):
        if math.isnan(apy):
            return (math.nan, math.nan, math.nan)
        return (apy, apy, 0.0)
    base = 0.0 if math.isnan(base) else base
    reward = 0.0 if math.isnan(reward) else reward
    if math.isnan(apy):
        apy = base + reward
    return (apy, base, reward)


def _numbers(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column as floats, read as `_num` reads one value (NaN when the column is absent)."""
    if name not in frame.columns:
        return np.full(len(frame), math.nan)
    column = frame[name]
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "fiub":
        return column.to_numpy(dtype=float, copy=True)
    return np.array([_num(v) for v in column.tolist()], dtype=float).reshape(len(frame))


def effective_apy_columns(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`effective_apy` of every row at once: arrays (apy, apyBase, apyReward)."""
    base = _numbers(frame, "apyBase")
    reward = _numbers(frame, "apyReward")
    apy = _numbers(frame, "apy")
    no_parts = np.isnan(base) & np.isnan(reward)
    base0 = np.where(np.isnan(base), 0.0, base)
    reward0 = np.where(np.isnan(reward), 0.0, reward)
    apy_out = np.where(no_parts | ~np.isnan(apy), apy, base0 + reward0)
    base_out = np.where(no_parts, apy, base0)
    reward_out = np.where(no_parts, np.where(np.isnan(apy), math.nan, 0.0), reward0)
    return apy_out, base_out, reward_out


def _is_yes(value: object) -> bool:
    return str(value or "").strip().lower() == "yes"


def _is_single(value: object) -> bool:
    return str(value or "").strip().lower() == "single"


def _groups(
    frame: pd.DataFrame, rows: np.ndarray, pool_ids: np.ndarray, overrides: Mapping[str, int]
) -> np.ndarray:
    """`pool_group` of the given rows of `frame` (a missing flag column counts as false)."""

    def values(name: str) -> list[object]:
        if name not in frame.columns:
            return [None] * len(rows)
        return frame[name].to_numpy()[rows].tolist()

    out = []
    for pool, il, exposure, stable in zip(
        pool_ids.tolist(), values("ilRisk"), values("exposure"), values("stablecoin"), strict=True
    ):
        if pool in overrides:
            out.append(int(overrides[pool]))
        elif _is_yes(il):
            out.append(3)
        elif _flag(stable) and _is_single(exposure):
            out.append(1)
        else:
            out.append(2)
    return np.array(out, dtype=int)


# ------------------------------------------------------------------ the problem


@dataclass(frozen=True)
class ForcedExit:
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
    horizon_days: int
    group_caps_usd: tuple[float, float, float]
    min_pools: int
    min_position_usd: float
    yield_model: str
    mode: str = "full"
    forced_exits: tuple[ForcedExit, ...] = ()
    presolve_removed: int = 0
    presolve_note: str = ""

    @property
    def n(self) -> int:
        return len(self.pool_ids)

    @property
    def is_held(self) -> np.ndarray:
        return self.held > 0

    @property
    def exit_gas_usd(self) -> float:
        return float(sum(e.gas_usd for e in self.forced_exits))

    @property
    def needs_integers(self) -> bool:
        """Selection binaries matter when a minimum, min_pools or a fixed gas cost is present."""
        return self.min_pools > 0 or self.min_position_usd > 0 or bool(np.any(self.gas > 0))

    def reward_emission_per_day(self) -> np.ndarray:
        """Diluted model: the pool's reward emission in USD per day, shared pro rata."""
        return self.apy_reward * self.tvl / DAYS_PER_YEAR_PCT

    def others_tvl(self) -> np.ndarray:
        """Diluted model: TVL that is not ours (at least 1 USD, so the share is defined)."""
        return np.maximum(self.tvl - self.held, 1.0)

    def linear_rate(self) -> np.ndarray:
        return self.apy / DAYS_PER_YEAR_PCT

    def yield_only(self) -> Problem:
        """The same problem with x_i >= h_i for every eligible held pool."""
        return replace(self, lower=self.held.copy(), mode="yield-only")

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
    frame = universe
    if not frame["pool"].is_monotonic_increasing:
        frame = frame.sort_values("pool", kind="stable")
    frame = frame.reset_index(drop=True)
    if frame["pool"].duplicated().any():
        dup = frame.loc[frame["pool"].duplicated(), "pool"].iloc[0]
        raise ModelInputError(f"pool {dup!r} appears twice in the pool universe")
    index = _list_index(lists)
    size = len(frame)
    pool_all = frame["pool"].tolist()
    symbol_all = frame["symbol"].tolist()
    project_all = frame["project"].tolist()
    underlying_all = (
        frame["underlyingTokens"].tolist() if "underlyingTokens" in frame.columns else [None] * size
    )
    tvl_now = _numbers(frame, "tvlUsd")
    apy_now, base_now, reward_now = effective_apy_columns(frame)
    reasons: dict[str, str] = {}
    eligible_mask = np.zeros(size, dtype=bool)
    tvl_list = tvl_now.tolist()
    apy_ok = np.isfinite(apy_now).tolist()
    for i in range(size):
        symbol = str(symbol_all[i])
        reason = _token_verdict(symbol, underlying_all[i], str(project_all[i]), index)
        if reason is None:
            reason = _tvl_reason(tvl_list[i], params)
            if reason is None and not apy_ok[i]:
                reason = "no finite APY"
        if reason is None:
            eligible_mask[i] = True
        else:
            reasons[str(pool_all[i])] = reason

    held_map = {p: float(a) for p, a in holdings.held().items()}
    total = float(holdings.total_usd)

    # Held pools that are not eligible (or have vanished from the data) must be exited.
    position = {str(p): i for i, p in enumerate(pool_all)}
    chain_all = frame["chain"].tolist()
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

    rows = np.flatnonzero(eligible_mask)
    n = len(rows)
    apy = _forecast_or_current(frame, "apy_forecast", apy_now)[rows]
    base = _forecast_or_current(frame, "apy_base_forecast", base_now)[rows]
    reward = _forecast_or_current(frame, "apy_reward_forecast", reward_now)[rows]
    tvl_current = tvl_now[rows]
    tvl = _forecast_or_current(frame, "tvl_forecast", tvl_now)[rows]
    tvl = np.where(np.isfinite(tvl) & (tvl > 0), tvl, tvl_current)
    for arr in (apy, base, reward):
        bad = ~np.isfinite(arr)
        arr[bad] = 0.0

    pool_ids = frame["pool"].astype(str).to_numpy()[rows]
    held = np.array([held_map.get(p, 0.0) for p in pool_ids], dtype=float)
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
    upper_cap = np.argmin(caps, axis=0) if n else np.zeros(0, dtype=int)
    upper = to_cent_grid(caps.min(axis=0)) if n else np.zeros(0)
    groups = _groups(frame, rows, pool_ids, params.pool_groups)
    chains = frame["chain"].astype(str).to_numpy()[rows]
    gas_by_chain = {c: params.gas_for(c) for c in set(chains.tolist())}
    for pool, chain in zip(pool_ids, chains, strict=True):
        if gas_by_chain[chain] is None:
            raise ModelInputError(
                f"pool {pool!r}: chain {chain!r} has no gas cost in gas_usd and there is no 'default'"
            )
    gas = np.array([float(gas_by_chain[c]) for c in chains.tolist()], dtype=float)  # type: ignore[arg-type]
    symbols = frame["symbol"].astype(str).to_numpy()[rows]
    conv = np.where(
        symbols == params.base_token, 0.0, params.conversion_penalty_bps / 10_000.0
    ).astype(float)
    problem = Problem(
        pool_ids=pool_ids,
        chain=chains,
        project=frame["project"].astype(str).to_numpy()[rows],
        symbol=symbols,
        group=groups,
        apy=apy,
        apy_base=base,
        apy_reward=reward,
        tvl=tvl,
        held=held,
        upper=upper,
        upper_cap=upper_cap,
        lower=np.zeros(n),
        gas=gas,
        conversion_rate=conv,
        total_usd=total,
        horizon_days=params.cost_horizon_days,
        group_caps_usd=tuple(
            float(to_cent_grid(np.array([g * total]))[0]) for g in params.group_caps()
        ),  # type: ignore[arg-type]
        min_pools=params.min_pools,
        min_position_usd=params.min_position_usd,
        yield_model=params.yield_model,
        forced_exits=tuple(exits),
    )
    return problem, reasons


# ------------------------------------------------------------------ evaluation


def daily_yield(problem: Problem, x: np.ndarray) -> np.ndarray:
    """Daily yield per pool of amounts `x` under the problem's yield model (exact)."""
    if problem.yield_model == "linear":
        return x * problem.apy / DAYS_PER_YEAR_PCT
    base = x * problem.apy_base / DAYS_PER_YEAR_PCT
    others = problem.others_tvl()
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(x > 0, x / (others + x), 0.0)
    return base + problem.reward_emission_per_day() * share


def moved(problem: Problem, x: np.ndarray) -> np.ndarray:
    """Pools whose amount changes (to the cent): each pays gas."""
    return np.abs(np.round(x, 2) - np.round(problem.held, 2)) >= 0.005


@dataclass(frozen=True)
class Evaluation:
    """An allocation scored with MODEL.md's own formulas (not a solver's number)."""

    yield_per_pool: np.ndarray
    gas_per_pool: np.ndarray
    conversion_per_pool: np.ndarray
    exit_gas_usd: float
    daily_yield_usd: float
    gas_usd: float
    conversion_usd: float
    costs_usd: float
    objective_usd_per_day: float
    horizon_value_usd: float  # H * Y - C: what the rebalance decision compares


def evaluate(problem: Problem, x: np.ndarray) -> Evaluation:
    y = daily_yield(problem, x)
    gas = np.where(moved(problem, x), problem.gas, 0.0)
    conv = problem.conversion_rate * np.maximum(0.0, x - problem.held)
    gas_total = float(gas.sum()) + problem.exit_gas_usd
    conv_total = float(conv.sum())
    costs = gas_total + conv_total
    y_total = float(y.sum())
    return Evaluation(
        yield_per_pool=y,
        gas_per_pool=gas,
        conversion_per_pool=conv,
        exit_gas_usd=problem.exit_gas_usd,
        daily_yield_usd=y_total,
        gas_usd=gas_total,
        conversion_usd=conv_total,
        costs_usd=costs,
        objective_usd_per_day=y_total - costs / problem.horizon_days,
        horizon_value_usd=problem.horizon_days * y_total - costs,
    )


@dataclass(frozen=True)
class Violation:
    constraint: str
    detail: str


def violations(problem: Problem, x: np.ndarray, tol_usd: float = 0.02) -> list[Violation]:
    """Every constraint 1-7 that `x` breaks (used by tests and by the asset checks)."""
    out: list[Violation] = []
    total = problem.total_usd
    if abs(float(x.sum()) - total) > tol_usd:
        out.append(Violation("full_allocation", f"sum {x.sum():.2f} != T {total:.2f}"))
    for i in np.flatnonzero(x < -tol_usd):
        out.append(Violation("non_negative", f"{problem.pool_ids[i]}: {x[i]:.2f}"))
    for i in np.flatnonzero(x > problem.upper + tol_usd):
        out.append(
            Violation(
                CAP_NAMES[int(problem.upper_cap[i])],
                f"{problem.pool_ids[i]}: {x[i]:,.2f} > limit {problem.upper[i]:,.2f}",
            )
        )
    for i in np.flatnonzero(x < problem.lower - tol_usd):
        out.append(
            Violation(
                "yield_only", f"{problem.pool_ids[i]}: {x[i]:,.2f} < held {problem.lower[i]:,.2f}"
            )
        )
    selected = x > tol_usd
    if problem.min_position_usd > 0:
        for i in np.flatnonzero(selected & (x < problem.min_position_usd - tol_usd)):
            out.append(
                Violation(
                    "min_position_usd",
                    f"{problem.pool_ids[i]}: {x[i]:,.2f} < {problem.min_position_usd:,.2f}",
                )
            )
    if problem.min_pools > 0 and int(selected.sum()) < problem.min_pools:
        out.append(
            Violation("min_pools", f"{int(selected.sum())} pools < min_pools={problem.min_pools}")
        )
    for k in (1, 2, 3):
        s = float(x[problem.group == k].sum())
        cap = problem.group_caps_usd[k - 1]
        if s > cap + tol_usd:
            out.append(Violation(f"group{k}_max_pct", f"group {k} holds {s:,.2f} > cap {cap:,.2f}"))
    return out


# ------------------------------------------------------------------ infeasibility


def diagnose(problem: Problem) -> list[str]:
    """The constraints that conflict, in a treasurer's words (empty when no simple rule explains it)."""
    out: list[str] = []
    total = problem.total_usd
    n = problem.n
    if total <= 0:
        out.append("there is no capital to allocate (the holdings and idle cash add up to 0)")
        return out
    if n == 0:
        out.append(f"no pool is eligible, so {total:,.2f} USD cannot be placed")
        return out
    group_frac = sum(problem.group_caps_usd) / total
    present = {int(g) for g in problem.group}
    reachable_groups = sum(problem.group_caps_usd[k - 1] for k in present)
    if group_frac < 1 - 1e-12:
        out.append(
            f"group caps sum to {group_frac:.4g} < 1, so the capital cannot be fully allocated"
        )
    elif reachable_groups < total - 0.005:
        missing = sorted({1, 2, 3} - present)
        out.append(
            f"no eligible pool in group(s) {missing}; the caps of the remaining groups sum to "
            f"{reachable_groups / total:.4g} < 1"
        )
    cap_total = float(problem.upper.sum())
    if cap_total < total - 0.005:
        out.append(
            f"the per-pool limits of the {n} eligible pools allow at most {cap_total:,.2f} USD "
            f"of the {total:,.2f} USD to place (tvl_limit_percentage, position limits, max_alloc_percentage)"
        )
    else:
        reach = sum(
            min(problem.group_caps_usd[k - 1], float(problem.upper[problem.group == k].sum()))
            for k in (1, 2, 3)
        )
        if reach < total - 0.005 and group_frac >= 1 - 1e-12:
            out.append(
                f"group caps together with the per-pool limits allow at most {reach:,.2f} USD "
                f"of the {total:,.2f} USD"
            )
    m = problem.min_position_usd
    if problem.min_pools > 0:
        can_hold = int(np.sum(problem.upper >= m - 1e-9))
        if problem.min_pools > n:
            out.append(f"min_pools={problem.min_pools} but only {n} pools are eligible")
        elif problem.min_pools > can_hold:
            out.append(
                f"min_pools={problem.min_pools} but only {can_hold} eligible pools can hold "
                f"min_position_usd={m:,.2f}"
            )
        if problem.min_pools * m > total + 0.005:
            out.append(
                f"min_pools x min_position_usd = {problem.min_pools * m:,.2f} USD exceeds the "
                f"capital of {total:,.2f} USD"
            )
    if problem.mode == "yield-only":
        over = np.flatnonzero(problem.held > problem.upper + 0.005)
        for i in over:
            out.append(
                f"held pool {problem.pool_ids[i]} ({problem.symbol[i]}) holds {problem.held[i]:,.2f} USD, "
                f"above its limit of {problem.upper[i]:,.2f} USD ({CAP_NAMES[int(problem.upper_cap[i])]})"
            )
        for k in (1, 2, 3):
            s = float(problem.held[problem.group == k].sum())
            if s > problem.group_caps_usd[k - 1] + 0.005:
                out.append(
                    f"held pools of group {k} hold {s:,.2f} USD, above the group{k}_max_pct cap"
                )
        if m > 0:
            small = np.flatnonzero((problem.held > 0) & (problem.held < m - 0.005))
            for i in small:
                out.append(
                    f"held pool {problem.pool_ids[i]} holds {problem.held[i]:,.2f} USD, below min_position_usd"
                )
    return out


# ------------------------------------------------------------------ presolve


def presolve_dominated(problem: Problem) -> tuple[Problem, np.ndarray]:
    """Remove pools that provably hold nothing in some optimal solution (linear model only).

    Pools with the same group and gas cost compete only through their net daily rate
    r = apy/36500 - conversion/H and their cap U. Pool j is dominated by i when r_i >= r_j and
    U_i >= U_j (ties broken by rank). If j has at least `min_pools` dominators whose caps sum to
    at least the most its group can take, G = min(T, group cap), then an optimal solution
    exists that does not select j: take an optimal solution maximising the amount in better
    ranked pools; if it selected j, either a dominator is unselected (swap j for it), or one has
    room (move j's money there; with all dominators at cap their caps would sum below G), or j
    sits at min_position_usd and can be dropped into the dominators' room (at least `min_pools`
    others stay selected). Each step is feasible, weakly better and moves money up the ranking,
    a contradiction. Held pools are never removed. Returns the reduced problem and the keep mask.
    """
    n = problem.n
    keep = np.ones(n, dtype=bool)
    if problem.yield_model != "linear" or n == 0:
        return problem, keep
    rate = problem.linear_rate() - problem.conversion_rate / problem.horizon_days
    held = problem.is_held | (problem.lower > 0)
    total = problem.total_usd
    need_count = problem.min_pools
    for k in (1, 2, 3):
        budget = min(total, problem.group_caps_usd[k - 1])
        in_group = (problem.group == k) & ~held
        for gas_value in np.unique(problem.gas[in_group]):
            members = np.flatnonzero(in_group & (problem.gas == gas_value))
            if len(members) <= need_count:
                continue
            # rank order: rate desc, cap desc, pool id asc (ids are sorted, so index asc)
            order = members[np.lexsort((members, -problem.upper[members], -rate[members]))]
            caps = problem.upper[order]
            # Fenwick tree over caps ranked descending: count and sum of inserted caps >= U_j
            cap_rank = np.argsort(np.argsort(-caps, kind="stable"), kind="stable")
            # equal caps must count as ">=": map each cap to the last position of its equal run
            sorted_caps = -np.sort(-caps)
            last_pos = np.searchsorted(-sorted_caps, -caps, side="right") - 1
            size = len(order)
            bit_count = [0] * (size + 1)
            bit_sum = [0.0] * (size + 1)
            caps_list = caps.tolist()
            for pos in range(size):
                # query prefix [0 .. last_pos[pos]] of the descending-cap order
                i = int(last_pos[pos]) + 1
                count = 0
                s = 0.0
                while i > 0:
                    count += bit_count[i]
                    s += bit_sum[i]
                    i -= i & -i
                if count >= need_count and s >= budget and count > 0:
                    keep[order[pos]] = False
                i = int(cap_rank[pos]) + 1
                c = caps_list[pos]
                while i <= size:
                    bit_count[i] += 1
                    bit_sum[i] += c
                    i += i & -i
    removed = int(n - keep.sum())
    if removed == 0:
        return problem, keep
    reduced = problem.subset(keep)
    note = (
        f"dominance presolve removed {removed} of {n} pools (same group and gas, lower net rate "
        f"and cap than at least min_pools={problem.min_pools} pools that can absorb the group's budget); exact"
    )
    return replace(reduced, presolve_removed=removed, presolve_note=note), keep


def polish(problem: Problem, x: np.ndarray) -> np.ndarray:
    """Snap a solver's answer onto the feasible set: bounds, group caps and the exact total.

    Solvers return amounts to their feasibility tolerance (1e-7 of T is 1 USD on 10 M USD).
    Only pools already selected and not left untouched are adjusted, by at most that tolerance,
    so the selection, and with it every fixed cost, is unchanged.
    """
    x = np.clip(np.asarray(x, dtype=float), problem.lower, problem.upper)
    untouched = problem.is_held & (np.abs(x - problem.held) < 0.005)
    movable = (x > 0) & ~untouched
    for k in (1, 2, 3):
        members = (problem.group == k) & movable
        excess = float(x[problem.group == k].sum()) - problem.group_caps_usd[k - 1]
        if excess > 0 and members.any():
            room = x[members] - np.maximum(problem.lower[members], problem.min_position_usd)
            take = np.minimum(room, excess * room / max(room.sum(), 1e-12))
            x[members] -= take
    for _ in range(3):
        residual = problem.total_usd - float(x.sum())
        if abs(residual) < 1e-9:
            break
        if residual > 0:
            group_room = {
                k: problem.group_caps_usd[k - 1] - float(x[problem.group == k].sum())
                for k in (1, 2, 3)
            }
            room = np.where(movable, problem.upper - x, 0.0)
            room = np.minimum(room, [max(group_room[int(g)], 0.0) for g in problem.group])
        else:
            room = np.where(movable, x - np.maximum(problem.lower, problem.min_position_usd), 0.0)
        room = np.clip(room, 0.0, None)
        if room.sum() <= 0:
            break
        x += np.sign(residual) * np.minimum(room, abs(residual) * room / room.sum())
    return x


@dataclass
class BindingLimit:
    """A limit that binds at the optimum, with its shadow price from the continuous solve."""

    limit: str
    scope: str
    value_usd: float
    shadow_price_usd_per_day_per_usd: float
    shadow_price_usd_per_day_per_pct: float | None = None
    description: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "limit": self.limit,
            "scope": self.scope,
            "value_usd": round(self.value_usd, 2),
            "shadow_price_usd_per_day_per_usd": self.shadow_price_usd_per_day_per_usd,
            "shadow_price_usd_per_day_per_pct": self.shadow_price_usd_per_day_per_pct,
            "description": self.description,
        }


@dataclass
class ExactnessNote:
    part: str
    treatment: str
    exact: bool

    def as_dict(self) -> dict[str, object]:
        return {"part": self.part, "treatment": self.treatment, "exact": self.exact}


class SolveStatus(StrEnum):
    """How a solve ended; also the stored status of a day's allocation (`asset_allocations`).

    `feasible`: a time limit stopped the search with a usable, not proven optimal, answer.
    """

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    FAILED = "failed"

    @property
    def has_solution(self) -> bool:
        return self in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


@dataclass
class SolveOutcome:
    """What a backend returns for one problem: amounts in USD for `problem.pool_ids`."""

    status: SolveStatus
    x: np.ndarray | None
    backend: str
    solve_seconds: float
    exactness: list[ExactnessNote] = field(default_factory=list)
    message: str = ""
    bound_usd_per_day: float | None = None
