"""Snapshots: what one day's run saw, so that it can be reproduced byte for byte.

A snapshot holds the parameters, the four dynamic lists as they stood, hashes of the exact inputs
(the day's pool metrics and balances) and the code and solver versions. Once written for a day
it is the record of that day's run; a backfill in reproduce mode solves from it again.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from allocator_dagster.model import Holdings
from allocator_dagster.parameters import AllocationParameters, DynamicLists, sha256_of

SNAPSHOT_MODES = ("original", "fresh")
# The modules whose behaviour decides an allocation: a change to any of them changes code_version.
_CORE_MODULES = (
    "model.py",
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


def hash_universe(universe: pd.DataFrame) -> str:
    """Hash of a pool universe, independent of row order and of dtype details."""
    columns = sorted(universe.columns)
    frame = universe.sort_values("pool", kind="stable")
    rows = [[_clean(row[c]) for c in columns] for row in frame.to_dict("records")]
    return sha256_of({"columns": columns, "rows": rows})


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
        return sha256_of(
            {
                "allocation_date": self.allocation_date.isoformat(),
                "parameters": self.parameters.model_dump(mode="json"),
                "lists": self.lists.model_dump(mode="json"),
                "metrics_hash": self.metrics_hash,
                "balances_hash": self.balances_hash,
            }
        )


def take_snapshot(
    day: date,
    params: AllocationParameters,
    lists: DynamicLists,
    universe: pd.DataFrame,
    holdings: Holdings,
    *,
    mode: str,
    solver_versions: dict[str, str],
) -> Snapshot:
    if mode not in SNAPSHOT_MODES:
        raise ValueError(f"snapshot mode must be one of {SNAPSHOT_MODES}, got {mode!r}")
    return Snapshot(
        allocation_date=day,
        mode=mode,
        parameters=params,
        lists=lists,
        metrics_hash=hash_universe(universe),
        balances_hash=hash_holdings(holdings),
        code_version=code_version(),
        solver_versions=dict(solver_versions),
    )
