"""Validation of DefiLlama `/pools` records into the pool-universe DataFrame.

The yields API gives one JSON object per pool. Only `pool`, `chain`, `project`, `symbol` and
`tvlUsd` are required; every other field may be absent or null. A record that cannot be trusted
is not silently repaired: it becomes a `Rejection` whose reason names the field and the value,
so that a day's data can be audited (they are stored in `pool_rejections`).

MODEL.md's null rules are applied once here: a null `apyBase` or `apyReward` counts as 0 when the
other is present, and `apy` defaults to their sum. A record with no APY at all is kept with
`apy` NaN (the model makes it ineligible, it is not broken data).

The universe has fixed dtypes (`POOL_DTYPES`) whatever the input, so that equal records give
equal frames, equal stored rows and equal hashes: required text is pandas' `str`, optional text
is `object` holding `str` or None (as the API's null), `underlyingTokens` is a tuple of str,
numbers are float64 (NaN for null) and `stablecoin` is bool.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeGuard

import numpy as np
import pandas as pd


class PoolSource(StrEnum):
    """Where a day's pool rows came from, as stored in `pool_daily_metrics.source`."""

    SAMPLE = "sample"  # the generated universe (`sample.py`)
    DEFILLAMA = "defillama"  # the live `/pools` snapshot
    HISTORY = "history"  # a recording replayed day by day (`history.py`)
    DEFILLAMA_CHART = "defillama-chart"  # history rebuilt from `/chart/{pool}`


POOL_COLUMNS: tuple[str, ...] = (
    "pool",
    "chain",
    "project",
    "symbol",
    "underlyingTokens",
    "tvlUsd",
    "apy",
    "apyBase",
    "apyReward",
    "apyMean30d",
    "stablecoin",
    "ilRisk",
    "exposure",
    "poolMeta",
)
FORECAST_COLUMNS: tuple[str, ...] = (
    "apy_forecast",
    "apy_base_forecast",
    "apy_reward_forecast",
    "tvl_forecast",
)

REQUIRED_TEXT = ("pool", "chain", "project", "symbol")
OPTIONAL_TEXT = ("ilRisk", "exposure", "poolMeta")
APY_FIELDS = ("apy", "apyBase", "apyReward")
FLOAT_COLUMNS = ("tvlUsd", "apy", "apyBase", "apyReward", "apyMean30d")

POOL_DTYPES: dict[str, Any] = {
    **dict.fromkeys(REQUIRED_TEXT, "str"),
    "underlyingTokens": object,
    **dict.fromkeys(FLOAT_COLUMNS, "float64"),
    "stablecoin": "bool",
    **dict.fromkeys(OPTIONAL_TEXT, object),
}
FORECAST_DTYPES: dict[str, Any] = dict.fromkeys(FORECAST_COLUMNS, "float64")
# A pool history frame (the forecast's input), stored or recorded: one row per day and pool.
HISTORY_COLUMNS = ("date", "pool", "tvlUsd", "apy", "apyBase", "apyReward")

# The widths of the stored columns (storage/schema.py): a longer value could not be stored.
MAX_LENGTHS = {
    "pool": 128,
    "chain": 64,
    "project": 128,
    "symbol": 256,
    "ilRisk": 16,
    "exposure": 16,
    "poolMeta": 256,
}

_NUMBER = (int, float)


@dataclass(frozen=True)
class RecordLimits:
    """Ceilings above which a finite value is absurd, not data: such a record is rejected.

    1,000 % APY is far beyond any pool the model should follow (a glitch or a dying pool), and
    no single pool holds a trillion USD; both are configurable (`PoolSourceResource`).
    """

    max_apy_pct: float = 1_000.0
    max_tvl_usd: float = 1e12


DEFAULT_LIMITS = RecordLimits()
# The generated sample is the project's own data, not outside data: its rare spikes are kept so
# that the model's and the forecast's handling of them stays tested (and its results stable).
NO_LIMITS = RecordLimits(max_apy_pct=math.inf, max_tvl_usd=math.inf)


def unstorable(text: str) -> str | None:
    """Why `text` cannot be stored as it is (a NUL, which PostgreSQL refuses in text and JSON,
    or a lone surrogate, which is not UTF-8), or None."""
    if "\x00" in text:
        return "a NUL character"
    if text.isascii():
        return None
    for char in text:
        if "\ud800" <= char <= "\udfff":
            return f"an unpaired surrogate U+{ord(char):04X}"
    return None


@dataclass(frozen=True)
class Rejection:
    """One record left out of the universe, and why (row_number: 0-based position in `data`)."""

    row_number: int
    pool_id: str | None
    reason: str


def _show(value: Any) -> str:
    """A short, unambiguous rendering of a bad value for a rejection reason."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _safe_id(pool_id: str | None) -> str | None:
    """The pool id as a rejection can store it (an unstorable id is stored escaped)."""
    if pool_id is None or unstorable(pool_id) is None:
        return pool_id
    return pool_id.encode("unicode_escape").decode("ascii")[:128]


def _is_number(value: Any) -> TypeGuard[int | float]:
    kind = type(value)
    return kind is float or kind is int or (kind is not bool and isinstance(value, _NUMBER))


def _float(value: int | float) -> float:
    """The number as a float; an int beyond the float range is infinite (it is not finite
    data, and `float()` would raise)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _missing(record: Mapping[str, Any], name: str) -> str:
    return "missing" if name not in record else "null"


def apply_apy_rules(
    apy: float | None, base: float | None, reward: float | None
) -> tuple[float | None, float | None, float | None]:
    """MODEL.md: a null apyBase or apyReward counts as 0 when the other is present, and apy
    defaults to their sum (None stays None when no part is known)."""
    if base is not None or reward is not None:
        base = 0.0 if base is None else base
        reward = 0.0 if reward is None else reward
        if apy is None:
            apy = base + reward
    return apy, base, reward


def _check_record(
    record: Any, limits: RecordLimits = DEFAULT_LIMITS
) -> tuple[str | None, str | None, list[Any] | None]:
    """(pool id, reason, row) for one record: reason None means the row is valid.

    Written as one flat function on purpose: it runs once per record (20,000 a day).
    """
    if not isinstance(record, Mapping):
        return None, f"record is a {type(record).__name__}, not an object", None
    get = record.get
    raw_id = get("pool")
    pool_id = raw_id.strip() or None if type(raw_id) is str else None

    row: list[Any] = []
    for name in REQUIRED_TEXT:
        value = get(name)
        if type(value) is not str:
            if value is None:
                return pool_id, f"required field {name!r} is {_missing(record, name)}", None
            return pool_id, f"required field {name!r} must be a string, got {_show(value)}", None
        value = value.strip()
        if not value:
            return pool_id, f"required field {name!r} is empty", None
        if len(value) > MAX_LENGTHS[name]:
            return pool_id, f"field {name!r} is longer than {MAX_LENGTHS[name]} characters", None
        odd = unstorable(value)
        if odd is not None:
            return _safe_id(pool_id), f"field {name!r} holds {odd}", None
        row.append(value)

    tokens = get("underlyingTokens")
    if tokens is None:
        tokens = ()
    elif type(tokens) is list or type(tokens) is tuple:
        if not all(type(t) is str and t for t in tokens):
            bad = [t for t in tokens if t is not None and type(t) is not str]
            if bad:
                return pool_id, f"field 'underlyingTokens' holds a non-string {_show(bad[0])}", None
            tokens = [t for t in tokens if t]
        for token in tokens:
            odd = unstorable(token)
            if odd is not None:
                return _safe_id(pool_id), f"field 'underlyingTokens' holds {odd}", None
        tokens = tuple(tokens)
    else:
        return pool_id, f"field 'underlyingTokens' must be a list, got {_show(tokens)}", None
    row.append(tokens)

    tvl = get("tvlUsd")
    if not _is_number(tvl):
        if tvl is None:
            return pool_id, f"required field 'tvlUsd' is {_missing(record, 'tvlUsd')}", None
        return pool_id, f"field 'tvlUsd' must be a number, got {_show(tvl)}", None
    tvl = _float(tvl)
    if not math.isfinite(tvl):
        return pool_id, f"field 'tvlUsd' is not finite: {tvl!r}", None
    if tvl < 0:
        return pool_id, f"field 'tvlUsd' is negative: {tvl!r}", None
    if tvl > limits.max_tvl_usd:
        return (
            pool_id,
            f"field 'tvlUsd' is above the ceiling of {limits.max_tvl_usd:g} USD: {tvl!r}",
            None,
        )
    row.append(tvl)

    apys: list[float | None] = []
    for name in APY_FIELDS:
        value = get(name)
        if value is None:
            apys.append(None)
        elif _is_number(value):
            value = _float(value)
            if not math.isfinite(value):
                return pool_id, f"field {name!r} is not finite: {value!r}", None
            if abs(value) > limits.max_apy_pct:
                return (
                    pool_id,
                    f"field {name!r} is beyond the ceiling of ±{limits.max_apy_pct:g} %: {value!r}",
                    None,
                )
            apys.append(value)
        else:
            return pool_id, f"field {name!r} must be a number or null, got {_show(value)}", None
    apy, base, reward = apply_apy_rules(*apys)
    nan = math.nan
    row.append(nan if apy is None else apy)
    row.append(nan if base is None else base)
    row.append(nan if reward is None else reward)

    # Informational only: a broken 30-day mean does not make the pool untrustworthy.
    mean30 = get("apyMean30d")
    mean30 = _float(mean30) if _is_number(mean30) else nan
    row.append(mean30 if math.isfinite(mean30) else nan)

    stable = get("stablecoin")
    if stable is None:
        stable = False
    elif type(stable) is not bool:
        return pool_id, f"field 'stablecoin' must be true/false, got {_show(stable)}", None
    row.append(stable)

    for name in OPTIONAL_TEXT:
        value = get(name)
        if value is not None:
            if type(value) is not str:
                return pool_id, f"field {name!r} must be a string or null, got {_show(value)}", None
            if len(value) > MAX_LENGTHS[name]:
                return (
                    pool_id,
                    f"field {name!r} is longer than {MAX_LENGTHS[name]} characters",
                    None,
                )
            odd = unstorable(value)
            if odd is not None:
                return _safe_id(pool_id), f"field {name!r} holds {odd}", None
        row.append(value)
    return row[0], None, row


def universe_frame(columns: Mapping[str, Any], *, forecast: bool = False) -> pd.DataFrame:
    """A universe DataFrame with the fixed column order and dtypes (plus forecast columns)."""
    names = POOL_COLUMNS + (FORECAST_COLUMNS if forecast else ())
    dtypes = {**POOL_DTYPES, **FORECAST_DTYPES}
    data = {}
    for name in names:
        values = columns.get(name, [])
        if dtypes[name] is object:
            series = pd.Series(list(values), dtype=object)
        else:
            series = pd.Series(values, dtype=dtypes[name])
        data[name] = series
    frame = pd.DataFrame(data, columns=list(names))
    return frame.reset_index(drop=True)


def empty_universe(*, forecast: bool = False) -> pd.DataFrame:
    """An empty universe with the right columns and dtypes."""
    return universe_frame({}, forecast=forecast)


def admit(
    seen: dict[str, int], number: int, pool_id: str | None, reason: str | None
) -> Rejection | None:
    """Record `number`'s rejection (its own `reason`, or a duplicate of an id kept earlier),
    or None when it is kept (its id then goes into `seen`): the first valid record of an id
    wins."""
    if reason is None and pool_id in seen:
        reason = f"duplicate pool id {pool_id!r} (first kept at row {seen[pool_id]})"
    if reason is not None:
        return Rejection(number, pool_id, reason)
    seen[pool_id] = number  # type: ignore[index]
    return None


def validate_pool_records(
    records: Iterable[Any], *, source: str, limits: RecordLimits = DEFAULT_LIMITS
) -> tuple[pd.DataFrame, list[Rejection]]:
    """The pool universe (sorted by pool id) and the rejected records of one `/pools` response.

    The fields are checked column by column (`record_columns`); only the records that screen
    flags go through `_check_record`, which gives each rejection its reason. `source` names
    where the records came from (e.g. "defillama", "sample"); it is kept in
    `frame.attrs["source"]` so that a stored day can say where its rows came from.
    """
    from allocator_dagster.sources.record_columns import screen_records  # builds on this module

    records = records if isinstance(records, list) else list(records)
    screen = screen_records(records, limits)
    plain = screen.plain.tolist()
    ids = screen.columns["pool"]
    kept: list[int] = []  # record numbers of the rows, in record order
    slow: dict[int, list[Any]] = {}  # rows of the records checked one by one
    rejections: list[Rejection] = []
    seen: dict[str, int] = {}
    for number, record in enumerate(records):
        if plain[number]:
            pool_id, reason = ids[number], None
        else:
            pool_id, reason, row = _check_record(record, limits)
            if reason is None:
                slow[number] = row  # type: ignore[assignment]
        rejection = admit(seen, number, pool_id, reason)
        if rejection is not None:
            rejections.append(rejection)
            continue
        kept.append(number)

    columns: dict[str, list[Any]] = {}
    for position, name in enumerate(POOL_COLUMNS):
        values = screen.columns[name]
        values = values.tolist() if isinstance(values, np.ndarray) else list(values)
        for number, row in slow.items():
            values[number] = row[position]
        columns[name] = values
    ids = columns["pool"]
    kept.sort(key=ids.__getitem__)  # pool ids are unique here: the order is total
    columns = {name: [values[k] for k in kept] for name, values in columns.items()}
    frame = universe_frame(columns)
    frame.attrs["source"] = source
    return frame, rejections


def nan_to_none(values: Iterable[Any]) -> list[Any]:
    """Python values with NaN (and pandas' NA) as None: how JSON and SQL spell null."""
    values = values if isinstance(values, list) else list(values)
    if set(map(type, values)) <= {str, type(None)}:  # text: nothing to replace
        return list(values)
    out: list[Any] = []
    for v in values:
        if v is None or v is pd.NA or (type(v) is float and v != v):
            out.append(None)
        elif isinstance(v, np.generic):
            v = v.item()
            out.append(None if v != v else v)
        else:
            out.append(v)
    return out
