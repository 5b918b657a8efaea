"""Running the daily allocation chain in process: resources, a range of days, what it stored."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
import yaml
from dagster import (
    DagsterInstance,
    materialize,
)

from allocator_dagster.defs.allocation.assets import (
    allocation_chain,
    pool_daily_metrics,
)
from allocator_dagster.defs.allocation.checks import ALLOCATION_CHECKS, POOL_CHECKS
from allocator_dagster.defs.allocation.rebalance_plan import plan_identities_hold, rebalance_plan
from allocator_dagster.defs.allocation.reconciliation import balances_within_drift_tolerance
from allocator_dagster.defs.resources import (
    AllocationResource,
    DatabaseResource,
    PoolSourceResource,
)
from allocator_dagster.storage.schema import asset_allocation_details

SAMPLE_POOLS = 400
ASSETS = [
    pool_daily_metrics,
    allocation_chain,
    rebalance_plan,
    *POOL_CHECKS,
    *ALLOCATION_CHECKS,
    plan_identities_hold,
    balances_within_drift_tolerance,
]


def chain_resources(
    database_url: str, params_file: Path | None = None, solver: str = "convex"
) -> dict:
    return {
        "database": DatabaseResource(database_url=database_url),
        "pool_source": PoolSourceResource(sample_pools=SAMPLE_POOLS),
        "allocation": AllocationResource(parameters_file=str(params_file or ""), solver=solver),
    }


def write_params_file(tmp_path: Path, **overrides) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(overrides))
    return path


def run_days(
    resources: dict,
    start: dt.date,
    end: dt.date | None = None,
    *,
    config: dict | None = None,
    selection=None,
    instance: DagsterInstance | None = None,
):
    end = end or start
    tags = {
        "dagster/asset_partition_range_start": start.isoformat(),
        "dagster/asset_partition_range_end": end.isoformat(),
    }
    run_config = {"ops": {"allocation_chain": {"config": config}}} if config else None
    return materialize(
        ASSETS,
        instance=instance or DagsterInstance.ephemeral(),
        resources=resources,
        tags=tags,
        run_config=run_config,
        selection=selection,
        raise_on_error=False,
    )


def checks_passed(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def held_pools(engine: sa.Engine, day: dt.date) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(
                asset_allocation_details.c.pool_id,
                asset_allocation_details.c.symbol,
                asset_allocation_details.c.project,
            )
            .where(
                asset_allocation_details.c.allocation_date == day,
                asset_allocation_details.c.amount_usd > 0,
            )
            .order_by(asset_allocation_details.c.amount_usd.desc())
        ).all()
