"""The log holds: nothing is ever deleted, one split in force, the activity log append-only."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from allocator_dagster.profit_split.split import Split
from allocator_dagster.storage import profit_split as store
from allocator_dagster.storage.schema import profit_allocation_log, protocol_activity
from allocator_dagster_tests.support.profit_split import (
    SMALL,
    VALID,
    approve,
    assert_consistent_history,
    events,
    propose,
    statuses,
)

D = Decimal
log = profit_allocation_log


def test_nothing_is_ever_deleted(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    p = [propose(engine, Split(D(80 - i), D(15 + i), D(3), D(2)), by=f"p{i}") for i in range(1, 4)]
    approve(engine, p[0], by="r")  # closes p[1] and p[2] as stale
    p3 = propose(engine, SMALL, by="p4")
    store.review_proposal(engine, p3.id, approve=False, by="r")
    p4 = propose(engine, VALID, by="p5")
    assert statuses(engine) == {
        seed.id: "active",
        p[0].id: "active",
        p[1].id: "rejected",
        p[2].id: "rejected",
        p3.id: "rejected",
        p4.id: "proposed",
    }
    assert [x.id for x in store.list_proposals(engine, status="proposed")] == [p4.id]
    assert [x.id for x in store.list_proposals(engine, limit=2)] == [p4.id, p3.id]
    assert_consistent_history(engine)


def test_the_database_allows_only_one_split_in_force(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    proposal = propose(engine)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            log.update()
            .where(log.c.id == proposal.id)
            .values(status="active", effective_from=datetime.now(UTC))
        )
    assert statuses(engine) == {seed.id: "active", proposal.id: "proposed"}


@pytest.mark.parametrize("statement", ["update", "delete"])
def test_the_database_refuses_to_change_the_activity_log(engine: sa.Engine, statement: str) -> None:
    store.ensure_active_split(engine)
    before = events(engine)
    change = (
        protocol_activity.update().values(actor="mallory")
        if statement == "update"
        else protocol_activity.delete()
    )
    with (
        pytest.raises(sa.exc.DatabaseError, match="protocol_activity is append-only"),
        engine.begin() as conn,
    ):
        conn.execute(change)
    assert events(engine) == before


@pytest.mark.parametrize("reference", ["²", "1²", "\x00", "no-such-id"])
def test_a_reference_that_is_no_id_is_not_found(engine: sa.Engine, reference: str) -> None:
    propose(engine)
    with pytest.raises(store.ProposalNotFound, match="no proposal with id"):
        store.find_proposal(engine, reference)
