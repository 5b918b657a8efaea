"""Snapshots: the hashes that make a day reproducible are stable, order-blind and sensitive.

`json_universe_hash` (the scheme of the snapshots taken before the typed columns, which must
still verify) is checked against a plain re-statement of its contract (SHA-256 of the canonical
JSON of the sorted columns and the rows sorted by pool id, NaN as null, tuples as lists), on
the sample's real dtypes and on pandas' nullable and datetime dtypes. The typed-column scheme
`hash_universe` has its own tests (test_universe_hash.py).
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import re
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import allocator_dagster
from allocator_dagster import snapshots
from allocator_dagster.model import Holdings
from allocator_dagster.parameters import AllocationParameters, DynamicLists
from allocator_dagster.snapshots import (
    code_version,
    hash_holdings,
    hash_universe,
    take_snapshot,
)
from allocator_dagster.sources.sample import SampleUniverse
from allocator_dagster.universe_hash import json_universe_hash

DAY = date(2026, 2, 3)


def _clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, tuple | list):
        return [_clean(v) for v in value]
    return value


def reference_hash(universe: pd.DataFrame) -> str:
    """The contract of `json_universe_hash`, written the slow and obvious way."""
    columns = sorted(universe.columns)
    records = universe.sort_values("pool", kind="stable").to_dict("records")
    rows = [[_clean(record[c]) for c in columns] for record in records]
    text = json.dumps(
        {"columns": columns, "rows": rows},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture(scope="module")
def universe() -> pd.DataFrame:
    frame, _ = SampleUniverse(n_pools=80).universe_for(DAY)
    return frame


def test_json_universe_hash_matches_its_contract_on_the_sample(universe: pd.DataFrame) -> None:
    assert json_universe_hash(universe) == reference_hash(universe)
    with_nan = universe.copy()
    with_nan.loc[with_nan.index[::7], "apyMean30d"] = math.nan  # NaN is written as null
    assert json_universe_hash(with_nan) == reference_hash(with_nan)


def test_json_universe_hash_matches_its_contract_on_other_dtypes() -> None:
    frame = pd.DataFrame(
        {
            "pool": ["b", "a", "c"],
            "count": pd.array([1, None, 3], dtype="Int64"),
            "flag": pd.array([True, None, False], dtype="boolean"),
            "name": pd.array(["Ünïcode €", None, 'quote " and \\'], dtype="string"),
            "seen": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"]),
            "tokens": [("USDC", "0xab"), (), ("DAI",)],
            "mixed": [None, 1.5, float("nan")],
            "ints": np.array([3, -2, 0], dtype=np.int64),
            "bools": [True, False, True],
        }
    )
    assert json_universe_hash(frame) == reference_hash(frame)


def test_json_universe_hash_ignores_row_and_column_order(universe: pd.DataFrame) -> None:
    shuffled = universe.sample(frac=1.0, random_state=3)
    shuffled = shuffled[list(reversed(universe.columns))].reset_index(drop=True)
    assert not shuffled["pool"].is_monotonic_increasing
    assert json_universe_hash(shuffled) == json_universe_hash(universe)


def test_json_universe_hash_changes_with_any_value_row_or_column(universe: pd.DataFrame) -> None:
    base = json_universe_hash(universe)
    changed = universe.copy()
    changed.loc[changed.index[5], "tvlUsd"] += 0.01
    assert json_universe_hash(changed) != base
    renamed = universe.copy()
    renamed.loc[renamed.index[0], "symbol"] = renamed["symbol"].iloc[0] + "x"
    assert json_universe_hash(renamed) != base
    assert json_universe_hash(universe.iloc[1:]) != base
    assert json_universe_hash(universe.assign(extra=0.0)) != base
    zero_to_nan = universe.copy()
    zero_to_nan.loc[zero_to_nan["apyReward"] == 0.0, "apyReward"] = math.nan
    assert json_universe_hash(zero_to_nan) != base


def test_json_universe_hash_is_pinned() -> None:
    """The snapshots stored before the typed columns hold this scheme: its digest is frozen."""
    frame = pd.DataFrame(
        {
            "pool": ["p2", "p1"],
            "apy": [4.25, float("nan")],
            "symbol": ["USDC", "DAI"],
            "tokens": [("USDC",), ("DAI", "0xab")],
        }
    )
    text = (
        '{"columns":["apy","pool","symbol","tokens"],'
        '"rows":[[null,"p1","DAI",["DAI","0xab"]],[4.25,"p2","USDC",["USDC"]]]}'
    )
    assert json_universe_hash(frame) == hashlib.sha256(text.encode()).hexdigest()
    assert (
        json_universe_hash(frame)
        == "6151dd23fe767bf2f4af4e0637197c70eee9397ef7592123b237aed2a53dc73b"
    )


def test_hash_holdings_is_the_cents_held_not_the_order() -> None:
    one = Holdings(positions={"b": Decimal("2.50"), "a": Decimal("1.25")}, idle_usd=Decimal("1"))
    two = Holdings(
        positions={"a": Decimal("1.25"), "b": Decimal("2.50"), "z": Decimal("0")},
        idle_usd=Decimal("1"),
    )
    assert hash_holdings(one) == hash_holdings(two)
    records = [
        {"pool": "a", "amount_usd": "1.25"},
        {"pool": "b", "amount_usd": "2.50"},
        {"pool": "idle_usd", "amount_usd": "1"},
    ]
    text = json.dumps(records, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hash_holdings(one) == hashlib.sha256(text.encode()).hexdigest()
    moved = Holdings(positions={"a": Decimal("1.26"), "b": Decimal("2.49")}, idle_usd=Decimal("1"))
    assert hash_holdings(moved) != hash_holdings(one)
    assert hash_holdings(replace(one, idle_usd=Decimal("1.01"))) != hash_holdings(one)


def _snapshot(universe: pd.DataFrame, **changes):
    values = dict(
        day=DAY,
        params=AllocationParameters(),
        lists=DynamicLists(approved_tokens=["USDC"], approved_protocols=["aave-v3"]),
        universe=universe,
        holdings=Holdings.idle(1_000_000),
        mode="original",
        solver_versions={"cvxpy": "1"},
    )
    values.update(changes)
    return take_snapshot(**values)


def test_snapshot_records_its_inputs(universe: pd.DataFrame) -> None:
    versions = {"cvxpy": "1.5", "ortools": "9.1"}
    snap = _snapshot(universe, solver_versions=versions)
    versions["cvxpy"] = "changed later"
    assert snap.solver_versions == {"cvxpy": "1.5", "ortools": "9.1"}  # a copy, not the caller's
    assert snap.metrics_hash == hash_universe(universe)
    assert snap.balances_hash == hash_holdings(Holdings.idle(1_000_000))
    assert snap.code_version == code_version()
    assert snap.snapshot_id is None
    given = _snapshot(universe, metrics_hash="f" * 64)
    assert given.metrics_hash == "f" * 64  # the caller's hash is used as it is


def test_snapshot_hash_covers_what_decides_the_day_and_nothing_else(
    universe: pd.DataFrame,
) -> None:
    base = _snapshot(universe)
    same = [
        _snapshot(universe, mode="fresh"),
        _snapshot(universe, solver_versions={"cvxpy": "2"}),
        replace(base, code_version="other", snapshot_id=42),
    ]
    assert {s.snapshot_hash for s in same} == {base.snapshot_hash}
    different = [
        _snapshot(universe, day=date(2026, 2, 4)),
        _snapshot(universe, params=AllocationParameters(min_pools=base.parameters.min_pools + 1)),
        _snapshot(universe, lists=DynamicLists(approved_tokens=["USDT"])),
        _snapshot(universe.iloc[1:]),
        _snapshot(universe, holdings=Holdings.idle("1000000.01")),
    ]
    hashes = [s.snapshot_hash for s in different]
    assert base.snapshot_hash not in hashes and len(set(hashes)) == len(hashes)


def test_an_unknown_snapshot_mode_is_refused(universe: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="snapshot mode must be one of .*'replay'"):
        _snapshot(universe, mode="replay")


def test_code_version_is_the_package_version_and_a_digest_of_every_core_module() -> None:
    version = code_version()
    assert re.fullmatch(re.escape(allocator_dagster.__version__) + r"\+[0-9a-f]{12}", version)
    root = Path(snapshots.__file__).parent
    # a core module that no longer exists at its listed path would silently leave the digest
    missing = [name for name in snapshots._CORE_MODULES if not (root / name).is_file()]
    assert missing == [], f"code_version digests modules that do not exist: {missing}"


# Imported by the decision without deciding anything: the error of a day that cannot run and the
# report's amounts, read for the check of the decided allocation.
_NOT_DECIDING = {"day_payouts.py"}


def _package_imports(root: Path, name: str) -> set[str]:
    """The package modules (paths under `root`) that the module at `name` imports."""
    found = set()
    for node in ast.walk(ast.parse((root / name).read_text())):
        if not (
            isinstance(node, ast.ImportFrom) and (node.module or "").startswith("allocator_dagster")
        ):
            continue
        base = node.module.removeprefix("allocator_dagster").lstrip(".").replace(".", "/")
        for candidate in [base, *(f"{base}/{a.name}".lstrip("/") for a in node.names)]:
            if candidate and (root / f"{candidate}.py").is_file():
                found.add(f"{candidate}.py")
            elif candidate and (root / candidate / "__init__.py").is_file():
                found.add(f"{candidate}/__init__.py")
    return found


def test_code_version_digests_every_module_the_decision_imports() -> None:
    """Everything that decides an allocation changes code_version: the decision (`rebalance`,
    `day_decision`) and every package module they import, but for private helpers (`_compat`)."""
    root = Path(snapshots.__file__).parent
    todo, seen = ["rebalance.py", "day_decision.py"], set()
    while todo:
        name = todo.pop()
        if name in seen or name in _NOT_DECIDING:
            continue
        seen.add(name)
        todo += _package_imports(root, name)
    deciding = {
        name for name in seen if not Path(name).name.startswith("_") or name.endswith("__init__.py")
    }
    assert "cent_rounding.py" in deciding and "vanished.py" in deciding
    missing = sorted(deciding - set(snapshots._CORE_MODULES))
    assert missing == [], f"modules that decide an allocation but not code_version: {missing}"
