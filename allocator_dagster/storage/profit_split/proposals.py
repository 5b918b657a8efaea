"""New proposals: a manual one (`store_proposal`) and the automatic proposer's one answer a day.

A proposal is validated before it is stored and is stored as 'proposed'; a day's answer is
recorded once, also when runs of the same day race.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from allocator_dagster.profit_split.governance import check_name
from allocator_dagster.profit_split.policy import (
    DEFAULT_BOUNDS,
    CategoryBounds,
    Proposal,
    ProposedBy,
    Proposer,
)
from allocator_dagster.profit_split.validation import ensure_valid
from allocator_dagster.storage.activity import json_ready
from allocator_dagster.storage.profit_split.proposal_log import (
    StoredProposal,
    as_utc,
    days,
    get_proposal,
    in_force_clause,
    log,
    plain,
    proposal_payload,
    record_event,
    serialised_transaction,
    split_values,
    utc_now,
)


class SplitChanged(RuntimeError):
    """The split in force changed between reading it and storing a proposal made against it."""


def insert_proposal(
    conn: sa.Connection,
    proposal: Proposal,
    *,
    proposal_date: date,
    proposer_name: str,
    input_metrics: Mapping[str, Any],
    based_on_id: uuid.UUID | None,
    at: datetime,
) -> uuid.UUID:
    """The row and its events ('proposal_stored', and 'validation_warnings' if any)."""
    new_id = uuid.uuid4()
    conn.execute(
        log.insert().values(
            id=new_id,
            timestamp=at,
            status="proposed",
            proposed_by=ProposedBy.of(proposal.proposer),
            **split_values(proposal.split),
            reasoning=proposal.reasoning,
            confidence=plain(proposal.confidence),
            input_metrics=json_ready(dict(input_metrics)),
            proposal_date=proposal_date,
            proposer=proposal.proposer,
            proposer_name=proposer_name,
            should_rebalance=proposal.should_rebalance,
            warnings=list(proposal.warnings),
            fallback_reason=proposal.fallback_reason,
            based_on_id=based_on_id,
        )
    )
    payload = proposal_payload(
        proposal,
        day=proposal_date,
        based_on_id=based_on_id,
        fallback_reason=proposal.fallback_reason,
    )
    record_event(
        conn, "proposal_stored", actor=proposer_name, subject=new_id, payload=payload, at=at
    )
    if proposal.warnings:
        record_event(
            conn,
            "validation_warnings",
            actor=proposer_name,
            subject=new_id,
            payload={"warnings": list(proposal.warnings)},
            at=at,
        )
    return new_id


def store_proposal(
    engine: sa.Engine,
    proposal: Proposal,
    *,
    proposal_date: date,
    proposer_name: str,
    input_metrics: Mapping[str, Any],
    based_on: StoredProposal | None = None,
    bounds: CategoryBounds = DEFAULT_BOUNDS,
    max_step: Decimal | None = None,
    created_at: datetime | None = None,
) -> StoredProposal:
    """Validate `proposal` and store it as 'proposed' (a manual proposal, or a test's history).

    `based_on` is the split in force it was made against; approving it later requires that split
    to be still in force. Invalid proposals are never stored.
    """
    if proposal.proposer == Proposer.SEED:
        raise ValueError("the seed split is stored by ensure_active_split, not as a proposal")
    try:
        name = check_name(proposer_name, "proposer")
    except ValueError as exc:
        raise ValueError(f"proposed_by: {exc}") from None
    current = based_on.split if based_on is not None else None
    proposal = ensure_valid(proposal, bounds=bounds, current=current, max_step=max_step)
    with engine.begin() as conn:
        new_id = insert_proposal(
            conn,
            proposal,
            proposal_date=proposal_date,
            proposer_name=name,
            input_metrics=input_metrics,
            based_on_id=based_on.id if based_on is not None else None,
            at=created_at or utc_now(),
        )
    return get_proposal(engine, new_id)


@dataclass(frozen=True)
class DayRecord:
    """The automatic proposer's answer for one day: a proposal to review, or "maintain"."""

    proposal_date: date
    outcome: str  # 'proposed' or 'maintain'
    proposal_id: uuid.UUID | None
    in_force_id: uuid.UUID | None
    proposer: str
    confidence: Decimal
    reasoning: str
    fallback_reason: str | None
    input_metrics: dict[str, Any]
    decided_at: datetime
    created: bool  # False when an earlier run of the day had already decided it


def _day_from_row(row: sa.Row, created: bool) -> DayRecord:
    m = row._mapping
    return DayRecord(
        proposal_date=m["proposal_date"],
        outcome=m["outcome"],
        proposal_id=m["proposal_id"],
        in_force_id=m["in_force_id"],
        proposer=m["proposer"],
        confidence=m["confidence"],
        reasoning=m["reasoning"],
        fallback_reason=m["fallback_reason"],
        input_metrics=dict(m["input_metrics"] or {}),
        decided_at=as_utc(m["decided_at"]),
        created=created,
    )


def day_record(engine: sa.Engine, proposal_date: date) -> DayRecord | None:
    """The day's recorded answer, if the day was decided before (reviewed or not)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(days).where(days.c.proposal_date == proposal_date)).first()
    return None if row is None else _day_from_row(row, created=False)


def record_day(
    engine: sa.Engine,
    proposal: Proposal,
    *,
    proposal_date: date,
    in_force: StoredProposal,
    proposer_name: str,
    input_metrics: Mapping[str, Any],
    bounds: CategoryBounds = DEFAULT_BOUNDS,
    max_step: Decimal | None = None,
    decided_at: datetime | None = None,
) -> DayRecord:
    """Record the day's automatic answer once: a proposal to rebalance is stored as 'proposed';
    a "maintain" answer is recorded as such and waits for no review.

    A day that already has an answer keeps it (`created` False), also under concurrent runs.
    SplitChanged if `in_force` is no longer the split in force (propose again against the new one).
    """
    proposal = ensure_valid(proposal, bounds=bounds, current=in_force.split, max_step=max_step)
    at = decided_at or utc_now()
    try:
        with serialised_transaction(engine) as conn:
            existing = conn.execute(
                sa.select(days).where(days.c.proposal_date == proposal_date)
            ).first()
            if existing is not None:
                return _day_from_row(existing, created=False)
            current = conn.execute(sa.select(log.c.id).where(in_force_clause())).scalar()
            if current != in_force.id:
                raise SplitChanged(
                    f"the split in force changed from {in_force.id} to {current} while the "
                    f"proposal for {proposal_date} was made"
                )
            proposal_id = None
            if proposal.should_rebalance:
                proposal_id = insert_proposal(
                    conn,
                    proposal,
                    proposal_date=proposal_date,
                    proposer_name=proposer_name,
                    input_metrics=input_metrics,
                    based_on_id=in_force.id,
                    at=at,
                )
            else:
                record_event(
                    conn,
                    "proposal_maintained",
                    actor=proposer_name,
                    subject=proposal_date,
                    subject_type="day",
                    payload=proposal_payload(
                        proposal,
                        in_force_id=in_force.id,
                        reasoning=proposal.reasoning,
                        fallback_reason=proposal.fallback_reason,
                    ),
                    at=at,
                )
            conn.execute(
                days.insert().values(
                    proposal_date=proposal_date,
                    outcome="proposed" if proposal.should_rebalance else "maintain",
                    proposal_id=proposal_id,
                    in_force_id=in_force.id,
                    proposer=proposal.proposer,
                    confidence=plain(proposal.confidence),
                    reasoning=proposal.reasoning,
                    fallback_reason=proposal.fallback_reason,
                    input_metrics=json_ready(dict(input_metrics)),
                    decided_at=at,
                )
            )
    except sa.exc.IntegrityError:
        # Only possible on a concurrent first run of the same day: the other run's answer stands.
        record = day_record(engine, proposal_date)
        if record is None:
            raise
        return record
    record = day_record(engine, proposal_date)
    assert record is not None
    return DayRecord(**{**vars(record), "created": True})
