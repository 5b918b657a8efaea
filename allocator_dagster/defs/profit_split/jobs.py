"""The jobs of the profit-split graph: materialise a day, and review a proposal from run config."""

# No `from __future__ import annotations`: Dagster checks the context annotation's object.
import dagster as dg
from dagster import OpExecutionContext

from allocator_dagster.defs.profit_split.partitions import GROUP
from allocator_dagster.defs.resources import DatabaseResource
from allocator_dagster.storage import profit_split as store

profit_split_job = dg.define_asset_job(
    "profit_split_job",
    selection=dg.AssetSelection.groups(GROUP),  # daily partitions, inferred from the assets
    description="Metrics, proposal and distribution of one day (with the distribution's check).",
)


class ReviewConfig(dg.Config):
    """Run config of review_proposal_job: the same fields as `allocator proposals review`."""

    proposal_id: int
    approve: bool
    by: str
    notes: str = ""


@dg.op(description="Approve (activating it) or reject a proposed split, once.")
def review_proposal(
    context: OpExecutionContext, config: ReviewConfig, database: DatabaseResource
) -> dict:
    try:
        stored = store.review_proposal(
            database.engine(),
            config.proposal_id,
            approve=config.approve,
            by=config.by,
            notes=config.notes,
        )
    except (store.ReviewError, store.ProposalNotFound) as exc:
        # A refused review is the reviewer's error, not a crash: fail with the reason.
        raise dg.Failure(description=str(exc)) from None
    context.log.info(
        f"proposal {stored.proposal_id} is now {stored.status} (reviewed by {stored.reviewed_by})"
    )
    context.add_output_metadata(
        {
            "proposal_id": stored.proposal_id,
            "status": str(stored.status),  # Dagster metadata takes plain str, not enums
            "split": stored.split.label(),
            "reviewed_by": stored.reviewed_by or "",
            "effective_from": stored.effective_from.isoformat() if stored.effective_from else "",
        }
    )
    return stored.to_json()


@dg.job(description="Review one proposal: run config ops.review_proposal.config.")
def review_proposal_job() -> None:
    review_proposal()
