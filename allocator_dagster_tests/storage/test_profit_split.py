"""The proposal lifecycle on SQLite and PostgreSQL: propose, approve, reject, once, never by oneself,
and safe when reviews race; metrics, realised yield and distributions."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from allocator_dagster.profit_split.metrics import sample_metrics
from allocator_dagster.profit_split.policy import CategoryBounds, Proposal, RulesProposer
from allocator_dagster.profit_split.split import SEED_SPLIT, Split
from allocator_dagster.profit_split.validation import ProposalValidationError
from allocator_dagster.storage import profit_split as store
from allocator_dagster.storage.schema import (
    daily_ledger,
    profit_allocation_log,
    profit_distributions,
)

D = Decimal
log = profit_allocation_log
pg_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


VALID = Split(D("77.10"), D("15.30"), D("4.80"), D("2.80"))


def propose(
    engine: sa.Engine,
    split: Split = VALID,
    by: str = "alice",
    day: date = date(2025, 3, 1),
) -> store.StoredProposal:
    current = store.ensure_active_split(engine)
    proposal = Proposal(split, D("0.750"), True, "manual test proposal", "manual")
    return store.store_proposal(
        engine,
        proposal,
        proposal_date=day,
        proposed_by=by,
        input_metrics={"current_proposal_id": current.proposal_id},
        current=current.split,
    )


def statuses(engine: sa.Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(log.c.proposal_id, log.c.status)).all())


def assert_consistent_history(engine: sa.Engine) -> list[store.StoredProposal]:
    """Exactly one active split, and effective ranges that tile time without gaps or overlaps."""
    history = sorted(
        (p for p in store.list_proposals(engine, limit=1000) if p.effective_from is not None),
        key=lambda p: (p.effective_from, p.proposal_id),
    )
    assert [p.status for p in history].count("active") == 1
    assert history[-1].status == "active" and history[-1].effective_to is None
    for before, after in zip(history, history[1:], strict=False):
        assert before.status == "superseded"
        assert before.effective_to == after.effective_from
        assert before.effective_from <= before.effective_to
    return history


# ------------------------------------------------------------------------------ seed


def test_the_seed_split_is_created_once(engine: sa.Engine) -> None:
    assert store.active_split(engine) is None
    seed = store.ensure_active_split(engine)
    assert seed.status == "active" and seed.proposer == "seed" and seed.split == SEED_SPLIT
    assert seed.effective_from == store.SEED_EFFECTIVE_FROM
    assert store.ensure_active_split(engine).proposal_id == seed.proposal_id
    assert len(statuses(engine)) == 1


def test_concurrent_seeding_leaves_one_seed(engine: sa.Engine) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def seed() -> None:
        try:
            results.append(store.ensure_active_split(engine).proposal_id)
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
    metrics = sample_metrics(date(2025, 3, 2), "rapid_growth")
    proposal = RulesProposer().propose(metrics)
    stored = store.store_proposal(
        engine,
        proposal,
        proposal_date=metrics.metric_date,
        proposed_by="rules-proposer",
        input_metrics=metrics.to_json(),
        current=SEED_SPLIT,
    )
    assert stored.status == "proposed" and stored.proposer == "rules"
    assert stored.split == proposal.split and stored.confidence == proposal.confidence
    assert stored.reasoning == proposal.reasoning
    assert stored.input_metrics == metrics.to_json()
    assert stored.reviewed_by is None and stored.effective_from is None
    assert store.get_proposal(engine, stored.proposal_id) == stored


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


def test_warnings_are_stored(engine: sa.Engine) -> None:
    wide = CategoryBounds(dao=(D(0), D(30)))
    proposal = Proposal(Split(D(85), D(4), D(9), D(2)), D("0.5"), True, "dao lower", "manual")
    stored = store.store_proposal(
        engine,
        proposal,
        proposal_date=date(2025, 3, 1),
        proposed_by="x",
        input_metrics={},
        bounds=wide,
    )
    assert stored.warnings == ("dao 4 % is below the design threshold of 5 %",)


# ------------------------------------------------------------------------------ reviews


def test_approving_activates_and_supersedes_in_one_step(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    proposal = propose(engine)
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    approved = store.review_proposal(
        engine, proposal.proposal_id, approve=True, by="bob", notes="looks right", now=now
    )
    assert approved.status == "active"
    assert approved.reviewed_by == "bob" and approved.review_notes == "looks right"
    assert approved.reviewed_at == now and approved.effective_from == now
    old = store.get_proposal(engine, seed.proposal_id)
    assert old.status == "superseded" and old.effective_to == now
    assert store.active_split(engine).proposal_id == proposal.proposal_id
    assert store.split_in_force(engine, now - timedelta(seconds=1)).proposal_id == seed.proposal_id
    assert store.split_in_force(engine, now).proposal_id == proposal.proposal_id
    assert_consistent_history(engine)


def test_rejecting_leaves_the_split_in_force(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    proposal = propose(engine)
    rejected = store.review_proposal(
        engine, proposal.proposal_id, approve=False, by="bob", notes="too big a move"
    )
    assert rejected.status == "rejected" and rejected.effective_from is None
    assert rejected.review_notes == "too big a move"
    assert store.active_split(engine).proposal_id == seed.proposal_id


@pytest.mark.parametrize(("first", "second"), [(True, True), (True, False), (False, True)])
def test_a_proposal_is_reviewed_once(engine: sa.Engine, first: bool, second: bool) -> None:
    proposal = propose(engine)
    store.review_proposal(engine, proposal.proposal_id, approve=first, by="bob")
    snapshot = store.get_proposal(engine, proposal.proposal_id)
    with pytest.raises(store.ReviewError, match="only a proposed proposal can be reviewed, once"):
        store.review_proposal(engine, proposal.proposal_id, approve=second, by="carol")
    assert store.get_proposal(engine, proposal.proposal_id) == snapshot


@pytest.mark.parametrize("reviewer", ["alice", "Alice", "  alice "])
def test_nobody_approves_their_own_proposal(engine: sa.Engine, reviewer: str) -> None:
    proposal = propose(engine, by="alice")
    with pytest.raises(store.ReviewError, match="cannot approve"):
        store.review_proposal(engine, proposal.proposal_id, approve=True, by=reviewer)
    assert store.get_proposal(engine, proposal.proposal_id).status == "proposed"
    # withdrawing one's own proposal is allowed
    assert (
        store.review_proposal(engine, proposal.proposal_id, approve=False, by=reviewer).status
        == "rejected"
    )


def test_review_errors(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    with pytest.raises(store.ProposalNotFound):
        store.review_proposal(engine, 999, approve=True, by="bob")
    with pytest.raises(store.ReviewError, match="is active"):
        store.review_proposal(engine, seed.proposal_id, approve=False, by="bob")
    proposal = propose(engine)
    with pytest.raises(store.ReviewError, match="name is empty"):
        store.review_proposal(engine, proposal.proposal_id, approve=True, by=" ")
    with pytest.raises(store.ProposalNotFound):
        store.get_proposal(engine, 999)


def test_nothing_is_ever_deleted(engine: sa.Engine) -> None:
    ids = [propose(engine, by=f"p{i}").proposal_id for i in range(4)]
    store.review_proposal(engine, ids[0], approve=True, by="r")
    store.review_proposal(engine, ids[1], approve=False, by="r")
    store.review_proposal(engine, ids[2], approve=True, by="r")
    assert statuses(engine) == {
        1: "superseded",
        ids[0]: "superseded",
        ids[1]: "rejected",
        ids[2]: "active",
        ids[3]: "proposed",
    }
    assert [p.proposal_id for p in store.list_proposals(engine, status="proposed")] == [ids[3]]
    assert [p.proposal_id for p in store.list_proposals(engine, limit=2)] == [ids[3], ids[2]]
    assert_consistent_history(engine)


def test_the_database_allows_only_one_active_split(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    proposal = propose(engine)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            log.update()
            .where(log.c.proposal_id == proposal.proposal_id)
            .values(status="active", effective_from=datetime.now(UTC))
        )
    assert statuses(engine) == {seed.proposal_id: "active", proposal.proposal_id: "proposed"}


def _approve_in_threads(
    engine: sa.Engine, jobs: list[tuple[int, str]]
) -> tuple[list[threading.Thread], list[object]]:
    """Start one approval per (proposal, reviewer); results hold a StoredProposal or the error."""
    results: list[object] = [None] * len(jobs)

    def run(index: int, proposal_id: int, reviewer: str) -> None:
        try:
            results[index] = store.review_proposal(engine, proposal_id, approve=True, by=reviewer)
        except Exception as exc:  # noqa: BLE001 - inspected by the test
            results[index] = exc

    threads = [
        threading.Thread(target=run, args=(i, pid, who)) for i, (pid, who) in enumerate(jobs)
    ]
    for thread in threads:
        thread.start()
    return threads, results


def _wait_for_lock_waiters(engine: sa.Engine, count: int) -> None:
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


@pg_only
def test_racing_approvals_on_postgresql_leave_exactly_one_active(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    first = propose(engine, by="alice")
    second = propose(engine, Split(D(78), D(16), D(4), D(2)), by="bob")
    # Hold the lock on the active split so both reviews queue behind it, then let them go at once.
    with engine.connect() as blocker:
        blocker.execute(sa.select(log).where(log.c.status == "active").with_for_update())
        threads, results = _approve_in_threads(
            engine, [(first.proposal_id, "carol"), (second.proposal_id, "dave")]
        )
        _wait_for_lock_waiters(engine, 2)
        blocker.commit()
    for thread in threads:
        thread.join(30)
    assert all(isinstance(r, store.StoredProposal) for r in results), results
    history = assert_consistent_history(engine)
    assert history[0].proposal_id == seed.proposal_id
    assert {p.proposal_id for p in history[1:]} == {first.proposal_id, second.proposal_id}


@pg_only
def test_racing_approvals_of_the_same_proposal_on_postgresql(engine: sa.Engine) -> None:
    store.ensure_active_split(engine)
    proposal = propose(engine, by="alice")
    with engine.connect() as blocker:
        blocker.execute(
            sa.select(log).where(log.c.proposal_id == proposal.proposal_id).with_for_update()
        )
        threads, results = _approve_in_threads(
            engine, [(proposal.proposal_id, "carol"), (proposal.proposal_id, "dave")]
        )
        _wait_for_lock_waiters(engine, 2)
        blocker.commit()
    for thread in threads:
        thread.join(30)
    winners = [r for r in results if isinstance(r, store.StoredProposal)]
    losers = [r for r in results if isinstance(r, store.ReviewError)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert store.get_proposal(engine, proposal.proposal_id).reviewed_by == winners[0].reviewed_by
    assert_consistent_history(engine)


def test_concurrent_approvals_are_serialised(engine: sa.Engine) -> None:
    store.ensure_active_split(engine)
    proposals = [propose(engine, by=f"p{i}") for i in range(4)]
    threads, results = _approve_in_threads(
        engine, [(p.proposal_id, f"r{i}") for i, p in enumerate(proposals)]
    )
    for thread in threads:
        thread.join(60)
    assert all(isinstance(r, store.StoredProposal) for r in results), results
    assert len(assert_consistent_history(engine)) == 5


# ------------------------------------------------------------------------------ metrics


def test_metrics_round_trip_through_the_tables(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    day = date(2025, 5, 6)
    for scenario in ("declining", "treasury_critical"):
        written = sample_metrics(day, scenario, seed.split, seed.proposal_id)
        store.write_platform_metrics(engine, written)  # replaces the day
    read = store.read_platform_metrics(engine, day, seed)
    expected = sample_metrics(day, "treasury_critical", seed.split, seed.proposal_id)
    assert read.source == "database"
    assert read.engagement == expected.engagement and read.token == expected.token
    assert read.treasury == expected.treasury and read.community == expected.community
    assert read.current_split == SEED_SPLIT and read.current_proposal_id == seed.proposal_id
    assert RulesProposer().propose(read).split == RulesProposer().propose(expected).split


def test_missing_metrics_name_the_tables(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    with pytest.raises(store.MetricsUnavailable, match="platform_engagement_daily, token_perf"):
        store.read_platform_metrics(engine, date(2025, 5, 6), seed)


# ------------------------------------------------------------------------------ profit


def _ledger(engine: sa.Engine, day: date, amounts: dict[str, str]) -> None:
    with engine.begin() as conn:
        conn.execute(
            daily_ledger.insert(),
            [
                {
                    "ledger_date": day,
                    "pool_id": pool,
                    "amount_usd": D(amount),
                    "source": "test",
                    "recorded_at": datetime.now(UTC),
                }
                for pool, amount in amounts.items()
            ],
        )


def test_realised_yield_is_the_ledger_growth(engine: sa.Engine) -> None:
    day = date(2025, 6, 1)
    assert store.realised_yield(engine, day) is None
    _ledger(engine, day, {"pool-a": "600000.10", "pool-b": "399999.90", "idle_usd": "0.10"})
    assert store.realised_yield(engine, day) is None  # the next day is missing
    _ledger(engine, day + timedelta(days=1), {"pool-a": "600100.20", "pool-b": "400033.13"})
    assert store.realised_yield(engine, day) == D("133.23")
    _ledger(engine, day + timedelta(days=2), {"pool-a": "500000.00"})
    assert store.realised_yield(engine, day + timedelta(days=1)) == D("-500133.33")


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
        proposal_id=seed.proposal_id,
        profit_usd=D("100.00"),
        split=SEED_SPLIT,
        amounts=amounts,
        profit_source="configured",
    )
    proposal = propose(engine)
    store.review_proposal(engine, proposal.proposal_id, approve=True, by="bob")
    new_amounts = {
        "reinvestment": D("7.71"),
        "dao": D("1.53"),
        "lucky": D("0.48"),
        "creator": D("0.28"),
    }
    store.write_distribution(
        engine,
        day,
        proposal_id=proposal.proposal_id,
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
    assert {r["proposal_id"] for r in rows} == {proposal.proposal_id}
    with pytest.raises(ValueError, match="do not add up"):
        store.write_distribution(
            engine,
            day,
            proposal_id=seed.proposal_id,
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
            proposal_id=12345,
            profit_usd=D("10.00"),
            split=proposal.split,
            amounts=bad,
            profit_source="configured",
        )
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(profit_distributions)).scalar()
    assert count == 4
    assert store.read_distribution(engine, day) == rows
