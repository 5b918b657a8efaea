"""The proposal lifecycle on SQLite and PostgreSQL: propose, approve, reject, never by oneself,
never against a split no longer in force, several approvals for large changes, one answer per
day, safe when reviews race; every step in the transparency log; metrics, yield, distributions."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from allocator_dagster.profit_split.governance import ReviewPolicy
from allocator_dagster.profit_split.metrics import sample_metrics
from allocator_dagster.profit_split.policy import (
    AUTO_APPROVE_REVIEWER,
    CategoryBounds,
    Proposal,
    RulesProposer,
)
from allocator_dagster.profit_split.split import SEED_SPLIT, Split
from allocator_dagster.profit_split.validation import ProposalValidationError
from allocator_dagster.storage import profit_split as store
from allocator_dagster.storage.activity import list_activity
from allocator_dagster.storage.schema import (
    profit_allocation_log,
    profit_distributions,
    protocol_activity,
)

D = Decimal
log = profit_allocation_log
pg_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


VALID = Split(D("77.10"), D("15.30"), D("4.80"), D("2.80"))
SMALL = Split(D(79), D(16), D(3), D(2))  # one point from the seed


def propose(
    engine: sa.Engine,
    split: Split = VALID,
    by: str = "alice",
    day: date = date(2025, 3, 1),
    based_on: store.StoredProposal | None = None,
) -> store.StoredProposal:
    current = based_on or store.ensure_active_split(engine)
    proposal = Proposal(split, D("0.750"), True, "manual test proposal", "manual")
    return store.store_proposal(
        engine,
        proposal,
        proposal_date=day,
        proposer_name=by,
        input_metrics={"current_proposal_id": str(current.id)},
        based_on=current,
    )


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


# ------------------------------------------------------------------------------ seed


def test_the_seed_split_is_created_once(engine: sa.Engine) -> None:
    assert store.active_split(engine) is None
    seed = store.ensure_active_split(engine)
    assert seed.status == "active" and seed.proposer == "seed" and seed.split == SEED_SPLIT
    assert seed.proposed_by == "system" and seed.reviewed_by == "system"
    assert seed.effective_from == store.SEED_EFFECTIVE_FROM and seed.effective_until is None
    assert store.ensure_active_split(engine).id == seed.id
    assert len(statuses(engine)) == 1
    assert events(engine) == [("activation", "system", str(seed.id))]


def test_concurrent_seeding_leaves_one_seed(engine: sa.Engine) -> None:
    results: list[uuid.UUID] = []
    errors: list[BaseException] = []

    def seed() -> None:
        try:
            results.append(store.ensure_active_split(engine).id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=seed) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert len(set(results)) == 1 and len(statuses(engine)) == 1


# ------------------------------------------------------------------------------ proposals


def test_a_proposal_is_stored_as_proposed_with_its_inputs(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    metrics = sample_metrics(date(2025, 3, 2), "rapid_growth", seed.split, str(seed.id))
    proposal = RulesProposer().propose(metrics)
    stored = store.store_proposal(
        engine,
        proposal,
        proposal_date=metrics.metric_date,
        proposer_name="rules-proposer",
        input_metrics=metrics.to_json(),
        based_on=seed,
    )
    assert stored.status == "proposed" and stored.proposer == "rules"
    assert stored.proposed_by == "system" and stored.proposer_name == "rules-proposer"
    assert isinstance(stored.id, uuid.UUID) and stored.based_on_id == seed.id
    assert stored.split == proposal.split and stored.confidence == proposal.confidence
    assert stored.reasoning == proposal.reasoning
    assert stored.input_metrics == metrics.to_json()
    assert stored.reviewed_by is None and stored.effective_from is None
    assert store.get_proposal(engine, stored.id) == stored
    assert store.find_proposal(engine, stored.id.hex[:6]) == stored
    assert store.find_proposal(engine, str(stored.id).upper()) == stored
    assert events(engine)[-1] == ("proposal_stored", "rules-proposer", str(stored.id))


@pytest.mark.parametrize(("proposer", "expected"), [("llm", "ai"), ("manual", "manual")])
def test_proposed_by_takes_the_specifications_values(
    engine: sa.Engine, proposer: str, expected: str
) -> None:
    seed = store.ensure_active_split(engine)
    proposal = Proposal(VALID, D("0.5"), True, "why", proposer)
    stored = store.store_proposal(
        engine,
        proposal,
        proposal_date=date(2025, 3, 1),
        proposer_name="x",
        input_metrics={},
        based_on=seed,
    )
    assert stored.proposed_by == expected


def test_splits_that_float_sums_miss_are_stored(engine: sa.Engine) -> None:
    # 77.1 + 15.3 + 4.8 + 2.8 is 99.99999999999999 in binary: the schema's sum check must not
    # reject it on SQLite, where NUMERIC is stored as REAL.
    for split in (
        Split(D("77.10"), D("15.30"), D("4.80"), D("2.80")),
        Split(D("55.55"), D("29.15"), D("5.70"), D("9.60")),
    ):
        assert propose(engine, split).split == split


def test_invalid_proposals_are_never_stored(engine: sa.Engine) -> None:
    store.ensure_active_split(engine)
    before = statuses(engine)
    with pytest.raises(ProposalValidationError, match="sum to 99.99"):
        propose(engine, Split(D("77.09"), D("15.30"), D("4.80"), D("2.80")))
    with pytest.raises(ValueError, match="proposed_by"):
        propose(engine, by="  ")
    assert statuses(engine) == before
    assert [e[0] for e in events(engine)] == ["activation"]


def test_warnings_are_stored_and_logged(engine: sa.Engine) -> None:
    wide = CategoryBounds(dao=(D(0), D(30)))
    proposal = Proposal(Split(D(85), D(4), D(9), D(2)), D("0.5"), True, "dao lower", "manual")
    stored = store.store_proposal(
        engine,
        proposal,
        proposal_date=date(2025, 3, 1),
        proposer_name="x",
        input_metrics={},
        bounds=wide,
    )
    assert stored.warnings == ("dao 4 % is below the design threshold of 5 %",)
    (warned,) = [a for a in list_activity(engine) if a.event_type == "validation_warnings"]
    assert warned.payload == {"warnings": list(stored.warnings)}


# ------------------------------------------------------------------------------ one answer a day


def _day(engine: sa.Engine, split: Split, day: date = date(2025, 3, 5), **kw):
    in_force = kw.pop("in_force", None) or store.ensure_active_split(engine)
    rebalance = split != in_force.split
    proposal = Proposal(split, D("0.8"), rebalance, "the rules said so", "rules")
    return store.record_day(
        engine,
        proposal,
        proposal_date=day,
        in_force=in_force,
        proposer_name="rules-proposer",
        input_metrics={"metric_date": day.isoformat()},
        **kw,
    )


def test_a_day_is_decided_once_reviewed_or_not(engine: sa.Engine) -> None:
    first = _day(engine, SMALL)
    assert first.created and first.outcome == "proposed"
    again = _day(engine, VALID)  # a re-run proposes something else: the day keeps its answer
    assert not again.created and again.proposal_id == first.proposal_id
    approve(engine, store.get_proposal(engine, first.proposal_id))
    after_review = _day(engine, VALID, in_force=store.active_split(engine))
    assert not after_review.created and after_review.proposal_id == first.proposal_id
    assert len(store.list_proposals(engine)) == 2  # the seed and the day's one proposal


def test_a_maintain_answer_is_recorded_and_waits_for_nobody(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    record = _day(engine, SEED_SPLIT)
    assert record.outcome == "maintain" and record.proposal_id is None
    assert record.in_force_id == seed.id
    assert store.list_proposals(engine, status="proposed") == []
    assert store.day_record(engine, record.proposal_date).outcome == "maintain"
    assert events(engine)[-1] == ("proposal_maintained", "rules-proposer", "2025-03-05")


def test_a_day_proposed_against_a_replaced_split_is_refused(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    approve(engine, propose(engine, SMALL))
    with pytest.raises(store.SplitChanged):
        _day(engine, VALID, in_force=seed)
    assert store.day_record(engine, date(2025, 3, 5)) is None


def test_concurrent_runs_of_a_day_store_one_proposal(engine: sa.Engine) -> None:
    store.ensure_active_split(engine)
    results: list[object] = [None] * 4

    def run(index: int) -> None:
        try:
            results[index] = _day(engine, SMALL)
        except Exception as exc:  # noqa: BLE001 - inspected below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(isinstance(r, store.DayRecord) for r in results), results
    assert [r.created for r in results].count(True) == 1
    assert len({r.proposal_id for r in results}) == 1
    assert len(store.list_proposals(engine, status="proposed")) == 1


# ------------------------------------------------------------------------------ reviews


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

BIG = Split(D(75), D(20), D(3), D(2))  # five points from the seed
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


# ------------------------------------------------------------------------------ the log holds


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


# ------------------------------------------------------------------------------ concurrency


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


def _hold_the_review_lock(engine: sa.Engine) -> sa.Connection:
    """A connection holding the lock every review takes first (SQLite: the write lock)."""
    blocker = engine.connect()
    if engine.dialect.name == "sqlite":
        blocker.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        blocker.execute(sa.select(sa.func.pg_advisory_xact_lock(store.REVIEW_LOCK_KEY)))
    return blocker


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
    blocker = _hold_the_review_lock(engine)
    try:
        threads, results = _approve_in_threads(engine, [(first.id, "carol"), (second.id, "dave")])
        _wait_for_lock_waiters(engine, 2)
    finally:
        blocker.commit()
        blocker.close()
    for thread in threads:
        thread.join(30)
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
    blocker = _hold_the_review_lock(engine)
    try:
        threads, results = _approve_in_threads(
            engine, [(big.id, "carol"), (big.id, "dave"), (big.id, "carol")], TWO_FOR_3_POINTS
        )
        _wait_for_lock_waiters(engine, 3)
    finally:
        blocker.commit()
        blocker.close()
    for thread in threads:
        thread.join(30)
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


# ------------------------------------------------------------------------------ metrics


def test_metrics_round_trip_through_the_tables(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    day = date(2025, 5, 6)
    for scenario in ("declining", "treasury_critical"):
        written = sample_metrics(day, scenario, seed.split, str(seed.id))
        store.write_platform_metrics(engine, written)  # replaces the day
    read = store.read_platform_metrics(engine, day, seed)
    expected = sample_metrics(day, "treasury_critical", seed.split, str(seed.id))
    assert read.source == "database"
    assert read.engagement == expected.engagement and read.token == expected.token
    assert read.treasury == expected.treasury and read.community == expected.community
    assert read.current_split == SEED_SPLIT and read.current_proposal_id == str(seed.id)
    assert RulesProposer().propose(read).split == RulesProposer().propose(expected).split


def test_missing_metrics_name_the_tables(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    with pytest.raises(store.MetricsUnavailable, match="platform_engagement_daily, token_perf"):
        store.read_platform_metrics(engine, date(2025, 5, 6), seed)


# ------------------------------------------------------------------------------ profit


def test_a_distribution_replaces_the_day_atomically(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    day = date(2025, 6, 1)
    amounts = {
        "reinvestment": D("80.00"),
        "dao": D("15.00"),
        "lucky": D("3.00"),
        "creator": D("2.00"),
    }
    store.write_distribution(
        engine,
        day,
        proposal_id=seed.id,
        profit_usd=D("100.00"),
        split=SEED_SPLIT,
        amounts=amounts,
        profit_source="configured",
    )
    proposal = propose(engine)
    approve(engine, proposal)
    new_amounts = {
        "reinvestment": D("7.71"),
        "dao": D("1.53"),
        "lucky": D("0.48"),
        "creator": D("0.28"),
    }
    store.write_distribution(
        engine,
        day,
        proposal_id=proposal.id,
        profit_usd=D("10.00"),
        split=proposal.split,
        amounts=new_amounts,
        profit_source="realised_yield",
    )
    rows = store.read_distribution(engine, day)
    assert [(r["category"], r["amount_usd"], r["pct"]) for r in rows] == [
        ("reinvestment", D("7.71"), D("77.10")),
        ("dao", D("1.53"), D("15.30")),
        ("lucky", D("0.48"), D("4.80")),
        ("creator", D("0.28"), D("2.80")),
    ]
    assert {r["proposal_id"] for r in rows} == {proposal.id}
    distributed = [a for a in list_activity(engine) if a.event_type == "distribution"]
    assert [a.payload["profit_usd"] for a in distributed] == ["100.00", "10.00"]
    with pytest.raises(ValueError, match="do not add up"):
        store.write_distribution(
            engine,
            day,
            proposal_id=seed.id,
            profit_usd=D("10.01"),
            split=SEED_SPLIT,
            amounts=new_amounts,
            profit_source="configured",
        )
    # A failing insert rolls the delete back: the day keeps its previous rows.
    bad = dict(new_amounts, reinvestment=D("7.71"))
    with pytest.raises(sa.exc.IntegrityError):
        store.write_distribution(
            engine,
            day,
            proposal_id=uuid.uuid4(),
            profit_usd=D("10.00"),
            split=proposal.split,
            amounts=bad,
            profit_source="configured",
        )
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(profit_distributions)).scalar()
    assert count == 4
    assert store.read_distribution(engine, day) == rows
