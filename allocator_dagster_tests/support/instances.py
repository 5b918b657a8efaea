"""Small random pool universes, lists, parameters and holdings for the allocation tests.

Everything here is built from MODEL.md's input shapes (DefiLlama column names), never from the
code under test, so tests can use it to state what the model should do with a given input.

- `random_universe(rng, n, ...)`: a DataFrame of `n` pools in DefiLlama's yields shape, with the
  forecast columns; every pool is eligible under `default_lists_for(universe)` and the default
  `min_tvl_usd` unless asked otherwise.
- `pool_row(...)` / `universe_of(rows)`: one hand-written pool with sensible defaults.
- `default_lists_for(universe)`: lists approving every token and protocol of the universe.
- `idle(total)`, `holdings_of({pool: usd}, idle_usd)`, `random_holdings(rng, universe, ...)`.
- `params(**overrides)` and `random_params(rng, ...)`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from allocator_dagster.model import Holdings
from allocator_dagster.money import to_cents
from allocator_dagster.parameters import AllocationParameters, DynamicLists
from allocator_dagster.sources.records import FORECAST_COLUMNS, POOL_COLUMNS

# every column of the pool data, DefiLlama's and the forecasts (one definition: sources.records)
COLUMNS = (*POOL_COLUMNS, *FORECAST_COLUMNS)

STABLES = ("USDC", "USDT", "DAI", "FRAX", "USDE", "PYUSD")
VOLATILE = ("WETH", "WBTC", "WSTETH", "ARB", "OP")
CHAINS = ("Ethereum", "Arbitrum", "Base")
PROJECTS = ("aave-v3", "compound-v3", "morpho-blue", "curve-dex", "uniswap-v3", "fluid-lending")


def token_address(symbol: str) -> str:
    """A deterministic EVM-looking address for a token symbol, in mixed (checksum-like) case."""
    digest = hashlib.sha256(symbol.upper().encode()).hexdigest()[:40]
    mixed = "".join(c.upper() if i % 3 == 0 and c.isalpha() else c for i, c in enumerate(digest))
    return "0x" + mixed


def pool_row(
    pool: str,
    *,
    symbol: str = "USDC",
    chain: str = "Ethereum",
    project: str = "aave-v3",
    tvl: float | None = 50_000_000.0,
    apy: float | None = 5.0,
    apy_base: float | None = None,
    apy_reward: float | None = None,
    stablecoin: Any = True,
    il_risk: Any = "no",
    exposure: Any = "single",
    underlying: Sequence[str] | None = None,
    forecast: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """One pool record in DefiLlama's shape. `apy_base` defaults to `apy` (no reward)."""
    if apy_base is None and apy_reward is None and apy is not None:
        apy_base, apy_reward = apy, 0.0
    if underlying is None:
        underlying = tuple(token_address(p) for p in symbol.split("-") if p)
    row: dict[str, Any] = {
        "pool": pool,
        "chain": chain,
        "project": project,
        "symbol": symbol,
        "underlyingTokens": tuple(underlying),
        "tvlUsd": tvl,
        "apy": apy,
        "apyBase": apy_base,
        "apyReward": apy_reward,
        "stablecoin": stablecoin,
        "ilRisk": il_risk,
        "exposure": exposure,
    }
    if forecast:
        row.update(
            {
                "apy_forecast": apy,
                "apy_base_forecast": apy_base,
                "apy_reward_forecast": apy_reward,
                "tvl_forecast": tvl,
            }
        )
    row.update(extra)
    return row


def universe_of(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A universe DataFrame from records (object columns keep None and tuples as given)."""
    rows = [dict(r) for r in rows]
    cols = [c for c in COLUMNS if any(c in r for r in rows)]
    cols += sorted({k for r in rows for k in r} - set(cols))
    data = {c: pd.Series([r.get(c) for r in rows], dtype=object) for c in cols}
    frame = pd.DataFrame(data)
    for c in ("tvlUsd", "apy", "apyBase", "apyReward", *FORECAST_COLUMNS):
        if c in frame.columns:
            frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    return frame


def random_universe(
    rng: np.random.Generator,
    n: int,
    *,
    chains: Sequence[str] = CHAINS,
    projects: Sequence[str] = PROJECTS,
    tvl_range: tuple[float, float] = (2e6, 5e8),
    apy_range: tuple[float, float] = (0.5, 15.0),
    reward_share: float = 0.4,
    p_pair: float = 0.3,
    p_volatile: float = 0.3,
    p_il: float = 0.2,
    forecast: bool = True,
    forecast_noise: float = 0.2,
    id_prefix: str = "p",
) -> pd.DataFrame:
    """`n` eligible-looking pools with ids `{id_prefix}000..`, random groups, rates and TVLs.

    About `reward_share` of the pools earn part of their APY as reward. Forecast columns differ
    from the current values by up to `forecast_noise` (relative) when `forecast` is set.
    """
    rows = []
    lo_tvl, hi_tvl = np.log(tvl_range[0]), np.log(tvl_range[1])
    for i in range(n):
        volatile = rng.random() < p_volatile
        pool_tokens = VOLATILE if volatile else STABLES
        if rng.random() < p_pair:
            a, b = rng.choice(len(pool_tokens), size=2, replace=False)
            symbol = f"{pool_tokens[a]}-{pool_tokens[b]}"
            exposure = "multi"
        else:
            symbol = pool_tokens[int(rng.integers(len(pool_tokens)))]
            exposure = "single"
        il_draw = rng.random()
        il = "yes" if il_draw < (p_il * 3 if exposure == "multi" else p_il / 4) else "no"
        tvl = float(np.exp(rng.uniform(lo_tvl, hi_tvl)))
        apy = float(rng.uniform(*apy_range))
        reward = float(apy * rng.uniform(0.1, 0.9)) if rng.random() < reward_share else 0.0
        base = apy - reward
        row = pool_row(
            f"{id_prefix}{i:03d}",
            symbol=symbol,
            chain=str(chains[int(rng.integers(len(chains)))]),
            project=str(projects[int(rng.integers(len(projects)))]),
            tvl=round(tvl, 2),
            apy=apy,
            apy_base=base,
            apy_reward=reward,
            stablecoin=not volatile,
            il_risk=il,
            exposure=exposure,
            forecast=False,
        )
        if forecast:
            f_base = base * float(1 + rng.uniform(-forecast_noise, forecast_noise))
            f_reward = reward * float(1 + rng.uniform(-forecast_noise, forecast_noise))
            row.update(
                {
                    "apy_forecast": f_base + f_reward,
                    "apy_base_forecast": f_base,
                    "apy_reward_forecast": f_reward,
                    "tvl_forecast": round(
                        tvl * float(1 + rng.uniform(-forecast_noise, forecast_noise)), 2
                    ),
                }
            )
        rows.append(row)
    return universe_of(rows)


def tokens_of(universe: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(symbol parts, underlying addresses) of every pool of the universe, as written."""
    symbols: set[str] = set()
    addresses: set[str] = set()
    for _, row in universe.iterrows():
        symbols.update(p for p in str(row["symbol"]).split("-") if p)
        underlying = row.get("underlyingTokens")
        if isinstance(underlying, (list, tuple)):
            addresses.update(str(a) for a in underlying)
    return sorted(symbols), sorted(addresses)


def default_lists_for(
    universe: pd.DataFrame,
    *,
    blacklisted: Iterable[str] = (),
    icebox: Iterable[str] = (),
    extra_tokens: Iterable[str] = (),
) -> DynamicLists:
    """Lists that approve every token symbol and every protocol of `universe`."""
    symbols, _ = tokens_of(universe)
    return DynamicLists(
        approved_tokens=[*symbols, *extra_tokens],
        blacklisted_tokens=list(blacklisted),
        approved_protocols=sorted({str(p) for p in universe["project"]}),
        icebox_tokens=list(icebox),
    )


# ------------------------------------------------------------------ parameters


def params(**overrides: Any) -> AllocationParameters:
    """Parameters with test-friendly defaults (no minimum pools/position), overridable."""
    base: dict[str, Any] = {
        "min_pools": 0,
        "min_position_usd": 0.0,
        "min_tvl_usd": 1_000_000.0,
        "min_improvement_bps": 0.0,  # turnover control off unless a test is about it
        "min_withdrawal_pct": 0.0,
        "limit_drift_pct": 0.0,
        "forecast_credibility": 1.0,  # the forecast is believed whole unless a test is about it
    }
    base.update(overrides)
    return AllocationParameters(**base)


def random_params(
    rng: np.random.Generator, total_usd: float, n: int, **overrides: Any
) -> AllocationParameters:
    """Random but mostly-feasible parameters for a universe of `n` pools and capital `total_usd`."""
    profit = bool(rng.random() < 0.4)
    min_pools = int(rng.integers(0, min(6, n) + 1)) if rng.random() < 0.5 else 0
    min_position = 0.0
    if min_pools > 0 or rng.random() < 0.3:
        min_position = float(round(total_usd * rng.uniform(0.005, 0.15), 2))
    gas_mode = rng.random()
    if gas_mode < 0.25:
        gas = {"default": 0.0}
    elif gas_mode < 0.5:
        gas = {"default": float(round(rng.uniform(0, 30), 2))}
    else:
        gas = {
            "default": 2.0,
            "Ethereum": float(round(rng.uniform(0, 60), 2)),
            "Arbitrum": float(round(rng.uniform(0, 2), 2)),
            "Base": float(round(rng.uniform(0, 1), 2)),
        }
    values: dict[str, Any] = {
        "tvl_limit_percentage": float(rng.choice([0.01, 0.02, 0.05, 0.1, 0.2])),
        "position_max_pct_pool_tvl": float(rng.choice([0.02, 0.05, 0.1, 0.3])),
        "position_max_pct_total_assets": float(rng.choice([0.15, 0.25, 0.4, 0.6, 1.0])),
        "max_alloc_percentage": float(rng.choice([0.1, 0.2, 0.3, 0.5])),
        "profit_optimization": profit,
        "min_pools": min_pools,
        "min_position_usd": min_position,
        "group1_max_pct": float(rng.choice([0.3, 0.6, 1.0])),
        "group2_max_pct": float(rng.choice([0.2, 0.5, 1.0])),
        "group3_max_pct": float(rng.choice([0.0, 0.1, 0.2, 0.5])),
        "gas_usd": gas,
        "base_token": "USDC",
        "conversion_penalty_bps": float(rng.choice([0.0, 0.0, 5.0, 30.0, 200.0])),
        "cost_horizon_days": int(rng.choice([1, 7, 30, 90])),
        "min_improvement_usd": 0.0,
        "min_improvement_bps": 0.0,
        "limit_drift_pct": 0.0,
        "yield_model": "linear",
        "min_tvl_usd": 1_000_000.0,
    }
    values.update(overrides)
    if values["min_pools"] > 0 and values["min_position_usd"] <= 0:
        values["min_position_usd"] = float(round(total_usd * rng.uniform(0.005, 0.15), 2))
    if "min_withdrawal_pct" not in values:  # drawn last: the other draws stay as they were
        # constraint 8 on 3 instances in 5 (it binds only where something is held)
        values["min_withdrawal_pct"] = float(rng.choice([0.0, 0.0, 0.02, 0.1, 0.3]))
    if "limit_drift_pct" not in overrides:  # the no-trade band on the limits, on 2 in 5
        values["limit_drift_pct"] = float(rng.choice([0.0, 0.0, 0.0, 0.1, 0.5]))
    return AllocationParameters(**values)


# ------------------------------------------------------------------ holdings


def idle(total_usd: float | Decimal | str) -> Holdings:
    return Holdings(positions={}, idle_usd=to_cents(total_usd))


def holdings_of(
    positions: Mapping[str, float | Decimal | str], idle_usd: float | Decimal | str = 0
) -> Holdings:
    """Holdings with every amount in exact cents."""
    return Holdings(
        positions={p: to_cents(a) for p, a in positions.items()}, idle_usd=to_cents(idle_usd)
    )


def random_holdings(
    rng: np.random.Generator,
    universe: pd.DataFrame,
    total_usd: float,
    *,
    max_pools: int = 4,
    idle_share: tuple[float, float] = (0.0, 0.5),
    extra_pools: Sequence[str] = (),
) -> Holdings:
    """Capital `total_usd` (in cents) spread over up to `max_pools` random pools plus idle cash.

    `extra_pools` are ids that may be held although they are not in `universe` (vanished pools).
    """
    total_cents = int(round(total_usd * 100))
    candidates = [str(p) for p in universe["pool"]] + list(extra_pools)
    k = int(rng.integers(0, min(max_pools, len(candidates)) + 1))
    chosen = list(rng.choice(candidates, size=k, replace=False)) if k else []
    idle_cents = int(total_cents * rng.uniform(*idle_share)) if k else total_cents
    rest = total_cents - idle_cents
    positions: dict[str, Decimal] = {}
    if chosen:
        cuts = np.sort(rng.integers(0, rest + 1, size=len(chosen) - 1))
        parts = np.diff(np.concatenate([[0], cuts, [rest]])).astype(int)
        for pool, cents in zip(chosen, parts, strict=True):
            if cents > 0:
                positions[str(pool)] = Decimal(int(cents)) / 100
    return Holdings(positions=positions, idle_usd=Decimal(idle_cents) / 100)


def shuffled(universe: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The same universe in another row order (and a fresh index)."""
    order = rng.permutation(len(universe))
    return universe.iloc[order].reset_index(drop=True)
