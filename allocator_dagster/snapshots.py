"""Snapshots: what one day's run saw, so that it can be reproduced byte for byte.

A snapshot holds the parameters, the four dynamic lists as they stood, hashes of the exact inputs
(the day's pool metrics and balances) and the code and solver versions. Once written for a day
it is the record of that day's run; a backfill in reproduce mode solves from it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from allocator_dagster.model import Holdings
from allocator_dagster.money import to_cents
from allocator_dagster.parameters import AllocationParameters, DynamicLists, sha256_of
from allocator_dagster.universe_hash import hash_universe

__all__ = ["hash_universe"]  # the snapshot's metrics hash (`universe_hash`), where it is used

SNAPSHOT_MODES = ("original", "fresh")
# The modules whose behaviour decides an allocation: a change to any of them changes code_version.
_CORE_MODULES = (
    "allocation_report.py",
    "cent_rounding.py",
    "day_decision.py",
    "dynamic_lists.py",
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
    "report_lines.py",
    "solvers/__init__.py",
    "solvers/convex.py",
    "solvers/milp.py",
    "solvers/sensitivity.py",
    "vanished.py",
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
# digits the report keeps of each float (`allocation_report.PoolLine.as_dict`)
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
