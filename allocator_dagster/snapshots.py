"""Snapshots: what one day's run saw, so that it can be reproduced byte for byte.

A snapshot holds the parameters, the four dynamic lists as they stood, hashes of the exact inputs
(the day's pool metrics and balances) and the code and solver versions. Once written for a day
it is the record of that day's run; a backfill in reproduce mode solves from it again.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache, lru_cache
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionDtype
from pandas.core.dtypes.cast import maybe_box_native

from allocator_dagster.model import Holdings
from allocator_dagster.money import to_cents
from allocator_dagster.parameters import AllocationParameters, DynamicLists, sha256_of

SNAPSHOT_MODES = ("original", "fresh")
# The modules whose behaviour decides an allocation: a change to any of them changes code_version.
_CORE_MODULES = (
    "model/__init__.py",
    "model/diagnosis.py",
    "model/eligibility.py",
    "model/evaluation.py",
    "model/holdings.py",
    "model/presolve.py",
    "model/problem.py",
    "model/results.py",
    "money.py",
    "parameters.py",
    "rebalance.py",
    "solvers/__init__.py",
    "solvers/convex.py",
    "solvers/milp.py",
    "solvers/sensitivity.py",
    "paper_trading.py",
)


@cache
def code_version() -> str:
    """Package version plus a digest of the core modules' source."""
    from allocator_dagster import __version__

    root = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _CORE_MODULES:
        path = root / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.exists() else b"")
    return f"{__version__}+{digest.hexdigest()[:12]}"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, tuple | list):
        return [_clean(v) for v in value]
    return value


# `canonical_json`'s encoder: every value below is written exactly as it would be nested in the
# canonical JSON of the whole universe (the encoder writes a value the same wherever it sits).
_ENCODE = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
).encode


@lru_cache(maxsize=65536)
def _json_of_tuple(value: tuple[str, ...]) -> str:
    """A token list as canonical JSON (pools repeat every day: each distinct list once)."""
    return _ENCODE(_clean(value))


def _column_json(column: pd.Series) -> list[str]:
    """Each value of a column as canonical JSON, as `DataFrame.to_dict("records")` gives it
    (boxed to Python scalars) after `_clean` (NaN as null, tuples as lists)."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "fiub":
        if len(column) == 0:
            return []
        values = column.tolist()
        if dtype.kind == "f":
            values = [None if v != v else v for v in values]
        # numbers, true/false and null hold no comma: split the encoded list
        return _ENCODE(values)[1:-1].split(",")
    if dtype == np.dtype(object) or isinstance(dtype, ExtensionDtype):
        # records box these columns' values to Python scalars (`maybe_box_native`)
        values = column.tolist()
        kinds = set(map(type, values))
        if kinds == {str}:  # text: the loop below, in C
            return list(map(encode_basestring, values))
        out = []
        for v in values:
            kind = type(v)
            if kind is str:
                out.append(encode_basestring(v))
            elif v is None or (kind is float and v != v):
                out.append("null")
            elif kind is tuple and all(type(x) is str for x in v):
                out.append(_json_of_tuple(v))  # (equal tuples of str encode equally)
            else:
                out.append(_ENCODE(_clean(maybe_box_native(v))))
        return out
    # e.g. datetimes: a record holds the Series' own values
    return [_ENCODE(_clean(v)) for v in column]


def hash_universe(universe: pd.DataFrame) -> str:
    """Hash of a pool universe, independent of row order and of dtype details.

    The SHA-256 of the canonical JSON of {"columns": sorted names, "rows": the rows (values in
    column order) sorted by pool id}. Written column by column: the same bytes as encoding the
    records, several times faster.
    """
    columns = sorted(universe.columns)
    frame = universe
    if not frame["pool"].is_monotonic_increasing:
        frame = frame.sort_values("pool", kind="stable")
    encoded = [_column_json(frame[c]) for c in columns]
    if len(frame) and any(len(values) != len(frame) for values in encoded):
        raise ValueError("a column encodes to another number of values than the frame's rows")
    row = "[" + ",".join(["{}"] * len(columns)) + "]"  # one row's JSON array, by str.format
    rows = ",".join(map(row.format, *encoded))
    text = '{"columns":' + _ENCODE(columns) + ',"rows":[' + rows + "]}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_holdings(holdings: Holdings) -> str:
    return sha256_of(holdings.as_records())


@dataclass(frozen=True)
class Snapshot:
    allocation_date: date
    mode: str
    parameters: AllocationParameters
    lists: DynamicLists
    metrics_hash: str
    balances_hash: str
    code_version: str
    solver_versions: dict[str, str] = field(default_factory=dict)
    snapshot_id: int | None = None

    @property
    def snapshot_hash(self) -> str:
        return snapshot_hash_of(
            self.allocation_date,
            self.parameters.model_dump(mode="json"),
            self.lists.model_dump(mode="json"),
            self.metrics_hash,
            self.balances_hash,
        )


def snapshot_hash_of(
    day: date,
    parameters: Mapping[str, Any],
    lists: Mapping[str, Any],
    metrics_hash: str,
    balances_hash: str,
) -> str:
    """The hash of a snapshot's content; of a stored row, from its JSON exactly as stored."""
    return sha256_of(
        {
            "allocation_date": day.isoformat(),
            "parameters": dict(parameters),
            "lists": dict(lists),
            "metrics_hash": metrics_hash,
            "balances_hash": balances_hash,
        }
    )


# A detail row's columns -> the names of the same value in the report's `allocations` lines.
DETAIL_FIELDS = {
    "pool_id": "pool",
    "chain": "chain",
    "project": "project",
    "symbol": "symbol",
    "pool_group": "group",
    "tokens": "tokens",
    "amount_usd": "amount_usd",
    "weight": "weight",
    "delta_usd": "delta_usd",
    "apy_used": "apy_used",
    "expected_daily_yield_usd": "daily_yield_usd",
    "gas_cost_usd": "gas_usd",
    "conversion_cost_usd": "conversion_usd",
}
# digits the report keeps of each float (`rebalance.PoolLine.as_dict`)
_DIGITS = {
    "weight": 10,
    "apy_used": 8,
    "daily_yield_usd": 6,
    "gas_usd": 6,
    "conversion_usd": 6,
}


def allocation_line(values: Mapping[str, Any]) -> dict[str, Any]:
    """One allocation line in the report's form, from a report line or (`DETAIL_FIELDS`
    renamed) a stored detail row: cents as text, floats at the report's digits."""
    out: dict[str, Any] = {}
    for name in DETAIL_FIELDS.values():
        value = values.get(name)
        if name in ("amount_usd", "delta_usd"):
            value = None if value is None else str(to_cents(value))
        elif name in _DIGITS:
            value = None if value is None else round(float(value), _DIGITS[name])
        out[name] = value
    return out


def allocation_lines_hash(lines: Iterable[Mapping[str, Any]]) -> str:
    """Hash of allocation lines in the report's form, independent of their order."""
    return sha256_of(sorted((allocation_line(line) for line in lines), key=lambda r: r["pool"]))


def detail_lines(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Stored detail rows (their columns) as allocation lines (the report's names)."""
    return [{DETAIL_FIELDS[k]: v for k, v in row.items() if k in DETAIL_FIELDS} for row in rows]


def take_snapshot(
    day: date,
    params: AllocationParameters,
    lists: DynamicLists,
    universe: pd.DataFrame,
    holdings: Holdings,
    *,
    mode: str,
    solver_versions: dict[str, str],
    metrics_hash: str | None = None,
) -> Snapshot:
    """The snapshot of one day's run; `metrics_hash` is `hash_universe(universe)` when the
    caller has it already."""
    if mode not in SNAPSHOT_MODES:
        raise ValueError(f"snapshot mode must be one of {SNAPSHOT_MODES}, got {mode!r}")
    return Snapshot(
        allocation_date=day,
        mode=mode,
        parameters=params,
        lists=lists,
        metrics_hash=metrics_hash if metrics_hash is not None else hash_universe(universe),
        balances_hash=hash_holdings(holdings),
        code_version=code_version(),
        solver_versions=dict(solver_versions),
    )
