"""Reads and writes of the profit-split tables: proposals, their review, metrics, distributions.

`profit_allocation_log` follows the specification: UUID ids, `status` proposed/active/rejected,
`proposed_by` ai/manual/system, and a replaced split stays 'active' with `effective_until` set.
Nothing in it is ever deleted. Every change also appends its event to `protocol_activity` in the
same transaction. Reviews are serialised: on PostgreSQL by a transaction-scoped advisory lock
taken before anything is read, on SQLite by BEGIN IMMEDIATE (the database's write lock).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, overload

import sqlalchemy as sa

from allocator_dagster.profit_split.governance import (
    AUTO_APPROVE_REVIEWER,
    RESERVED_NAMES,
    SYSTEM_ACTOR,
    ReviewPolicy,
    check_name,
    name_key,
)
from allocator_dagster.profit_split.metrics import (
    CommunityGrowth,
    DaoTreasury,
    EngagementMetrics,
    PlatformMetrics,
    TokenPerformance,
)
from allocator_dagster.profit_split.metrics_file import DayMetrics
from allocator_dagster.profit_split.policy import (
    DEFAULT_BOUNDS,
    CategoryBounds,
    Proposal,
    ProposalStatus,
    ProposedBy,
    Proposer,
)
from allocator_dagster.profit_split.split import CATEGORIES, SEED_SPLIT, Split
from allocator_dagster.profit_split.validation import ensure_valid
from allocator_dagster.storage import activity
from allocator_dagster.storage.activity import json_ready
from allocator_dagster.storage.db import write_transaction
from allocator_dagster.storage.schema import (
    SPLIT_STATUSES,
    community_growth_daily,
    dao_treasury_daily,
    platform_engagement_daily,
    profit_allocation_log,
    profit_distributions,
    profit_proposal_reviews,
    profit_split_days,
    token_performance_daily,
)

log = profit_allocation_log
reviews = profit_proposal_reviews
days = profit_split_days
STATUSES = SPLIT_STATUSES  # for messages and choices
SEED_NAME = "seed"
# The fixed 80/15/3/2 split was in force before this graph existed: from the first partition on.
SEED_EFFECTIVE_FROM = datetime(2025, 1, 1, tzinfo=UTC)
SEED_REASONING = "The platform's fixed split (80/15/3/2), in force before any reviewed proposal."
# Serialises reviews on PostgreSQL (pg_advisory_xact_lock); any constant unique to this purpose.
REVIEW_LOCK_KEY = 0x70726F6669745F31  # "profit_1"


class ProposalNotFound(LookupError):
    """No proposal with that id."""


class ReviewError(RuntimeError):
    """A review the rules forbid; the message says which rule and what to do."""


class MetricsUnavailable(LookupError):
    """The metrics tables have no row for the day; the message names the tables."""


class SplitChanged(RuntimeError):
    """The split in force changed between reading it and storing a proposal made against it."""


def utc_now() -> datetime:
    """Aware UTC now: every timestamp in these tables is UTC."""
    return datetime.now(UTC)


@overload
def _utc(value: datetime) -> datetime: ...
@overload
def _utc(value: None) -> None: ...
def _utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything stored here is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def plain(value: Decimal) -> Decimal:
    """80.00 -> 80, 77.10 -> 77.1: stored this way the specification's split text is '80/15/3/2'."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


@dataclass(frozen=True)
class StoredProposal:
    """One row of profit_allocation_log."""

    id: uuid.UUID
    proposal_date: date
    timestamp: datetime
    proposer: Proposer
    proposer_name: str
    proposed_by: ProposedBy
    status: ProposalStatus
    split: Split
    confidence: Decimal
    should_rebalance: bool
    reasoning: str
    warnings: tuple[str, ...]
    input_metrics: dict[str, Any]
    fallback_reason: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_notes: str | None
    effective_from: datetime | None
    effective_until: datetime | None
    based_on_id: uuid.UUID | None
    legacy_id: int | None

    @property
    def in_force(self) -> bool:
        """Active and not replaced: the split that applies now."""
        return self.status == "active" and self.effective_until is None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (Decimals, times and ids as strings), for the CLI and job outputs."""
        data = {k: v for k, v in vars(self).items() if k != "split"}
        data["split"] = self.split.to_json()
        return json_ready(data)


def _from_row(row: sa.Row) -> StoredProposal:
    m = row._mapping
    return StoredProposal(
        id=m["id"],
        proposal_date=m["proposal_date"],
        timestamp=_utc(m["timestamp"]),
        proposer=Proposer(m["proposer"]),
        proposer_name=m["proposer_name"],
        proposed_by=ProposedBy(m["proposed_by"]),
        status=ProposalStatus(m["status"]),
        split=Split(**{c: m[f"{c}_pct"] for c in CATEGORIES}),
        confidence=m["confidence"],
        should_rebalance=bool(m["should_rebalance"]),
        reasoning=m["reasoning"],
        warnings=tuple(m["warnings"] or ()),
        input_metrics=dict(m["input_metrics"] or {}),
        fallback_reason=m["fallback_reason"],
        reviewed_by=m["reviewed_by"],
        reviewed_at=_utc(m["reviewed_at"]),
        review_notes=m["review_notes"],
        effective_from=_utc(m["effective_from"]),
        effective_until=_utc(m["effective_until"]),
        based_on_id=m["based_on_id"],
        legacy_id=m["legacy_id"],
    )


def _split_values(split: Split) -> dict[str, Decimal]:
    return {f"{c}_pct": plain(v) for c, v in split.as_dict().items()}


@contextmanager
def _serialised_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that runs alone among the profit-split writers that use it.

    SQLite: the database's write lock from the first statement (`write_transaction`).
    PostgreSQL: a transaction-scoped advisory lock taken before any read, so every statement
    after it sees what earlier reviews committed (row locks alone would not show a split that
    another review activated meanwhile).
    """
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(REVIEW_LOCK_KEY)))
        yield conn


def _record(
    conn: sa.Connection,
    event: str,
    *,
    actor: str,
    subject: object,
    payload: Mapping[str, Any],
    at: datetime,
    subject_type: str = "proposal",
) -> None:
    activity.record(
        conn,
        event,
        actor=actor,
        subject_type=subject_type,
        subject_id=subject,
        payload=payload,
        at=at,
    )


def _proposal_payload(proposal: Proposal | StoredProposal, **extra: Any) -> dict[str, Any]:
    return {
        "split": proposal.split.to_json(),
        "confidence": proposal.confidence,
        "should_rebalance": proposal.should_rebalance,
        "proposer": proposal.proposer,
        **extra,
    }


# ------------------------------------------------------------------------------ proposals


def _insert_proposal(
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
            **_split_values(proposal.split),
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
    payload = _proposal_payload(
        proposal,
        day=proposal_date,
        based_on_id=based_on_id,
        fallback_reason=proposal.fallback_reason,
    )
    _record(conn, "proposal_stored", actor=proposer_name, subject=new_id, payload=payload, at=at)
    if proposal.warnings:
        _record(
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
        new_id = _insert_proposal(
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
        decided_at=_utc(m["decided_at"]),
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
        with _serialised_transaction(engine) as conn:
            existing = conn.execute(
                sa.select(days).where(days.c.proposal_date == proposal_date)
            ).first()
            if existing is not None:
                return _day_from_row(existing, created=False)
            current = conn.execute(sa.select(log.c.id).where(_in_force_clause())).scalar()
            if current != in_force.id:
                raise SplitChanged(
                    f"the split in force changed from {in_force.id} to {current} while the "
                    f"proposal for {proposal_date} was made"
                )
            proposal_id = None
            if proposal.should_rebalance:
                proposal_id = _insert_proposal(
                    conn,
                    proposal,
                    proposal_date=proposal_date,
                    proposer_name=proposer_name,
                    input_metrics=input_metrics,
                    based_on_id=in_force.id,
                    at=at,
                )
            else:
                _record(
                    conn,
                    "proposal_maintained",
                    actor=proposer_name,
                    subject=proposal_date,
                    subject_type="day",
                    payload=_proposal_payload(
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


_UUID_PREFIX = re.compile(r"^[0-9a-f]{4,32}$")


def get_proposal(engine: sa.Engine, proposal_id: uuid.UUID | str) -> StoredProposal:
    """One proposal by id; ProposalNotFound if it does not exist."""
    if not isinstance(proposal_id, uuid.UUID):
        try:
            proposal_id = uuid.UUID(str(proposal_id))
        except ValueError:
            raise ProposalNotFound(f"{proposal_id!r} is not a proposal id (a UUID)") from None
    with engine.connect() as conn:
        row = conn.execute(sa.select(log).where(log.c.id == proposal_id)).first()
    if row is None:
        raise ProposalNotFound(f"proposal {proposal_id} does not exist")
    return _from_row(row)


def find_proposal(engine: sa.Engine, reference: str) -> StoredProposal:
    """A proposal by its UUID, a unique prefix of it (at least 4 hex digits), or its legacy
    integer id (rows made before ids were UUIDs; a legacy id wins over a prefix of digits).
    ProposalNotFound names what was looked for."""
    text = reference.strip().lower()
    try:
        return get_proposal(engine, uuid.UUID(text))
    except ValueError:
        pass
    if text.isdigit() and len(text) < 10:
        with engine.connect() as conn:
            row = conn.execute(sa.select(log).where(log.c.legacy_id == int(text))).first()
        if row is not None:
            return _from_row(row)
    hex_text = text.replace("-", "")
    if _UUID_PREFIX.match(hex_text):
        candidates = _rows_with_prefix(engine, hex_text)
        if len(candidates) > 1:
            raise ProposalNotFound(f"{reference!r} matches several proposals; give more of the id")
        if candidates:
            return candidates[0]
    raise ProposalNotFound(f"no proposal with id {reference!r}")


def _rows_with_prefix(engine: sa.Engine, hex_prefix: str) -> list[StoredProposal]:
    """Proposals whose id starts with `hex_prefix`: compared in Python, the log is small (one
    row a day) and the UUID's text form differs between PostgreSQL and SQLite."""
    with engine.connect() as conn:
        ids = [i for (i,) in conn.execute(sa.select(log.c.id)) if i.hex.startswith(hex_prefix)]
    return [get_proposal(engine, i) for i in ids[:2]]


def list_proposals(
    engine: sa.Engine, *, status: str | None = None, limit: int = 50
) -> list[StoredProposal]:
    """Newest first, optionally only one status."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    query = sa.select(log).order_by(log.c.timestamp.desc(), log.c.id).limit(limit)
    if status is not None:
        query = query.where(log.c.status == status)
    with engine.connect() as conn:
        return [_from_row(row) for row in conn.execute(query)]


def _in_force_clause() -> sa.ColumnElement[bool]:
    return sa.and_(log.c.status == "active", log.c.effective_until.is_(None))


def active_split(engine: sa.Engine) -> StoredProposal | None:
    """The split in force now (None only before the seed exists)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(log).where(_in_force_clause())).first()
    return None if row is None else _from_row(row)


def ensure_active_split(engine: sa.Engine, *, now: datetime | None = None) -> StoredProposal:
    """The split in force; seeds the fixed 80/15/3/2 split (proposer 'seed') when there is none."""
    current = active_split(engine)
    if current is not None:
        return current
    now = now or utc_now()
    effective_from = min(now, SEED_EFFECTIVE_FROM)
    with _serialised_transaction(engine) as conn:
        # Only when no split was ever active: after a history exists, nothing is re-seeded.
        exists = conn.execute(sa.select(log.c.id).where(log.c.status == "active")).first()
        if exists is None:
            seed_id = uuid.uuid4()
            conn.execute(
                log.insert().values(
                    id=seed_id,
                    timestamp=now,
                    status="active",
                    proposed_by=ProposedBy.SYSTEM,
                    **_split_values(SEED_SPLIT),
                    reasoning=SEED_REASONING,
                    confidence=Decimal(1),
                    input_metrics={"initial": True},
                    reviewed_at=now,
                    reviewed_by=SYSTEM_ACTOR,
                    effective_from=effective_from,
                    proposal_date=effective_from.date(),
                    proposer="seed",
                    proposer_name=SEED_NAME,
                    should_rebalance=False,
                    warnings=[],
                )
            )
            _record(
                conn,
                "activation",
                actor=SYSTEM_ACTOR,
                subject=seed_id,
                payload={
                    "split": SEED_SPLIT.to_json(),
                    "effective_from": effective_from,
                    "seed": True,
                },
                at=now,
            )
    current = active_split(engine)
    if current is None:
        raise ReviewError("splits were active before but none is in force now; check the log")
    return current


def split_in_force(engine: sa.Engine, at: datetime) -> StoredProposal | None:
    """The split whose effective range [from, until) contains `at`."""
    at = at.astimezone(UTC)
    query = (
        sa.select(log)
        .where(
            log.c.status == "active",
            log.c.effective_from <= at,
            sa.or_(log.c.effective_until.is_(None), log.c.effective_until > at),
        )
        .order_by(log.c.effective_from.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _from_row(row)


# ------------------------------------------------------------------------------ reviews


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
    with _serialised_transaction(engine) as conn:
        result = _review_locked(
            conn,
            target,
            approve,
            reviewer,
            notes.strip() or None,
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
    proposal = _from_row(row)
    if proposal.status != "proposed":
        why = f" ({proposal.review_notes})" if proposal.reviewed_by == SYSTEM_ACTOR else ""
        raise ReviewError(
            f"proposal {proposal.id} is {proposal.status}{why}; only a proposed proposal can be "
            "reviewed, once"
        )
    in_force_row = conn.execute(sa.select(log).where(_in_force_clause())).first()
    in_force = _from_row(in_force_row) if in_force_row is not None else None
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
        _record(
            conn,
            "review",
            actor=reviewer,
            subject=proposal_id,
            payload={"decision": "reject", "notes": notes},
            at=now,
        )
        _record(
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
    _record(
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
    _record(
        conn,
        "deactivation",
        actor=reviewer,
        subject=in_force.id,
        payload={"effective_until": effective_from, "replaced_by": proposal_id},
        at=now,
    )
    _record(
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
        _record(
            conn,
            "proposal_rejected",
            actor=SYSTEM_ACTOR,
            subject=stale_id,
            payload={"reason": reason, "stale": True, "in_force": new_id},
            at=now,
        )
        closed.append(stale_id)
    return closed


def open_proposals(engine: sa.Engine) -> list[StoredProposal]:
    """Proposals waiting for a review, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(log).where(log.c.status == "proposed").order_by(log.c.timestamp, log.c.id)
        )
        return [_from_row(row) for row in rows]


# ------------------------------------------------------------------------------ metrics


def _dec(value: Any) -> Decimal:
    """Floats from REAL columns as the shortest decimal that prints the same (85.3 -> 85.3)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def read_platform_metrics(engine: sa.Engine, day: date, current: StoredProposal) -> PlatformMetrics:
    """The day's rows of the four metrics tables, with the split in force."""
    tables = {
        "engagement": platform_engagement_daily,
        "token": token_performance_daily,
        "treasury": dao_treasury_daily,
        "community": community_growth_daily,
    }
    rows: dict[str, sa.RowMapping] = {}
    with engine.connect() as conn:
        for name, table in tables.items():
            row = conn.execute(sa.select(table).where(table.c.metric_date == day)).first()
            if row is not None:
                rows[name] = row._mapping
    missing = [tables[name].name for name in tables if name not in rows]
    if missing:
        raise MetricsUnavailable(f"no metrics for {day.isoformat()} in {', '.join(missing)}")
    e, t, d, c = (rows[k] for k in ("engagement", "token", "treasury", "community"))
    return PlatformMetrics(
        metric_date=day,
        engagement=EngagementMetrics(
            wallet_connections=e["wallet_connections"],
            trades=e["trades"],
            page_views=e["page_views"],
            engagement_score=_dec(e["engagement_score"]),
        ),
        token=TokenPerformance(
            price_usd=_dec(t["price_usd"]),
            price_trend_pct_7d=_dec(t["price_trend_pct_7d"]),
            volume_usd=_dec(t["volume_usd"]),
            holders=t["holders"],
            holder_growth_pct_7d=_dec(t["holder_growth_pct_7d"]),
        ),
        treasury=DaoTreasury(
            balance_usd=_dec(d["balance_usd"]), monthly_burn_usd=_dec(d["monthly_burn_usd"])
        ),
        community=CommunityGrowth(
            members=c["members"],
            new_members_7d=c["new_members_7d"],
            growth_pct_7d=_dec(c["growth_pct_7d"]),
        ),
        current_split=current.split,
        current_proposal_id=str(current.id),
        source="database",
    )


class MetricsExist(RuntimeError):
    """The day already has metrics and replacing them was not asked for."""


METRICS_TABLES = (
    platform_engagement_daily,
    token_performance_daily,
    dao_treasury_daily,
    community_growth_daily,
)


def write_platform_metrics(
    engine: sa.Engine, metrics: PlatformMetrics | DayMetrics, *, replace: bool = True
) -> None:
    """Write the day's rows of the four metrics tables in one transaction; with `replace` False
    a day that already has any of them raises MetricsExist and nothing is written."""
    day = metrics.metric_date
    e, t, d, c = metrics.engagement, metrics.token, metrics.treasury, metrics.community
    rows: dict[sa.Table, dict[str, Any]] = {
        platform_engagement_daily: {
            "wallet_connections": e.wallet_connections,
            "trades": e.trades,
            "page_views": e.page_views,
            "engagement_score": float(e.engagement_score),
        },
        token_performance_daily: {
            "price_usd": float(t.price_usd),
            "price_trend_pct_7d": float(t.price_trend_pct_7d),
            "volume_usd": float(t.volume_usd),
            "holders": t.holders,
            "holder_growth_pct_7d": float(t.holder_growth_pct_7d),
        },
        dao_treasury_daily: {"balance_usd": d.balance_usd, "monthly_burn_usd": d.monthly_burn_usd},
        community_growth_daily: {
            "members": c.members,
            "new_members_7d": c.new_members_7d,
            "growth_pct_7d": float(c.growth_pct_7d),
        },
    }
    with engine.begin() as conn:
        if not replace:
            present = [
                table.name
                for table in rows
                if conn.execute(
                    sa.select(table.c.metric_date).where(table.c.metric_date == day)
                ).first()
            ]
            if present:
                raise MetricsExist(
                    f"{day} already has metrics in {', '.join(present)}; give --replace to "
                    "replace them"
                )
        for table, values in rows.items():
            conn.execute(table.delete().where(table.c.metric_date == day))
            conn.execute(table.insert().values(metric_date=day, **values))


# ------------------------------------------------------------------------------ profit


def write_distribution(
    engine: sa.Engine,
    day: date,
    *,
    proposal_id: uuid.UUID,
    profit_usd: Decimal,
    split: Split,
    amounts: Mapping[str, Decimal],
    profit_source: str,
    created_at: datetime | None = None,
    actor: str = SYSTEM_ACTOR,
) -> None:
    """Replace the day's distribution (four rows) and record the event, in one transaction."""
    if set(amounts) != set(CATEGORIES):
        raise ValueError(f"amounts must cover exactly {CATEGORIES}")
    if sum(amounts.values(), Decimal(0)) != profit_usd:
        raise ValueError("the amounts do not add up to the profit")
    created_at = created_at or utc_now()
    rows = [
        {
            "distribution_date": day,
            "category": category,
            "proposal_id": proposal_id,
            "profit_usd": profit_usd,
            "pct": getattr(split, category),
            "amount_usd": amounts[category],
            "profit_source": profit_source,
            "created_at": created_at,
        }
        for category in CATEGORIES
    ]
    with engine.begin() as conn:
        conn.execute(
            profit_distributions.delete().where(profit_distributions.c.distribution_date == day)
        )
        conn.execute(profit_distributions.insert(), rows)
        _record(
            conn,
            "distribution",
            actor=actor,
            subject=day,
            subject_type="distribution",
            payload={
                "split_id": proposal_id,
                "split": split.to_json(),
                "profit_usd": profit_usd,
                "profit_source": profit_source,
                "amounts": dict(amounts),
            },
            at=created_at,
        )


def read_distribution(engine: sa.Engine, day: date) -> list[dict[str, Any]]:
    """The day's distribution rows in category order (empty if none)."""
    order = sa.case({c: i for i, c in enumerate(CATEGORIES)}, value=profit_distributions.c.category)
    query = (
        sa.select(profit_distributions)
        .where(profit_distributions.c.distribution_date == day)
        .order_by(order)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def split_history(
    engine: sa.Engine, first: date, last: date
) -> list[tuple[date, dict[str, Decimal]]]:
    """The split used by each distributed day from `first` to `last` (category -> percent)."""
    query = sa.select(
        profit_distributions.c.distribution_date,
        profit_distributions.c.category,
        profit_distributions.c.pct,
    ).where(profit_distributions.c.distribution_date.between(first, last))
    days: dict[date, dict[str, Decimal]] = {}
    with engine.connect() as conn:
        for day, category, pct in conn.execute(query):
            days.setdefault(day, {})[category] = _dec(pct)
    return sorted(days.items())
