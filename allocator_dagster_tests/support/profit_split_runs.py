"""Runs of the profit-split jobs for tests: review_proposal_job from run config, and its failure."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
from dagster._core.events import StepFailureData

from allocator_dagster.defs.profit_split.jobs import review_proposal_job
from allocator_dagster.defs.resources import DatabaseResource, ProfitSplitConfig


def run_review(
    database_url: str,
    review: Mapping[str, object],
    *,
    instance: dg.DagsterInstance | None = None,
    **config: object,
) -> dg.ExecuteInProcessResult:
    """review_proposal_job with `review` as its op config (proposal_id, approve, by, notes) and
    `config` as the profit-split configuration (review policy); failures are returned."""
    return review_proposal_job.execute_in_process(
        run_config={"ops": {"review_proposal": {"config": dict(review)}}},
        resources={
            "database": DatabaseResource(database_url=database_url),
            "profit_split_config": ProfitSplitConfig(**config),  # type: ignore[arg-type]
        },
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def step_failure(result: dg.ExecuteInProcessResult) -> StepFailureData:
    """The run's one step failure."""
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data
