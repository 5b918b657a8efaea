"""Which pools may hold money, and the numbers the model reads from a pool's row (MODEL.md).

A pool is eligible when none of its tokens is blacklisted or iceboxed, its protocol is approved,
its tokens are approved (by symbol or by address), its TVL reaches `min_tvl_usd` and it has a
finite APY. Row-wise functions explain one pool; the column-wise ones screen a whole day at once
and must agree with them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from allocator_dagster.parameters import AllocationParameters, DynamicLists

NO_FINITE_APY = "no finite APY"


def pool_tokens(symbol: str, underlying: object) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A pool's tokens: symbol parts (upper-case) and underlying addresses (lower-case), from
    the raw `underlyingTokens` field (a list, or null, NaN or a bare string)."""
    parts = tuple(p.strip().upper() for p in str(symbol).split("-") if p.strip())
    items: Iterable[object]
    if underlying is None or isinstance(underlying, float | str):  # null, NaN, or a bare string
        items = (underlying,) if isinstance(underlying, str) else ()
    elif isinstance(underlying, Iterable):
        items = underlying
    else:
        raise TypeError(f"underlyingTokens must be a list of addresses, got {underlying!r}")
    addresses = tuple(str(a).strip().lower() for a in items if str(a).strip())
    return parts, addresses


def _flag(value: object) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return bool(value)


# what each group holds, in the words an operator reads beside `group{k}_max_pct`
GROUP_LABELS = {1: "stable, single exposure", 2: "other pools", 3: "IL risk"}


def pool_group(row: Mapping[str, object], overrides: Mapping[str, int]) -> int:
    """Group 1: stable, single exposure, no IL; group 3: IL risk; group 2: the rest (MODEL.md)."""
    return _group(
        str(row["pool"]), row.get("ilRisk"), row.get("exposure"), row.get("stablecoin"), overrides
    )


def _group(
    pool: str, il_risk: object, exposure: object, stablecoin: object, overrides: Mapping[str, int]
) -> int:
    if pool in overrides:
        return int(overrides[pool])
    if _is_yes(il_risk):
        return 3
    if _flag(stablecoin) and _is_single(exposure):
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
    if isinstance(underlying, Iterable):
        return tuple(underlying)
    raise TypeError(f"underlyingTokens must be a list of addresses, got {underlying!r}")


@lru_cache(maxsize=65536)
def _cached_pool_tokens(symbol: str, underlying: object) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return pool_tokens(symbol, underlying)


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
        parts, addresses = pool_tokens(symbol, underlying)
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
    parts, addresses = pool_tokens(str(row["symbol"]), row.get("underlyingTokens"))
    reason = _token_reason(parts, addresses, str(row["symbol"]), str(row["project"]), index)
    if reason is not None:
        return reason
    reason = _tvl_reason(_num(row.get("tvlUsd")), params)
    if reason is not None:
        return reason
    apy = effective_apy(row)
    if not math.isfinite(apy[0]):
        return NO_FINITE_APY
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


def number_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column as floats, read as `_num` reads one value (NaN when the column is absent)."""
    if name not in frame.columns:
        return np.full(len(frame), math.nan)
    column = frame[name]
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "fiub":
        return column.to_numpy(dtype=float, copy=True)
    return np.array([_num(v) for v in column.tolist()], dtype=float).reshape(len(frame))


def effective_apy_columns(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`effective_apy` of every row at once: arrays (apy, apyBase, apyReward)."""
    base = number_column(frame, "apyBase")
    reward = number_column(frame, "apyReward")
    apy = number_column(frame, "apy")
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


def group_column(
    frame: pd.DataFrame, rows: np.ndarray, pool_ids: np.ndarray, overrides: Mapping[str, int]
) -> np.ndarray:
    """`pool_group` of the given rows of `frame` (a missing flag column counts as false)."""

    def values(name: str) -> list[object]:
        if name not in frame.columns:
            return [None] * len(rows)
        return frame[name].to_numpy()[rows].tolist()

    out = [
        _group(pool, il, exposure, stable, overrides)
        for pool, il, exposure, stable in zip(
            pool_ids.tolist(),
            values("ilRisk"),
            values("exposure"),
            values("stablecoin"),
            strict=True,
        )
    ]
    return np.array(out, dtype=int)


def screen(
    frame: pd.DataFrame,
    tvl: np.ndarray,
    apy: np.ndarray,
    params: AllocationParameters,
    lists: DynamicLists,
) -> tuple[np.ndarray, dict[str, str]]:
    """`ineligibility_reason` of every row of `frame` at once: the eligible mask and, per
    ineligible pool, why. `tvl` and `apy` are the frame's columns as `number_column` and
    `effective_apy_columns` read them; the token rules are memoised per (symbol, underlying,
    project)."""
    index = _list_index(lists)
    size = len(frame)
    pool_all = frame["pool"].tolist()
    symbol_all = frame["symbol"].tolist()
    project_all = frame["project"].tolist()
    underlying_all = (
        frame["underlyingTokens"].tolist() if "underlyingTokens" in frame.columns else [None] * size
    )
    reasons: dict[str, str] = {}
    eligible_mask = np.zeros(size, dtype=bool)
    tvl_list = tvl.tolist()
    apy_ok = np.isfinite(apy).tolist()
    for i in range(size):
        symbol = str(symbol_all[i])
        reason = _token_verdict(symbol, underlying_all[i], str(project_all[i]), index)
        if reason is None:
            reason = _tvl_reason(tvl_list[i], params)
            if reason is None and not apy_ok[i]:
                reason = NO_FINITE_APY
        if reason is None:
            eligible_mask[i] = True
        else:
            reasons[str(pool_all[i])] = reason
    return eligible_mask, reasons
