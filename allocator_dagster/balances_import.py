"""Balances from reality: a treasury's observed holdings of one day, read from a file and checked.

The file has the `allocator solve --holdings` format (CSV or JSON, one parser: `inputs`); on top
of it an import needs exactly one `idle_usd` row and only pools the day's pool data knows (a pool
the allocator has never seen cannot be valued, reconciled or exited safely). The file's SHA-256
is kept with the import so a reproduction knows which balances a run used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from allocator_dagster.inputs import InputFileError, read_holdings_file
from allocator_dagster.model import IDLE, Holdings


@dataclass(frozen=True)
class BalancesFile:
    holdings: Holdings
    source_file: str
    sha256: str


def file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read: {exc.strerror or exc}") from None


def read_balances_file(path: str | Path, known_pools: Collection[str]) -> BalancesFile:
    """The checked holdings of FILE; any problem raises `InputFileError` naming line and field."""
    path = Path(path)
    parsed = read_holdings_file(path)
    errors = []
    if IDLE not in parsed.lines:
        errors.append(f"{path}: field 'pool': no {IDLE} row (the idle cash, 0 if none)")
    known = set(known_pools)
    errors += [
        f"{path}: {parsed.lines[pool]} (pool {pool}): field 'pool' is not a pool of the day's pool data"
        for pool in parsed.lines  # file order
        if pool != IDLE and pool not in known
    ]
    if errors:
        raise InputFileError("\n".join(errors))
    return BalancesFile(holdings=parsed.holdings, source_file=path.name, sha256=file_sha256(path))
