"""The jobs of the profit-split graph: materialise a day, and review a proposal from run config."""

# No `from __future__ import annotations`: Dagster checks the context annotation's object.
import dagster as dg
from dagster import OpExecutionContext
from pydantic import Field

from allocator_dagster.defs.profit_split.assets import proposal_metadata
from allocator_dagster.defs.profit_split.observations import proposal_observations
from allocator_dagster.defs.profit_split.partitions import GROUP
from allocator_dagster.defs.resources import DatabaseResource, ProfitSplitConfig
from allocator_dagster.profit_split.governance import PolicyError
from allocator_dagster.storage import profit_split as store

profit_split_job = dg.define_asset_job(
    "profit_split_job",
    selection=dg.AssetSelection.groups(GROUP),  # daily partitions, inferred from the assets
    description="Metrics, proposal and distribution of one day (with the distribution's check).",
)


class ReviewConfig(dg.Config):
    """Run config of review_proposal_job: the same fields as `allocator proposals review`."""

    proposal_id: str = Field(description="The proposal's id (UUID), as the CLI and UI show it.")
    approve: bool
    by: str
    notes: str = ""


@dg.op(description="One reviewer's approval or rejection of a proposed split.")
def review_proposal(
    context: OpExecutionContext,
    config: ReviewConfig,
    database: DatabaseResource,
    profit_split_config: ProfitSplitConfig,
) -> dict:
    engine = database.engine()
    try:
        outcome = store.review_proposal(
            engine,
            store.find_proposal(engine, config.proposal_id).id,
            approve=config.approve,
            by=config.by,
            notes=config.notes,
            policy=profit_split_config.review_policy(),
        )
    except (store.ReviewError, store.ProposalNotFound, PolicyError) as exc:
        # A refused review is the reviewer's error, not a crash: the reason is the run log's own
        # ERROR line (no stack trace) and the failure's description and metadata, which the UI
        # shows above the trace Dagster attaches to every step failure.
        decision = "approve" if config.approve else "reject"
        context.log.error(f"review refused ({config.by}: {decision} {config.proposal_id}): {exc}")
        raise dg.Failure(
            description=str(exc),
            metadata={
                "proposal_id": config.proposal_id,
                "reviewer": config.by,
                "decision": decision,
                "refused_because": str(exc),
            },
        ) from None
    stored = outcome.proposal
    context.log.info(
        f"proposal {stored.id} is now {stored.status} "
        f"({len(outcome.approvals)} of {outcome.required} approvals)"
    )
    for observation in proposal_observations(
        engine, outcome.changed, reason=f"review by {config.by} in run {context.run_id}"
    ):
        context.log_event(observation)
    context.add_output_metadata(
        {
            **proposal_metadata(stored, outcome.approvals, outcome.required),
            "closed_as_stale": ", ".join(str(p.id) for p in outcome.closed) or "none",
        }
    )
    return stored.to_json()


@dg.job(description="Review one proposal: run config ops.review_proposal.config.")
def review_proposal_job() -> None:
    review_proposal()
