"""The split in force: now, at a moment, and the fixed seed split that precedes every proposal.

A replaced split stays 'active' with `effective_until` set, so a moment's split is the active row
whose [effective_from, effective_until) contains it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa

from allocator_dagster.profit_split.governance import SYSTEM_ACTOR
from allocator_dagster.profit_split.policy import ProposedBy
from allocator_dagster.profit_split.split import SEED_SPLIT
from allocator_dagster.storage.profit_split.proposal_log import (
    StoredProposal,
    from_row,
    in_force_clause,
    log,
    record_event,
    serialised_transaction,
    split_values,
    utc_now,
)
from allocator_dagster.storage.profit_split.review import ReviewError

SEED_NAME = "seed"
# The fixed 80/15/3/2 split was in force before this graph existed: from the first partition on.
SEED_EFFECTIVE_FROM = datetime(2025, 1, 1, tzinfo=UTC)
SEED_REASONING = "The platform's fixed split (80/15/3/2), in force before any reviewed proposal."
# Serialises reviews on PostgreSQL (pg_advisory_xact_lock); any constant unique to this purpose.


def active_split(engine: sa.Engine) -> StoredProposal | None:
    """The split in force now (None only before the seed exists)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(log).where(in_force_clause())).first()
    return None if row is None else from_row(row)


def ensure_active_split(engine: sa.Engine, *, now: datetime | None = None) -> StoredProposal:
    """The split in force; seeds the fixed 80/15/3/2 split (proposer 'seed') when there is none."""
    current = active_split(engine)
    if current is not None:
        return current
    now = now or utc_now()
    effective_from = min(now, SEED_EFFECTIVE_FROM)
    with serialised_transaction(engine) as conn:
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
                    **split_values(SEED_SPLIT),
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
            record_event(
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
    return None if row is None else from_row(row)
