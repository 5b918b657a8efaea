"""Reviews of a proposal: approvals, rejections, activation, and closing the stale proposals.

Reviews are serialised (see `serialised_transaction`): two racing approvals never activate two
splits, and a proposal made against a split no longer in force is never approved.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from allocator_dagster.profit_split.governance import (
    AUTO_APPROVE_REVIEWER,
    RESERVED_NAMES,
    SYSTEM_ACTOR,
    ReviewPolicy,
    check_name,
    check_notes,
    name_key,
)
from allocator_dagster.profit_split.split import Split
from allocator_dagster.storage.profit_split.proposal_log import (
    ProposalNotFound,
    StoredProposal,
    from_row,
    get_proposal,
    in_force_clause,
    log,
    record_event,
    reviews,
    serialised_transaction,
    utc_now,
)


class ReviewError(RuntimeError):
    """A review the rules forbid; the message says which rule and what to do."""


@dataclass(frozen=True)
class ReviewOutcome:
    """What a review did: the proposal afterwards, its approvals so far and how many it needs,
    the split it replaced (if it was activated) and the open proposals closed as stale."""

    proposal: StoredProposal
    approvals: tuple[str, ...]
    required: int
    replaced: StoredProposal | None
    closed: tuple[StoredProposal, ...]

    @property
    def changed(self) -> tuple[StoredProposal, ...]:
        """Every proposal whose status or dates this review changed."""
        return (self.proposal, *((self.replaced,) if self.replaced else ()), *self.closed)


def approvals_of(engine: sa.Engine, proposal_id: uuid.UUID) -> tuple[str, ...]:
    """The reviewers who approved the proposal so far, in order."""
    with engine.connect() as conn:
        return _approvals(conn, proposal_id)


def _approvals(conn: sa.Connection, proposal_id: uuid.UUID) -> tuple[str, ...]:
    query = (
        sa.select(reviews.c.reviewer)
        .where(reviews.c.proposal_id == proposal_id, reviews.c.decision == "approve")
        .order_by(reviews.c.reviewed_at, reviews.c.reviewer)
    )
    return tuple(conn.execute(query).scalars())


def review_proposal(
    engine: sa.Engine,
    proposal_id: uuid.UUID | str,
    *,
    approve: bool,
    by: str,
    notes: str = "",
    now: datetime | None = None,
    policy: ReviewPolicy | None = None,
    automatic: bool = False,
) -> ReviewOutcome:
    """One person's approval or rejection of a 'proposed' proposal.

    - a rejection by an allowed reviewer rejects the proposal;
    - an approval counts once per distinct reviewer; the proposer's never counts; the proposal
      is activated when it has the approvals the policy asks for its largest move;
    - approving a proposal made against a split that is no longer in force is refused, naming
      the split in force; activating a split closes every open proposal made against an older one.
    `automatic` marks the auto-approve policy (its reviewer name is reserved for it).
    """
    policy = policy or ReviewPolicy()
    try:
        reviewer = check_name(by)
        stored_notes = check_notes(notes)
    except ValueError as exc:
        raise ReviewError(str(exc)) from None
    if automatic != (reviewer == AUTO_APPROVE_REVIEWER):
        raise ReviewError(f"{reviewer!r} is a reserved name; review under your own name")
    if name_key(reviewer) in {name_key(n) for n in RESERVED_NAMES} and not automatic:
        raise ReviewError(f"{reviewer!r} is a reserved name; review under your own name")
    if not automatic and not policy.may_review(reviewer):
        raise ReviewError(
            f"{reviewer} is not one of the configured reviewers ({policy.describe()})"
        )
    target = get_proposal(engine, proposal_id).id
    with serialised_transaction(engine) as conn:
        result = _review_locked(
            conn,
            target,
            approve,
            reviewer,
            stored_notes,
            now or utc_now(),
            policy,
            automatic,
        )
    approvals, required, replaced_id, closed_ids = result
    return ReviewOutcome(
        proposal=get_proposal(engine, target),
        approvals=approvals,
        required=required,
        replaced=get_proposal(engine, replaced_id) if replaced_id else None,
        closed=tuple(get_proposal(engine, i) for i in closed_ids),
    )


def _review_locked(
    conn: sa.Connection,
    proposal_id: uuid.UUID,
    approve: bool,
    reviewer: str,
    notes: str | None,
    now: datetime,
    policy: ReviewPolicy,
    automatic: bool,
) -> tuple[tuple[str, ...], int, uuid.UUID | None, list[uuid.UUID]]:
    row = conn.execute(sa.select(log).where(log.c.id == proposal_id)).first()
    if row is None:
        raise ProposalNotFound(f"proposal {proposal_id} does not exist")
    proposal = from_row(row)
    if proposal.status != "proposed":
        why = f" ({proposal.review_notes})" if proposal.reviewed_by == SYSTEM_ACTOR else ""
        raise ReviewError(
            f"proposal {proposal.id} is {proposal.status}{why}; only a proposed proposal can be "
            "reviewed, once"
        )
    in_force_row = conn.execute(sa.select(log).where(in_force_clause())).first()
    in_force = from_row(in_force_row) if in_force_row is not None else None
    approvals = _approvals(conn, proposal_id)
    change = (
        proposal.split.max_change_from(in_force.split) if in_force is not None else Decimal(100)
    )
    required = policy.required_approvals(change)
    if not approve:
        earlier = [a for a in approvals if name_key(a) == name_key(reviewer)]
        if earlier:  # they approved before and now reject: their review changes
            conn.execute(
                reviews.update()
                .where(reviews.c.proposal_id == proposal_id, reviews.c.reviewer == earlier[0])
                .values(decision="reject", reviewed_at=now, notes=notes)
            )
        else:
            _add_review(conn, proposal_id, reviewer, "reject", notes, now)
        conn.execute(
            log.update()
            .where(log.c.id == proposal_id)
            .values(status="rejected", reviewed_by=reviewer, reviewed_at=now, review_notes=notes)
        )
        record_event(
            conn,
            "review",
            actor=reviewer,
            subject=proposal_id,
            payload={"decision": "reject", "notes": notes},
            at=now,
        )
        record_event(
            conn,
            "proposal_rejected",
            actor=reviewer,
            subject=proposal_id,
            payload={"reason": notes or "rejected by a reviewer"},
            at=now,
        )
        return approvals, required, None, []
    if name_key(reviewer) == name_key(proposal.proposer_name):
        raise ReviewError(f"{reviewer} proposed {proposal.id} and cannot approve it")
    if name_key(reviewer) in {name_key(a) for a in approvals}:
        raise ReviewError(
            f"{reviewer} already approved proposal {proposal.id}; it needs {required} distinct "
            f"approvals and has {len(approvals)}"
        )
    if in_force is None or proposal.based_on_id != in_force.id:
        made_against = proposal.based_on_id or "an unknown split"
        in_force_text = (
            f"split {in_force.id} ({in_force.split.label()}, in force since "
            f"{in_force.effective_from.isoformat()})"
            if in_force is not None and in_force.effective_from is not None
            else "no split"
        )
        raise ReviewError(
            f"proposal {proposal.id} was made against split {made_against}, but {in_force_text} "
            "is in force now; it cannot be approved. Reject it, or propose again against the "
            "split in force."
        )
    _add_review(conn, proposal_id, reviewer, "approve", notes, now)
    approvals = (*approvals, reviewer)
    event = "auto_approval" if automatic else "review"
    record_event(
        conn,
        event,
        actor=reviewer,
        subject=proposal_id,
        payload={
            "decision": "approve",
            "notes": notes,
            "approvals": list(approvals),
            "required": required,
            "largest_change_points": change,
        },
        at=now,
    )
    if len(approvals) < required:
        return approvals, required, None, []
    # Never before the previous split started, even if the clock stepped back.
    effective_from = max(now, in_force.effective_from or now)
    conn.execute(log.update().where(log.c.id == in_force.id).values(effective_until=effective_from))
    conn.execute(
        log.update()
        .where(log.c.id == proposal_id)
        .values(
            status="active",
            effective_from=effective_from,
            reviewed_by=", ".join(approvals),
            reviewed_at=now,
            review_notes=notes,
        )
    )
    record_event(
        conn,
        "deactivation",
        actor=reviewer,
        subject=in_force.id,
        payload={"effective_until": effective_from, "replaced_by": proposal_id},
        at=now,
    )
    record_event(
        conn,
        "activation",
        actor=reviewer,
        subject=proposal_id,
        payload={
            "split": proposal.split.to_json(),
            "effective_from": effective_from,
            "approved_by": list(approvals),
            "replaces": in_force.id,
        },
        at=now,
    )
    closed = _close_stale(conn, proposal_id, proposal.split, effective_from, now)
    return approvals, required, in_force.id, closed


def _add_review(
    conn: sa.Connection,
    proposal_id: uuid.UUID,
    reviewer: str,
    decision: str,
    notes: str | None,
    now: datetime,
) -> None:
    conn.execute(
        reviews.insert().values(
            proposal_id=proposal_id,
            reviewer=reviewer,
            decision=decision,
            reviewed_at=now,
            notes=notes,
        )
    )


def _close_stale(
    conn: sa.Connection,
    new_id: uuid.UUID,
    new_split: Split,
    effective_from: datetime,
    now: datetime,
) -> list[uuid.UUID]:
    """Reject, as the system, every open proposal made against an older split than `new_id`."""
    stale = list(
        conn.execute(
            sa.select(log.c.id, log.c.based_on_id)
            .where(log.c.status == "proposed", log.c.id != new_id)
            .order_by(log.c.timestamp, log.c.id)
        )
    )
    closed: list[uuid.UUID] = []
    for stale_id, based_on_id in stale:
        if based_on_id == new_id:
            continue
        reason = (
            f"closed by the system: made against split {based_on_id or 'unknown'}, and split "
            f"{new_id} ({new_split.label()}) is in force since {effective_from.isoformat()}"
        )
        conn.execute(
            log.update()
            .where(log.c.id == stale_id)
            .values(
                status="rejected", reviewed_by=SYSTEM_ACTOR, reviewed_at=now, review_notes=reason
            )
        )
        record_event(
            conn,
            "proposal_rejected",
            actor=SYSTEM_ACTOR,
            subject=stale_id,
            payload={"reason": reason, "stale": True, "in_force": new_id},
            at=now,
        )
        closed.append(stale_id)
    return closed
