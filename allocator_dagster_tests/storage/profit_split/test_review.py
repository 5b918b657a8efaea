"""Reviews: approve, reject, never by oneself, never against a split no longer in force, several
approvals for large changes, safe when reviews race; every step in the transparency log."""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from allocator_dagster.profit_split.governance import ReviewPolicy
from allocator_dagster.profit_split.policy import AUTO_APPROVE_REVIEWER
from allocator_dagster.profit_split.split import Split
from allocator_dagster.storage import profit_split as store
from allocator_dagster_tests.support.profit_split import (
    BIG,
    SMALL,
    VALID,
    approve,
    assert_consistent_history,
    events,
    propose,
)

D = Decimal


def test_approving_activates_and_ends_the_old_split_in_one_step(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    proposal = propose(engine)
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    outcome = approve(engine, proposal, notes="looks right", now=now)
    approved = outcome.proposal
    assert approved.status == "active" and approved.in_force
    assert approved.reviewed_by == "bob" and approved.review_notes == "looks right"
    assert approved.reviewed_at == now and approved.effective_from == now
    old = store.get_proposal(engine, seed.id)
    assert old.status == "active" and old.effective_until == now and not old.in_force
    assert outcome.replaced == old and outcome.approvals == ("bob",) and outcome.required == 1
    assert store.active_split(engine).id == proposal.id
    assert store.split_in_force(engine, now - timedelta(seconds=1)).id == seed.id
    assert store.split_in_force(engine, now).id == proposal.id
    assert_consistent_history(engine)
    assert events(engine)[-3:] == [
        ("review", "bob", str(proposal.id)),
        ("deactivation", "bob", str(seed.id)),
        ("activation", "bob", str(proposal.id)),
    ]


def test_rejecting_leaves_the_split_in_force(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    proposal = propose(engine)
    rejected = store.review_proposal(
        engine, proposal.id, approve=False, by="bob", notes="too big a move"
    ).proposal
    assert rejected.status == "rejected" and rejected.effective_from is None
    assert rejected.review_notes == "too big a move"
    assert store.active_split(engine).id == seed.id
    assert [e[0] for e in events(engine)[-2:]] == ["review", "proposal_rejected"]


@pytest.mark.parametrize(("first", "second"), [(True, True), (True, False), (False, True)])
def test_a_proposal_is_reviewed_once(engine: sa.Engine, first: bool, second: bool) -> None:
    proposal = propose(engine)
    store.review_proposal(engine, proposal.id, approve=first, by="bob")
    snapshot = store.get_proposal(engine, proposal.id)
    with pytest.raises(store.ReviewError, match="only a proposed proposal can be reviewed, once"):
        store.review_proposal(engine, proposal.id, approve=second, by="carol")
    assert store.get_proposal(engine, proposal.id) == snapshot


@pytest.mark.parametrize("reviewer", ["alice", "Alice", "  alice ", "ALICE\u200b"])
def test_nobody_approves_their_own_proposal(engine: sa.Engine, reviewer: str) -> None:
    proposal = propose(engine, by="alice")
    with pytest.raises(store.ReviewError, match="cannot approve"):
        approve(engine, proposal, by=reviewer)
    assert store.get_proposal(engine, proposal.id).status == "proposed"
    # withdrawing one's own proposal is allowed
    assert (
        store.review_proposal(engine, proposal.id, approve=False, by=reviewer).proposal.status
        == "rejected"
    )


def test_review_errors(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    with pytest.raises(store.ProposalNotFound):
        store.review_proposal(engine, uuid.uuid4(), approve=True, by="bob")
    with pytest.raises(store.ReviewError, match="is active"):
        store.review_proposal(engine, seed.id, approve=False, by="bob")
    proposal = propose(engine)
    with pytest.raises(store.ReviewError, match="name is empty"):
        approve(engine, proposal, by=" ")
    for reserved in ("system", "auto-approve-policy", "Seed"):
        with pytest.raises(store.ReviewError, match="reserved name"):
            approve(engine, proposal, by=reserved)
    with pytest.raises(store.ProposalNotFound):
        store.get_proposal(engine, "12")
    with pytest.raises(store.ProposalNotFound, match="no proposal"):
        store.find_proposal(engine, "ffff")


# ------------------------------------------------------------------------------ stale approvals


def test_approving_against_a_split_no_longer_in_force_is_refused(engine: sa.Engine) -> None:
    """The operator's afternoon: proposal A made against the seed, B too; B is approved; then
    approving A would silently replace B's split. It is refused, naming the split in force."""
    seed = store.ensure_active_split(engine)
    a = propose(engine, VALID, by="p1")
    b = propose(engine, SMALL, by="p2")
    outcome = approve(engine, b)
    assert [c.id for c in outcome.closed] == [a.id]  # A is closed as stale right away
    closed = store.get_proposal(engine, a.id)
    assert closed.status == "rejected" and closed.reviewed_by == "system"
    assert str(seed.id) in closed.review_notes and str(b.id) in closed.review_notes
    # a proposal made against the old split that slipped in afterwards is refused, not applied
    late = propose(engine, VALID, by="p3", based_on=store.get_proposal(engine, seed.id))
    with pytest.raises(store.ReviewError) as refused:
        approve(engine, late, by="carol")
    message = str(refused.value)
    assert f"made against split {seed.id}" in message
    assert f"split {b.id} ({SMALL.label()}" in message and "is in force now" in message
    assert store.active_split(engine).id == b.id
    assert store.get_proposal(engine, late.id).status == "proposed"
    # rejecting it is still possible
    assert store.review_proposal(engine, late.id, approve=False, by="carol").proposal.status == (
        "rejected"
    )
    assert (
        "proposal_rejected",
        "system",
        str(a.id),
    ) in events(engine)


# ------------------------------------------------------------------------------ multi-signature

TWO_FOR_3_POINTS = ReviewPolicy(threshold_pct=D(3), approvals=2)


def test_large_changes_need_distinct_approvals(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    big = propose(engine, BIG, by="alice")
    first = approve(engine, big, by="bob", policy=TWO_FOR_3_POINTS)
    assert first.proposal.status == "proposed" and first.approvals == ("bob",)
    assert first.required == 2 and store.active_split(engine).id == seed.id
    with pytest.raises(store.ReviewError, match="already approved"):
        approve(engine, big, by=" BOB", policy=TWO_FOR_3_POINTS)
    with pytest.raises(store.ReviewError, match="cannot approve"):  # the proposer never counts
        approve(engine, big, by="alice", policy=TWO_FOR_3_POINTS)
    second = approve(engine, big, by="carol", policy=TWO_FOR_3_POINTS)
    assert second.proposal.status == "active" and second.approvals == ("bob", "carol")
    assert second.proposal.reviewed_by == "bob, carol"
    assert store.approvals_of(engine, big.id) == ("bob", "carol")
    # a small change needs one approval under the same policy
    small = propose(engine, Split(D(76), D(19), D(3), D(2)), by="alice")
    assert approve(engine, small, by="bob", policy=TWO_FOR_3_POINTS).proposal.status == "active"


def test_a_rejection_after_an_approval_rejects(engine: sa.Engine) -> None:
    big = propose(engine, BIG)
    approve(engine, big, by="bob", policy=TWO_FOR_3_POINTS)
    outcome = store.review_proposal(
        engine, big.id, approve=False, by="bob", notes="changed my mind", policy=TWO_FOR_3_POINTS
    )
    assert outcome.proposal.status == "rejected" and store.approvals_of(engine, big.id) == ()


def test_reviewers_may_be_limited_to_a_list(engine: sa.Engine) -> None:
    policy = ReviewPolicy(reviewers=frozenset({"Bob", "carol"}))
    proposal = propose(engine)
    with pytest.raises(store.ReviewError, match="not one of the configured reviewers"):
        approve(engine, proposal, by="mallory", policy=policy)
    with pytest.raises(store.ReviewError, match="not one of the configured reviewers"):
        store.review_proposal(engine, proposal.id, approve=False, by="mallory", policy=policy)
    assert approve(engine, proposal, by="bob", policy=policy).proposal.status == "active"


def test_auto_approval_counts_once_and_only_for_the_policy(engine: sa.Engine) -> None:
    big = propose(engine, BIG)
    with pytest.raises(store.ReviewError, match="reserved name"):
        approve(engine, big, by=AUTO_APPROVE_REVIEWER)
    outcome = approve(
        engine, big, by=AUTO_APPROVE_REVIEWER, policy=TWO_FOR_3_POINTS, automatic=True
    )
    assert outcome.proposal.status == "proposed" and outcome.approvals == (AUTO_APPROVE_REVIEWER,)
    assert events(engine)[-1] == ("auto_approval", AUTO_APPROVE_REVIEWER, str(big.id))
    assert approve(engine, big, by="bob", policy=TWO_FOR_3_POINTS).proposal.status == "active"


def _approve_in_threads(
    engine: sa.Engine, jobs: list[tuple[uuid.UUID, str]], policy: ReviewPolicy | None = None
) -> tuple[list[threading.Thread], list[object]]:
    """Start one approval per (proposal, reviewer); results hold a ReviewOutcome or the error."""
    results: list[object] = [None] * len(jobs)

    def run(index: int, proposal_id: uuid.UUID, reviewer: str) -> None:
        try:
            results[index] = store.review_proposal(
                engine, proposal_id, approve=True, by=reviewer, policy=policy
            )
        except Exception as exc:  # noqa: BLE001 - inspected by the test
            results[index] = exc

    threads = [
        threading.Thread(target=run, args=(i, pid, who)) for i, (pid, who) in enumerate(jobs)
    ]
    for thread in threads:
        thread.start()
    return threads, results


def _approve_all_at_once(
    engine: sa.Engine, jobs: list[tuple[uuid.UUID, str]], policy: ReviewPolicy | None = None
) -> list[object]:
    """The approvals of `_approve_in_threads`, all queued on the lock every review takes first
    (SQLite: the write lock) before it is released; their results once they are done."""
    blocker = engine.connect()
    try:
        if engine.dialect.name == "sqlite":
            blocker.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            blocker.execute(sa.select(sa.func.pg_advisory_xact_lock(store.REVIEW_LOCK_KEY)))
        threads, results = _approve_in_threads(engine, jobs, policy)
        _wait_for_lock_waiters(engine, len(jobs))
    finally:
        blocker.commit()
        blocker.close()
    for thread in threads:
        thread.join(30)
    return results


def _wait_for_lock_waiters(engine: sa.Engine, count: int) -> None:
    if engine.dialect.name == "sqlite":  # no view of waiters: give the threads time to queue
        time.sleep(0.5)
        return
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 20
    with engine.connect() as conn:
        while conn.execute(query).scalar_one() < count:
            assert time.monotonic() < deadline, "the reviews never queued on the lock"
            time.sleep(0.02)
            conn.rollback()


def test_racing_approvals_of_two_proposals_activate_one(engine: sa.Engine) -> None:
    """Both were made against the seed: whichever goes first wins, the other is refused as stale
    (never a silent replacement), and it is closed by the winner's activation."""
    seed = store.ensure_active_split(engine)
    first = propose(engine, VALID, by="alice")
    second = propose(engine, SMALL, by="bob")
    results = _approve_all_at_once(engine, [(first.id, "carol"), (second.id, "dave")])
    winners = [r for r in results if isinstance(r, store.ReviewOutcome)]
    losers = [r for r in results if isinstance(r, store.ReviewError)]
    assert len(winners) == 1 and len(losers) == 1, results
    # refused as stale, whether before or after the winner's activation closed it
    assert f"split {winners[0].proposal.id}" in str(losers[0]), losers[0]
    assert "is in force" in str(losers[0])
    history = assert_consistent_history(engine)
    assert [p.id for p in history] == [seed.id, winners[0].proposal.id]


def test_racing_approvals_of_a_large_change_count_both(engine: sa.Engine) -> None:
    store.ensure_active_split(engine)
    big = propose(engine, BIG, by="alice")
    results = _approve_all_at_once(
        engine, [(big.id, "carol"), (big.id, "dave"), (big.id, "carol")], TWO_FOR_3_POINTS
    )
    done = [r for r in results if isinstance(r, store.ReviewOutcome)]
    refused = [r for r in results if isinstance(r, store.ReviewError)]
    assert len(done) == 2 and len(refused) == 1, results
    assert "already approved" in str(refused[0]) or "only a proposed" in str(refused[0])
    final = store.get_proposal(engine, big.id)
    assert final.status == "active" and set(store.approvals_of(engine, big.id)) == {"carol", "dave"}
    assert_consistent_history(engine)


def test_many_concurrent_reviews_keep_one_split_in_force(engine: sa.Engine) -> None:
    store.ensure_active_split(engine)
    proposals = [
        propose(engine, Split(D(80 - i), D(15 + i), D(3), D(2)), by=f"p{i}") for i in range(4)
    ]
    threads, results = _approve_in_threads(
        engine, [(p.id, f"r{i}") for i, p in enumerate(proposals)]
    )
    for thread in threads:
        thread.join(60)
    winners = [r for r in results if isinstance(r, store.ReviewOutcome)]
    assert len(winners) == 1, results
    assert all(isinstance(r, store.ReviewError) for r in results if r not in winners)
    assert len(assert_consistent_history(engine)) == 2
    assert len(store.list_proposals(engine, status="rejected")) == 3


@pytest.mark.parametrize(
    ("notes", "refused"),
    [("ok\x00", "U+0000 at character 3"), ("\udcff", "U+DCFF at character 1")],
    ids=["nul", "lone-surrogate"],
)
def test_notes_no_database_stores_are_refused(engine: sa.Engine, notes: str, refused: str) -> None:
    proposal = propose(engine)
    with pytest.raises(store.ReviewError, match=re.escape(refused)):
        approve(engine, proposal, notes=notes)
    assert store.get_proposal(engine, proposal.id).status == "proposed"
    assert store.approvals_of(engine, proposal.id) == ()
