"""Thirty days of the profit-split graph with reviews, on SQLite and PostgreSQL: every event of
the run is in the transparency log (protocol_activity), once, in order, and nothing else is."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import dagster as dg
from click.testing import CliRunner

from allocator_dagster.cli import main as cli
from allocator_dagster.defs.profit_split.assets import (
    platform_metrics,
    profit_distribution,
    profit_split_proposal,
)
from allocator_dagster.defs.profit_split.partitions import PARTITIONS
from allocator_dagster.defs.resources import DatabaseResource, ProfitSplitConfig
from allocator_dagster.profit_split.governance import ReviewPolicy
from allocator_dagster.storage import get_engine
from allocator_dagster.storage import profit_split as store
from allocator_dagster.storage.activity import list_activity

ASSETS = [platform_metrics, profit_split_proposal, profit_distribution]
LAST = date.fromisoformat(PARTITIONS.get_last_partition_key())
DAYS = [LAST - timedelta(days=29 - i) for i in range(30)]
POLICY = {"multisig_threshold_pct": "4", "multisig_approvals": 2}


def test_a_30_day_run_with_reviews_is_fully_logged(database_url: str) -> None:
    engine = get_engine(database_url)
    resources = {
        "database": DatabaseResource(database_url=database_url),
        "profit_split_config": ProfitSplitConfig(
            profit_source="configured", default_profit_usd="100.00", **POLICY
        ),
    }
    policy = ReviewPolicy.from_settings("4", 2, None)
    instance = dg.DagsterInstance.ephemeral()
    runner = CliRunner()
    reviews: list[tuple[str, str, str]] = []  # (decision, reviewer, proposal id)
    proposed_days, maintained_days, left_open = [], [], []
    for index, day in enumerate(DAYS):
        result = dg.materialize(
            ASSETS,
            partition_key=day.isoformat(),
            resources=resources,
            instance=instance,
        )
        assert result.success
        record = store.day_record(engine, day)
        if record.outcome == "maintain":
            maintained_days.append(day)
            continue
        proposed_days.append(day)
        proposal = store.get_proposal(engine, record.proposal_id)
        if index % 5 == 4:  # left open: a later activation closes it as stale
            left_open.append(proposal.id)
            continue
        if index % 3 == 0:
            store.review_proposal(engine, proposal.id, approve=False, by="dave", policy=policy)
            reviews.append(("reject", "dave", str(proposal.id)))
            continue
        # approvals: one on the command line, a second one when the change is large
        outcome = runner.invoke(
            cli,
            [
                "proposals",
                "review",
                "--database-url",
                database_url,
                str(proposal.id),
                "--approve",
                "--by",
                "bob",
            ],
            env={"ALLOCATOR_MULTISIG_THRESHOLD_PCT": "4", "ALLOCATOR_MULTISIG_APPROVALS": "2"},
        )
        assert outcome.exit_code == 0, outcome.output
        reviews.append(("approve", "bob", str(proposal.id)))
        if store.get_proposal(engine, proposal.id).status == "proposed":
            store.review_proposal(engine, proposal.id, approve=True, by="carol", policy=policy)
            reviews.append(("approve", "carol", str(proposal.id)))
    # a re-run of the whole range decides nothing again
    for day in DAYS[:3]:
        dg.materialize(
            ASSETS, partition_key=day.isoformat(), resources=resources, instance=instance
        )

    assert proposed_days and maintained_days and left_open
    assert {"bob", "carol", "dave"} == {r[1] for r in reviews}  # single, double and rejections
    events = list_activity(engine)
    assert [e.id for e in events] == sorted(e.id for e in events)
    by_type = Counter(e.event_type for e in events)
    proposals = {p.id: p for p in store.list_proposals(engine, limit=1000) if p.proposer != "seed"}
    active = [p for p in proposals.values() if p.status == "active"]

    # the day's answers: one event per day, never repeated by the re-runs
    stored = [e for e in events if e.event_type == "proposal_stored"]
    assert sorted(e.payload["day"] for e in stored) == [d.isoformat() for d in proposed_days]
    assert {e.subject_id for e in stored} == {str(i) for i in proposals}
    maintained = [e.subject_id for e in events if e.event_type == "proposal_maintained"]
    assert maintained == [d.isoformat() for d in maintained_days]
    warned = {e.subject_id for e in events if e.event_type == "validation_warnings"}
    assert warned == {str(p.id) for p in proposals.values() if p.warnings}
    # every review, by whom and how it went
    logged_reviews = [
        (e.payload["decision"], e.actor, e.subject_id) for e in events if e.event_type == "review"
    ]
    assert logged_reviews == reviews
    # every activation ends the split before it
    activations = [e for e in events if e.event_type == "activation"]
    deactivations = [e for e in events if e.event_type == "deactivation"]
    assert [e.subject_id for e in activations[1:]] == [
        str(p.id) for p in sorted(active, key=lambda p: p.effective_from)
    ]
    assert len(deactivations) == len(active)
    assert [e.payload["replaced_by"] for e in deactivations] == [
        e.subject_id for e in activations[1:]
    ]
    # rejections: by the reviewer, or by the system for proposals left open against an old split
    rejected = [(e.actor, e.subject_id) for e in events if e.event_type == "proposal_rejected"]
    assert {s for a, s in rejected if a == "dave"} == {s for d, a, s in reviews if d == "reject"}
    closed = {s for a, s in rejected if a == "system"}
    assert closed == {
        str(p.id)
        for p in proposals.values()
        if p.status == "rejected" and p.reviewed_by == "system"
    }
    assert closed and closed <= {str(i) for i in left_open}
    # one distribution per materialisation (30 days, and the 3 re-runs)
    assert by_type["distribution"] == 33
    assert {e.subject_id for e in events if e.event_type == "distribution"} == {
        d.isoformat() for d in DAYS
    }
    assert set(by_type) <= {
        "activation",
        "deactivation",
        "distribution",
        "proposal_maintained",
        "proposal_rejected",
        "proposal_stored",
        "review",
        "validation_warnings",
    }
    # the command line shows the same log
    shown = runner.invoke(cli, ["activity", "--database-url", database_url, "--format", "json"])
    assert shown.exit_code == 0 and len(shown.output.splitlines()) == len(events)
