"""New proposals: stored as proposed with their inputs, never invalid; one answer a day, also
when runs of the day race or the split in force changed meanwhile."""

from __future__ import annotations

import threading
import uuid
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from allocator_dagster.profit_split.metrics import sample_metrics
from allocator_dagster.profit_split.policy import CategoryBounds, Proposal, RulesProposer
from allocator_dagster.profit_split.split import SEED_SPLIT, Split
from allocator_dagster.profit_split.validation import ProposalValidationError
from allocator_dagster.storage import profit_split as store
from allocator_dagster.storage.activity import list_activity
from allocator_dagster_tests.support.profit_split import (
    SMALL,
    VALID,
    approve,
    events,
    propose,
    statuses,
    store_as,
)

D = Decimal


def test_a_proposal_is_stored_as_proposed_with_its_inputs(engine: sa.Engine) -> None:
    seed = store.ensure_active_split(engine)
    metrics = sample_metrics(date(2025, 3, 2), "rapid_growth", seed.split, str(seed.id))
    proposal = RulesProposer().propose(metrics)
    stored = store_as(
        engine,
        proposal,
        by="rules-proposer",
        day=metrics.metric_date,
        based_on=seed,
        input_metrics=metrics.to_json(),
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
    proposal = Proposal(VALID, D("0.5"), True, "why", proposer)
    stored = store_as(engine, proposal, by="x", input_metrics={})
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
