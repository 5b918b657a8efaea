"""The fast path of `/pools` validation: the response's fields checked column by column.

`records._check_record` checks one record at a time, some twenty tests in Python per record:
most of a 20,000-pool day's validation. Nearly every real record is plain (a JSON object of
strings, numbers, null, booleans and a list of token strings, every value in range), and such
a record can be told apart, and its row built, a field at a time over all records with C-level
loops (`map`, `str.join`, numpy). `screen_records` does that and flags every record it cannot
vouch for; only those go through `_check_record`, which gives the reason. A record that passes
here gives exactly the row `_check_record` gives it (the tests prove it on hostile records), so
the rejections, their reasons and row numbers are those of the per-record path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from allocator_dagster.sources.records import (
    APY_FIELDS,
    MAX_LENGTHS,
    OPTIONAL_TEXT,
    REQUIRED_TEXT,
    RecordLimits,
    unstorable,
)

# A float converts an int beyond this only with an OverflowError: such values go the slow way.
_MAX_INT = 2**1023


@dataclass(frozen=True)
class ColumnScreen:
    """The records' fields as columns (universe names, `_check_record`'s values) and which
    records they are valid for (`plain[i]`: record i needs no per-record check)."""

    plain: np.ndarray
    columns: dict[str, list[Any] | np.ndarray]


def _text(values: list[Any], limit: int, *, strip: bool) -> tuple[list[Any], np.ndarray]:
    """(values as the row holds them, ok) of a text field; None passes only if not `strip`
    (optional text), and an empty or over-long value only when it is optional."""
    if strip:
        out = [v.strip() if type(v) is str else None for v in values]
        ok = [v is not None and 0 < len(v) <= limit for v in out]
    else:
        out = values
        ok = [v is None or (type(v) is str and len(v) <= limit) for v in values]
    flags = np.array(ok, dtype=bool)
    texts = [v for v, good in zip(out, ok, strict=True) if good and v]
    joined = "".join(texts)
    if "\x00" in joined or not joined.isascii():  # the rare odd value: find it
        odd = [i for i, v in enumerate(out) if flags[i] and v and unstorable(v) is not None]
        flags[odd] = False
    return out, flags


def _tokens(values: list[Any]) -> tuple[list[tuple[str, ...]], np.ndarray]:
    """Token lists as tuples; only a null or a list/tuple of non-empty plain strings passes."""
    out: list[tuple[str, ...]] = []
    ok = []
    for v in values:
        if v is None:
            out.append(())
            ok.append(True)
        elif (type(v) is list or type(v) is tuple) and all(type(t) is str and t for t in v):
            out.append(tuple(v))
            ok.append(True)
        else:
            out.append(())
            ok.append(False)
    flags = np.array(ok, dtype=bool)
    joined = "".join(chain.from_iterable(out))
    if "\x00" in joined or not joined.isascii():
        odd = [i for i, t in enumerate(out) if any(unstorable(x) is not None for x in t)]
        flags[odd] = False
    return out, flags


def _plain_number(v: Any) -> bool:
    kind = type(v)
    return kind is float or (kind is int and -_MAX_INT < v < _MAX_INT)


def _numbers(values: list[Any], *, nullable: bool) -> tuple[np.ndarray, np.ndarray]:
    """(float values, NaN for null; ok: a finite plain int or float, or a null if `nullable`)."""
    plain = [_plain_number(v) for v in values]
    floats = np.array(
        [float(v) if good else math.nan for v, good in zip(values, plain, strict=True)],
        dtype=float,
    )
    ok = np.array(plain, dtype=bool) & np.isfinite(floats)
    if nullable:
        ok |= np.array([v is None for v in values], dtype=bool)
    return floats, ok


def _mean30(values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """apyMean30d is informational: anything but a finite number is NaN. Only the plain kinds
    (number, null, bool, text) pass; anything else (a numpy scalar, a Decimal) goes the slow way."""
    ok = [_plain_number(v) or v is None or type(v) is bool or type(v) is str for v in values]
    floats = np.array(
        [float(v) if _plain_number(v) else math.nan for v in values],
        dtype=float,
    )
    with np.errstate(invalid="ignore"):
        floats = np.where(np.isfinite(floats), floats, math.nan)
    return floats, np.array(ok, dtype=bool)


def screen_records(records: Sequence[Any], limits: RecordLimits) -> ColumnScreen:
    """Each field of every record checked as a column (see the module docstring)."""
    is_dict = np.array([type(r) is dict for r in records], dtype=bool)
    objects: list[dict] = [r if type(r) is dict else {} for r in records]

    def field(name: str) -> list[Any]:
        return [r.get(name) for r in objects]

    plain = is_dict.copy()
    columns: dict[str, list[Any] | np.ndarray] = {}
    for name in REQUIRED_TEXT:
        columns[name], ok = _text(field(name), MAX_LENGTHS[name], strip=True)
        plain &= ok
    columns["underlyingTokens"], ok = _tokens(field("underlyingTokens"))
    plain &= ok
    tvl, ok = _numbers(field("tvlUsd"), nullable=False)
    with np.errstate(invalid="ignore"):
        plain &= ok & (tvl >= 0) & (tvl <= limits.max_tvl_usd)
    columns["tvlUsd"] = tvl
    parts = []
    for name in APY_FIELDS:
        values, ok = _numbers(field(name), nullable=True)
        with np.errstate(invalid="ignore"):  # NaN here is a null (a NaN value is not ok)
            plain &= ok & (np.isnan(values) | (np.abs(values) <= limits.max_apy_pct))
        parts.append(values)
    columns.update(zip(APY_FIELDS, apy_rules(*parts), strict=True))
    columns["apyMean30d"], ok = _mean30(field("apyMean30d"))
    plain &= ok
    stable = field("stablecoin")
    plain &= np.array([v is None or type(v) is bool for v in stable], dtype=bool)
    columns["stablecoin"] = np.array([v is True for v in stable], dtype=bool)
    for name in OPTIONAL_TEXT:
        columns[name], ok = _text(field(name), MAX_LENGTHS[name], strip=False)
        plain &= ok
    return ColumnScreen(plain=plain, columns=columns)


def apy_rules(
    apy: np.ndarray, base: np.ndarray, reward: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`records.apply_apy_rules` over columns (NaN for null): a null part is 0 when the other
    is present, and apy defaults to their sum."""
    has_part = ~np.isnan(base) | ~np.isnan(reward)
    base = np.where(has_part & np.isnan(base), 0.0, base)
    reward = np.where(has_part & np.isnan(reward), 0.0, reward)
    apy = np.where(has_part & np.isnan(apy), base + reward, apy)
    return apy, base, reward
