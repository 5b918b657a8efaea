"""review_proposal_job: a refused review fails with its clear message (issue 12)."""

from __future__ import annotations

import logging

import dagster as dg

from allocator_dagster.defs.profit_split.jobs import review_proposal_job
from allocator_dagster.defs.resources import DatabaseResource, ProfitSplitConfig


def test_a_refused_review_fails_with_its_reason_as_message_and_metadata(database_url: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = review_proposal_job.execute_in_process(
        instance=instance,
        run_config={
            "ops": {"review_proposal": {"config": {"proposal_id": "no-such-id", "approve": True,
                                                   "by": "bob"}}}
        },
        resources={
            "database": DatabaseResource(database_url=database_url),
            "profit_split_config": ProfitSplitConfig(),
        },
        raise_on_error=False,
    )  # fmt: skip
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    data = failure.step_failure_data.user_failure_data
    assert data is not None and data.description == "no proposal with id 'no-such-id'"
    assert {k: v.value for k, v in data.metadata.items()} == {
        "proposal_id": "no-such-id",
        "reviewer": "bob",
        "decision": "approve",
        "refused_because": "no proposal with id 'no-such-id'",
    }
    # the run log's own ERROR line: the reason, with no stack trace
    [line] = [
        entry
        for entry in instance.all_logs(result.run_id)
        if entry.level == logging.ERROR and not entry.is_dagster_event
    ]
    assert line.user_message == (
        "review refused (bob: approve no-such-id): no proposal with id 'no-such-id'"
    )
