"""One day of the profit split, outside Dagster: read the metrics, propose once, auto-approve.

The proposal asset and `allocator proposals analyze` both call `propose_day`, so the day is
decided the same way whichever starts it: a day that was decided before keeps its answer (the
proposer is not even asked again), a "maintain" answer is recorded without waiting for a review,
and a proposal is always made against the split in force when it is stored.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Literal

import sqlalchemy as sa

from allocator_dagster.profit_split.governance import AUTO_APPROVE_REVIEWER, ReviewPolicy
from allocator_dagster.profit_split.llm import LLMProposer
from allocator_dagster.profit_split.metrics import PlatformMetrics, sample_metrics
from allocator_dagster.profit_split.policy import AutoApprovePolicy, Proposal, RulesProposer
from allocator_dagster.storage import profit_split as store

METRICS_SOURCE_ENV = "ALLOCATOR_METRICS_SOURCE"
MetricsSource = Literal["sample", "database"]
METRICS_SOURCES: tuple[MetricsSource, ...] = ("sample", "database")
RULES_PROPOSER_NAME = "rules-proposer"
PROPOSE_ATTEMPTS = 3


def metrics_source_from_env() -> MetricsSource:
    """`sample` unless ALLOCATOR_METRICS_SOURCE says `database` (production)."""
    value = (os.environ.get(METRICS_SOURCE_ENV) or "sample").strip().lower()
    for source in METRICS_SOURCES:
        if value == source:
            return source
    raise ValueError(f"{METRICS_SOURCE_ENV}={value!r} must be one of {list(METRICS_SOURCES)}")


def proposer_name(proposal: Proposal, llm_model: str = "") -> str:
    """Who the log names as the proposer: the model for an LLM answer, else the rules."""
    return f"llm:{llm_model}" if proposal.proposer == "llm" else RULES_PROPOSER_NAME


def read_metrics(
    engine: sa.Engine,
    day: date,
    in_force: store.StoredProposal,
    source: str,
    scenario: str = "auto",
) -> PlatformMetrics:
    """The day's metrics with the split in force. From the database there is no fallback: a
    missing day raises MetricsUnavailable saying how to import it."""
    if source == "database":
        try:
            return store.read_platform_metrics(engine, day, in_force)
        except store.MetricsUnavailable as exc:
            raise store.MetricsUnavailable(
                f"{exc}; the day's proposal is not made without them (no sample data in "
                f"production). Import them with `allocator metrics import --day {day} FILE`."
            ) from None
    if source != "sample":
        raise ValueError(f"metrics source {source!r} must be one of {list(METRICS_SOURCES)}")
    return sample_metrics(day, scenario, in_force.split, str(in_force.id))


@dataclass(frozen=True)
class DayOutcome:
    """The day's recorded answer, the split in force, the stored proposal (if one was needed)
    and what the auto-approve policy did with it."""

    record: store.DayRecord
    in_force: store.StoredProposal  # the split in force when the day was decided
    proposal: store.StoredProposal | None
    auto_approve: str
    review: store.ReviewOutcome | None = None


def max_step_of(proposer: RulesProposer | LLMProposer) -> Decimal:
    """The largest move per category every automatic proposal must respect."""
    return proposer.fallback.max_step if isinstance(proposer, LLMProposer) else proposer.max_step


def propose_day(
    engine: sa.Engine,
    day: date,
    *,
    proposer: RulesProposer | LLMProposer,
    read: Callable[[store.StoredProposal], PlatformMetrics],
    name: Callable[[Proposal], str] = proposer_name,
    auto_approve: AutoApprovePolicy | None = None,
    review_policy: ReviewPolicy | None = None,
    on_fallback: Callable[[str], None] | None = None,
) -> DayOutcome:
    """Decide `day` once. `read` gives the metrics against a split in force."""
    in_force = store.ensure_active_split(engine)
    existing = store.day_record(engine, day)
    if existing is not None:
        return _outcome(engine, existing, "the day was decided before")
    for _ in range(PROPOSE_ATTEMPTS):
        metrics = read(in_force)
        proposal = proposer.propose(metrics)
        if proposal.fallback_reason and on_fallback is not None:
            on_fallback(proposal.fallback_reason)
        try:
            record = store.record_day(
                engine,
                proposal,
                proposal_date=day,
                in_force=in_force,
                proposer_name=name(proposal),
                input_metrics=metrics.to_json(),
                bounds=proposer.bounds,
                max_step=max_step_of(proposer),
            )
        except store.SplitChanged:  # a review activated another split meanwhile: propose again
            in_force = store.ensure_active_split(engine)
            continue
        break
    else:
        raise store.SplitChanged(
            f"the split in force kept changing while {day} was proposed; run the day again"
        )
    if not record.created:
        return _outcome(engine, record, "the day was decided before")
    if record.outcome == "maintain":
        return _outcome(engine, record, "a maintain answer needs no review")
    if record.proposal_id is None:  # only a maintain answer is stored without a proposal
        raise RuntimeError(f"the {record.outcome!r} answer of {day} was stored without a proposal")
    stored = store.get_proposal(engine, record.proposal_id)
    policy = auto_approve or AutoApprovePolicy()
    decision = policy.decide(replace(proposal, warnings=stored.warnings), in_force.split)
    review = None
    reason = decision.reason
    if decision.approve:
        try:
            review = store.review_proposal(
                engine,
                stored.id,
                approve=True,
                by=AUTO_APPROVE_REVIEWER,
                notes=decision.reason,
                policy=review_policy,
                automatic=True,
            )
            if review.proposal.status != "active":
                reason += (
                    f"; counted as 1 of the {review.required} approvals this change needs, "
                    "the rest are people's"
                )
        except store.ReviewError as exc:  # reviewed by someone else, or a newer split meanwhile
            reason = f"auto-approval not applied: {exc}"
    return _outcome(engine, record, reason, review)


def _outcome(
    engine: sa.Engine,
    record: store.DayRecord,
    reason: str,
    review: store.ReviewOutcome | None = None,
) -> DayOutcome:
    proposal = (
        store.get_proposal(engine, record.proposal_id) if record.proposal_id is not None else None
    )
    # the split the day was decided against (legacy days without one: the one in force now)
    in_force = (
        store.get_proposal(engine, record.in_force_id)
        if record.in_force_id is not None
        else store.ensure_active_split(engine)
    )
    return DayOutcome(record, in_force, proposal, reason, review)
