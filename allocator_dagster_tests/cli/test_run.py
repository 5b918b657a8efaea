"""`allocator run`: the README's first command materialises both graphs."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from allocator_dagster.storage import get_engine


def test_allocator_run_materialises_both_graphs_into_its_own_instance(
    tmp_path: Path, database_url: str
) -> None:
    """The README's first command, as a newcomer runs it: no DAGSTER_HOME, an empty folder."""
    from dagster import DagsterInstance, DagsterRunStatus

    from allocator_dagster.defs.allocation.partitions import CHAIN_POOL
    from allocator_dagster.storage.schema import asset_allocations, profit_distributions

    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["ALLOCATOR_DATABASE_URL"] = database_url
    allocator = str(Path(sys.executable).with_name("allocator"))
    args = [allocator, "run", "--days", "3", "--end", "2026-06-03"]
    done = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "Materialising 2026-06-01 .. 2026-06-03 (3 days): allocation, profit_split" in done.stdout
    )
    assert re.search(r"allocation +succeeded +run [0-9a-f-]{36}\n", done.stdout), done.stdout
    assert re.search(r"profit_split +succeeded +3 runs, the last [0-9a-f-]{36}\n", done.stdout)

    home = tmp_path / ".dagster_home"
    assert "telemetry:\n  enabled: false" in (home / "dagster.yaml").read_text()
    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 4  # the allocation's range as one run, the profit split one per day
        assert {run.status for run in runs} == {DagsterRunStatus.SUCCESS}
        # the chain's pool has its limit before any run from the UI could race the first one
        limits = {p.name: p for p in instance.event_log_storage.get_pool_limits()}
        assert limits[CHAIN_POOL].limit == 1 and not limits[CHAIN_POOL].from_default
    with get_engine(database_url).connect() as conn:
        days = conn.execute(sa.select(asset_allocations.c.allocation_date)).scalars().all()
        paid = conn.execute(sa.select(profit_distributions.c.distribution_date)).scalars().all()
    assert sorted(days) == [dt.date(2026, 6, 1), dt.date(2026, 6, 2), dt.date(2026, 6, 3)]
    assert sorted(set(paid)) == sorted(days)
