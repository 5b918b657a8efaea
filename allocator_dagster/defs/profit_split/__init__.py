"""The profit-split asset graph: metrics -> proposal -> distribution, and the review job.

`defs` is a complete Definitions for this graph (`dagster dev -m allocator_dagster.defs.profit_split`);
to merge it with the allocation graph, build both with one DatabaseResource object (`build_defs`).
"""

from __future__ import annotations

import dagster as dg

from allocator_dagster.defs.profit_split.assets import (
    GROUP,
    PARTITIONS,
    platform_metrics,
    profit_distribution,
    profit_split_proposal,
)
from allocator_dagster.defs.profit_split.checks import distribution_cents_add_up
from allocator_dagster.defs.profit_split.jobs import profit_split_job, review_proposal_job
from allocator_dagster.defs.profit_split.resources import (
    ProfitSplitConfig,
    default_profit_split_config,
)
from allocator_dagster.defs.profit_split.schedules import profit_split_schedule
from allocator_dagster.defs.resources import DatabaseResource

ASSETS = [platform_metrics, profit_split_proposal, profit_distribution]


def build_defs(database: DatabaseResource | None = None) -> dg.Definitions:
    """This graph's Definitions. `Definitions.merge` accepts a resource key in two Definitions
    only if it is the *same object*, so pass the DatabaseResource the other graph uses."""
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=[distribution_cents_add_up],
        jobs=[profit_split_job, review_proposal_job],
        schedules=[profit_split_schedule],
        resources={
            "database": database if database is not None else DatabaseResource(),
            "profit_split_config": default_profit_split_config(),
        },
    )


defs = build_defs()

__all__ = [
    "ASSETS",
    "GROUP",
    "PARTITIONS",
    "ProfitSplitConfig",
    "build_defs",
    "defs",
    "distribution_cents_add_up",
    "profit_split_job",
    "profit_split_schedule",
    "review_proposal_job",
]
