"""Concentration and risk of what is held on a day, as a treasurer asks about it.

Exposure by protocol, chain and token (shares of the invested capital), the effective number of
positions `1 / sum w_i^2` (10 equal positions: 10; one position: 1), and the APY volatility of
what is held: the standard deviation, over the trailing days, of the daily APY the current
positions would have earned (weights fixed, a pool missing on a day earns 0 that day, as in the
paper ledger). A pool counts fully for each of its tokens, so token shares add up to more than
100 %: "how much of the capital sits in a pool holding USDC". No Dagster import; the backtest
report and the daily allocation's metadata both use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from allocator_dagster.model import pool_tokens
from allocator_dagster.terminal import shown

VOLATILITY_DAYS = 30  # trailing window of the APY volatility
UNKNOWN = "?"  # a held pool whose descriptive fields are not known


@dataclass(frozen=True)
class PoolFacts:
    """What risk reads of a pool: its protocol, chain and tokens (symbol parts)."""

    project: str
    chain: str
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class Concentration:
    """One day's concentration of the invested capital (shares in [0, 1], largest first)."""

    invested_usd: float
    positions: int
    effective_positions: float
    largest_weight: float
    by_protocol: dict[str, float]
    by_chain: dict[str, float]
    by_token: dict[str, float]
    apy_volatility_pct: float | None  # None: fewer than 2 trailing days

    def as_dict(self) -> dict[str, object]:
        return {
            "invested_usd": round(self.invested_usd, 2),
            "positions": self.positions,
            "effective_positions": round(self.effective_positions, 4),
            "largest_weight": round(self.largest_weight, 6),
            "by_protocol": {k: round(v, 6) for k, v in self.by_protocol.items()},
            "by_chain": {k: round(v, 6) for k, v in self.by_chain.items()},
            "by_token": {k: round(v, 6) for k, v in self.by_token.items()},
            "apy_volatility_pct": None
            if self.apy_volatility_pct is None
            else round(self.apy_volatility_pct, 6),
        }


def pool_facts(universe: pd.DataFrame) -> dict[str, PoolFacts]:
    """Each pool of a universe (DefiLlama's shape) as risk reads it."""
    underlying = (
        universe["underlyingTokens"].tolist()
        if "underlyingTokens" in universe.columns
        else [None] * len(universe)
    )
    out = {}
    for pool, project, chain, symbol, tokens in zip(
        universe["pool"].astype(str),
        universe["project"].astype(str),
        universe["chain"].astype(str),
        universe["symbol"].astype(str),
        underlying,
        strict=True,
    ):
        parts, _addresses = pool_tokens(symbol, tokens)
        out[pool] = PoolFacts(project=project, chain=chain, tokens=parts)
    return out


def _shares(amounts: Mapping[str, float], total: float) -> dict[str, float]:
    return dict(
        sorted(((k, v / total) for k, v in amounts.items()), key=lambda kv: (-kv[1], kv[0]))
    )


def concentration(
    positions: Mapping[str, Decimal | float],
    facts: Mapping[str, PoolFacts],
    apy_history: pd.DataFrame | None = None,
) -> Concentration:
    """Concentration of `positions` (USD per pool); `apy_history` (date, pool, apy) holds the
    trailing days for the volatility (None or empty: not measured)."""
    held = {p: float(a) for p, a in sorted(positions.items()) if float(a) > 0}
    total = sum(held.values())
    if total <= 0:
        return Concentration(0.0, 0, 0.0, 0.0, {}, {}, {}, None)
    weights = {p: a / total for p, a in held.items()}
    protocol: dict[str, float] = {}
    chain: dict[str, float] = {}
    token: dict[str, float] = {}
    for pool, amount in held.items():
        fact = facts.get(pool)
        protocol_name = fact.project if fact else UNKNOWN
        chain_name = fact.chain if fact else UNKNOWN
        protocol[protocol_name] = protocol.get(protocol_name, 0.0) + amount
        chain[chain_name] = chain.get(chain_name, 0.0) + amount
        for name in dict.fromkeys(fact.tokens if fact else (UNKNOWN,)):
            token[name] = token.get(name, 0.0) + amount
    squares = sum(w * w for w in weights.values())
    return Concentration(
        invested_usd=total,
        positions=len(held),
        effective_positions=1.0 / squares,
        largest_weight=max(weights.values()),
        by_protocol=_shares(protocol, total),
        by_chain=_shares(chain, total),
        by_token=_shares(token, total),
        apy_volatility_pct=apy_volatility(weights, apy_history),
    )


def apy_volatility(weights: Mapping[str, float], apy_history: pd.DataFrame | None) -> float | None:
    """Standard deviation (percentage points) of sum_i w_i * apy_i,t over the days t of
    `apy_history`; a held pool without a row on a day counts 0 that day."""
    if apy_history is None or apy_history.empty or not weights:
        return None
    rows = apy_history[apy_history["pool"].isin(list(weights))]
    days = pd.Index(sorted(apy_history["date"].unique()))
    if len(days) < 2:
        return None
    apy = pd.to_numeric(rows["apy"], errors="coerce").to_numpy(dtype=float)
    frame = pd.DataFrame({"date": rows["date"].to_numpy(), "pool": rows["pool"].to_numpy()})
    frame["value"] = np.where(np.isfinite(apy), apy, 0.0) * frame["pool"].map(weights).to_numpy()
    series = frame.groupby("date")["value"].sum().reindex(days, fill_value=0.0)
    value = float(np.std(series.to_numpy(), ddof=1))
    return value if math.isfinite(value) else None


def concentration_markdown(result: Concentration, top: int = 5) -> str:
    """A short Markdown summary: effective positions, volatility and the largest exposures."""
    if result.positions == 0:
        return "Nothing is invested."

    def line(name: str, shares: Mapping[str, float]) -> str:
        items = list(shares.items())[:top]
        more = f", … {len(shares) - top} more" if len(shares) > top else ""
        return f"- by {name}: " + ", ".join(f"{shown(k)} {v:.1%}" for k, v in items) + more

    lines = [
        f"- {result.positions} positions, effective number {result.effective_positions:.2f} "
        f"(largest weight {result.largest_weight:.1%})"
    ]
    if result.apy_volatility_pct is not None:
        lines.append(
            f"- APY volatility of the holdings over the last {VOLATILITY_DAYS} days: "
            f"{result.apy_volatility_pct:.2f} percentage points"
        )
    return "\n".join(
        [
            *lines,
            line("protocol", result.by_protocol),
            line("chain", result.by_chain),
            line("token (a pool counts for each of its tokens)", result.by_token),
        ]
    )
