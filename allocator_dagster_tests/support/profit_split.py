"""Profit-split proposals for tests: a valid split, a small and a big move, a stored proposal
and its approval, and what the log and the transparency log hold."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from allocator_dagster.profit_split.policy import Proposal
from allocator_dagster.profit_split.split import Split
from allocator_dagster.storage import profit_split as store
from allocator_dagster.storage.activity import list_activity
from allocator_dagster.storage.schema import profit_allocation_log as log

D = Decimal
VALID = Split(D("77.10"), D("15.30"), D("4.80"), D("2.80"))
SMALL = Split(D(79), D(16), D(3), D(2))  # one point from the seed
BIG = Split(D(75), D(20), D(3), D(2))  # five points from the seed
DAY = date(2025, 3, 1)


def store_as(
    engine: sa.Engine,
    proposal: Proposal,
    *,
    by: str = "alice",
    day: date = DAY,
    based_on: store.StoredProposal | None = None,
    input_metrics: Mapping[str, Any] | None = None,
) -> store.StoredProposal:
    """`proposal` stored by `by`, made against `based_on` (the split in force when None)."""
    current = based_on or store.ensure_active_split(engine)
    return store.store_proposal(
        engine,
        proposal,
        proposal_date=day,
        proposer_name=by,
        input_metrics={"current_proposal_id": str(current.id)}
        if input_metrics is None
        else input_metrics,
        based_on=current,
    )


def propose(
    engine: sa.Engine,
    split: Split = VALID,
    by: str = "alice",
    day: date = DAY,
    based_on: store.StoredProposal | None = None,
) -> store.StoredProposal:
    """A manual proposal of `split`, stored as 'proposed'."""
    proposal = Proposal(split, D("0.750"), True, "manual test proposal", "manual")
    return store_as(engine, proposal, by=by, day=day, based_on=based_on)


def approve(engine: sa.Engine, proposal: store.StoredProposal, by: str = "bob", **kw):
    return store.review_proposal(engine, proposal.id, approve=True, by=by, **kw)


def statuses(engine: sa.Engine) -> dict[uuid.UUID, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(log.c.id, log.c.status)).all())


def events(engine: sa.Engine) -> list[tuple[str, str, str]]:
    """(event, actor, subject) of every activity row, in order."""
    return [(a.event_type, a.actor, a.subject_id) for a in list_activity(engine)]


def assert_consistent_history(engine: sa.Engine) -> list[store.StoredProposal]:
    """Exactly one split in force, and effective ranges that tile time without gaps or overlaps."""
    history = sorted(
        (p for p in store.list_proposals(engine, limit=1000) if p.effective_from is not None),
        key=lambda p: p.effective_from,
    )
    assert all(p.status == "active" for p in history)
    assert [p.in_force for p in history].count(True) == 1
    assert history[-1].in_force
    for before, after in zip(history, history[1:], strict=False):
        assert before.effective_until == after.effective_from
        assert before.effective_from <= before.effective_until
    return history
