"""The rows of profit_allocation_log and their reads; what every writer of the tables shares.

A row is a `StoredProposal`; timestamps are aware UTC; percentages are stored plain ('80', not
'80.00'); every change appends its event to `protocol_activity` in its own transaction; writers
that must see each other's commits run in `serialised_transaction`.
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

from allocator_dagster.profit_split.policy import Proposal, ProposalStatus, ProposedBy, Proposer
from allocator_dagster.profit_split.split import CATEGORIES, Split
from allocator_dagster.storage import activity
from allocator_dagster.storage.activity import json_ready
from allocator_dagster.storage.db import write_transaction
from allocator_dagster.storage.schema import (
    SPLIT_STATUSES,
    profit_allocation_log,
    profit_proposal_reviews,
    profit_split_days,
)

log = profit_allocation_log
reviews = profit_proposal_reviews
days = profit_split_days
STATUSES = SPLIT_STATUSES  # for messages and choices
# Serialises reviews on PostgreSQL (pg_advisory_xact_lock); any constant unique to this purpose.
REVIEW_LOCK_KEY = 0x70726F6669745F31  # "profit_1"


class ProposalNotFound(LookupError):
    """No proposal with that id."""


def utc_now() -> datetime:
    """Aware UTC now: every timestamp in these tables is UTC."""
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
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


def from_row(row: sa.Row) -> StoredProposal:
    m = row._mapping
    return StoredProposal(
        id=m["id"],
        proposal_date=m["proposal_date"],
        timestamp=as_utc(m["timestamp"]),
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
        reviewed_at=as_utc(m["reviewed_at"]),
        review_notes=m["review_notes"],
        effective_from=as_utc(m["effective_from"]),
        effective_until=as_utc(m["effective_until"]),
        based_on_id=m["based_on_id"],
        legacy_id=m["legacy_id"],
    )


def split_values(split: Split) -> dict[str, Decimal]:
    return {f"{c}_pct": plain(v) for c, v in split.as_dict().items()}


@contextmanager
def serialised_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
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


def record_event(
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


def proposal_payload(proposal: Proposal | StoredProposal, **extra: Any) -> dict[str, Any]:
    return {
        "split": proposal.split.to_json(),
        "confidence": proposal.confidence,
        "should_rebalance": proposal.should_rebalance,
        "proposer": proposal.proposer,
        **extra,
    }


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
    return from_row(row)


def find_proposal(engine: sa.Engine, reference: str) -> StoredProposal:
    """A proposal by its UUID, a unique prefix of it (at least 4 hex digits), or its legacy
    integer id (rows made before ids were UUIDs; a legacy id wins over a prefix of digits).
    ProposalNotFound names what was looked for."""
    text = reference.strip().lower()
    try:
        return get_proposal(engine, uuid.UUID(text))
    except ValueError:
        pass
    if text.isascii() and text.isdigit() and len(text) < 10:  # int() refuses '²'
        with engine.connect() as conn:
            row = conn.execute(sa.select(log).where(log.c.legacy_id == int(text))).first()
        if row is not None:
            return from_row(row)
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
        return [from_row(row) for row in conn.execute(query)]


def in_force_clause() -> sa.ColumnElement[bool]:
    return sa.and_(log.c.status == "active", log.c.effective_until.is_(None))


def open_proposals(engine: sa.Engine) -> list[StoredProposal]:
    """Proposals waiting for a review, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(log).where(log.c.status == "proposed").order_by(log.c.timestamp, log.c.id)
        )
        return [from_row(row) for row in rows]


def as_decimal(value: Any) -> Decimal:
    """Floats from REAL columns as the shortest decimal that prints the same (85.3 -> 85.3)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))
