"""review_proposal_job: a refused review, or reviewer input the database cannot take, fails
with its clear message (issue 12), never a stack trace."""

from __future__ import annotations

import logging

import dagster as dg
import pytest

from allocator_dagster.storage import get_engine
from allocator_dagster.storage.profit_split import get_proposal
from allocator_dagster_tests.support.profit_split import propose
from allocator_dagster_tests.support.profit_split_runs import run_review, step_failure


def test_a_refused_review_fails_with_its_reason_as_message_and_metadata(database_url: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    review = {"proposal_id": "no-such-id", "approve": True, "by": "bob"}
    result = run_review(database_url, review, instance=instance)
    assert not result.success
    data = step_failure(result).user_failure_data
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


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("proposal_id", "²", "no proposal with id '²'"),
        ("notes", "fine\x00print", "the review notes contain U+0000 at character 5"),
        ("notes", "half \ud800 a character", "the review notes contain U+D800 at character 6"),
    ],
    ids=["superscript-digit-id", "nul-in-notes", "lone-surrogate-in-notes"],
)
def test_reviewer_input_no_database_can_take_fails_clearly(
    database_url: str, field: str, value: str, reason: str
) -> None:
    """Input the database cannot look up or store is the reviewer's error: a Failure naming the
    field, never a stack trace, and nothing is stored."""
    proposal = propose(get_engine(database_url))
    review = {"proposal_id": str(proposal.id), "approve": True, "by": "bob", field: value}
    result = run_review(database_url, review)
    assert not result.success
    data = step_failure(result).user_failure_data
    assert data is not None and reason in data.description
    assert get_proposal(get_engine(database_url), proposal.id).status == "proposed"
