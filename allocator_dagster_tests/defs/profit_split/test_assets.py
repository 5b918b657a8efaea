"""The profit-split graph in Dagster, on SQLite and PostgreSQL: materialise a day, review the
proposal (CLI and job), and the distribution follows the split in force, checked to the cent."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from allocator_dagster.cli import main as cli
from allocator_dagster.day_payouts import recorded_payout
from allocator_dagster.definitions import build_definitions
from allocator_dagster.defs.profit_split import assets as assets_module
from allocator_dagster.defs.profit_split.assets import (
    platform_metrics,
    profit_distribution,
    profit_split_proposal,
)
from allocator_dagster.defs.profit_split.checks import distribution_cents_add_up
from allocator_dagster.defs.profit_split.partitions import PARTITIONS
from allocator_dagster.defs.resources import (
    LLM_API_KEY_ENV,
    LLM_URL_ENV,
    DatabaseResource,
    ProfitSplitConfig,
    default_profit_split_config,
)
from allocator_dagster.profit_split.metrics import sample_metrics
from allocator_dagster.profit_split.policy import AUTO_APPROVE_REVIEWER
from allocator_dagster.profit_split.split import SEED_SPLIT, Split
from allocator_dagster.storage import get_engine
from allocator_dagster.storage import profit_split as store
from allocator_dagster.storage.allocations import read_allocation, read_holdings
from allocator_dagster_tests.support.allocation_runs import chain_resources, run_days
from allocator_dagster_tests.support.profit_split import BIG, SMALL, propose
from allocator_dagster_tests.support.profit_split_runs import run_review, step_failure

D = Decimal
ALL = [platform_metrics, profit_split_proposal, profit_distribution, distribution_cents_add_up]
DISTRIBUTION = [profit_distribution, distribution_cents_add_up]
# The latest complete day: its profit is paid out today, under the split in force now.
LATEST = PARTITIONS.get_last_partition_key()
LATEST_DAY = date.fromisoformat(LATEST)


def resources(database_url: str, **config: object) -> dict:
    # these tests run the profit-split graph alone: a demo profit, the explicit opt-in
    config.setdefault("profit_source", "configured")
    return {
        "database": DatabaseResource(database_url=database_url),
        "profit_split_config": ProfitSplitConfig(**config),  # type: ignore[arg-type]
    }


def materialize(
    database_url: str,
    selection: list,
    partition: str = LATEST,
    raise_on_error: bool = True,
    instance: dg.DagsterInstance | None = None,
    **config: object,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        selection,
        partition_key=partition,
        resources=resources(database_url, **config),
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    (event,) = [
        e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)
    ]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def distribution(database_url: str, day: date = LATEST_DAY) -> dict[str, Decimal]:
    rows = store.read_distribution(get_engine(database_url), day)
    return {row["category"]: row["amount_usd"] for row in rows}


def test_the_graph_materialises_a_day(database_url: str) -> None:
    result = materialize(database_url, ALL, sample_scenario="rapid_growth")
    assert result.success
    engine = get_engine(database_url)

    metrics_md = metadata(result, "platform_metrics")
    assert metrics_md["source"] == "sample" and "80.00" in metrics_md["split_in_force"]

    proposal_md = metadata(result, "profit_split_proposal")
    stored = store.get_proposal(engine, proposal_md["proposal_id"])
    assert stored.status == "proposed" and proposal_md["status"] == "proposed"
    assert proposal_md["outcome"] == "proposed" and proposal_md["reused"] is False
    assert stored.proposed_by == "system" and stored.proposer_name == "rules-proposer"
    assert stored.input_metrics["metric_date"] == LATEST
    assert stored.reasoning == proposal_md["reasoning"] and "Signals:" in stored.reasoning
    assert "| Category | In force % | Proposed % |" in proposal_md["split"]
    assert proposal_md["auto_approve"] == "auto-approve is off"
    assert proposal_md["fallback_reason"] == "none"

    distribution_md = metadata(result, "profit_distribution")
    assert distribution_md["profit_source"] == "configured"
    assert "Configured demo profit" in distribution_md["notes"]
    # the split in force and its history, drawn (issue 12)
    assert "(data:image/png;base64," in distribution_md["split_chart"]
    assert distribution(database_url) == {
        "reinvestment": D("800.00"),
        "dao": D("150.00"),
        "lucky": D("30.00"),
        "creator": D("20.00"),
    }
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.check_name == "distribution_cents_add_up"


def test_a_proposal_reviewed_on_the_command_line_drives_the_distribution(
    database_url: str,
) -> None:
    result = materialize(
        database_url, ALL, default_profit_usd="1234.57", sample_scenario="rapid_growth"
    )
    proposal_id = metadata(result, "profit_split_proposal")["proposal_id"]
    runner = CliRunner()
    base = ["proposals"]
    db = ["--database-url", database_url]

    listed = runner.invoke(cli, [*base, "list", *db, "--status", "proposed"])
    assert listed.exit_code == 0, listed.output
    assert proposal_id[:8] in listed.output and "rules-proposer" in listed.output
    shown = runner.invoke(cli, [*base, "show", *db, proposal_id[:8]])
    assert shown.exit_code == 0 and "rapid growth" in shown.output

    review = [*base, "review", *db, proposal_id, "--approve", "--by", "alice", "--notes", "ok"]
    approved = runner.invoke(cli, review)
    assert approved.exit_code == 0, approved.output
    assert f"proposal {proposal_id} approved by alice" in approved.output
    again = runner.invoke(cli, review)
    assert again.exit_code == 2 and "only a proposed proposal can be reviewed" in again.output

    new_split = store.get_proposal(get_engine(database_url), proposal_id).split
    assert new_split != SEED_SPLIT
    rerun = materialize(database_url, DISTRIBUTION, default_profit_usd="1234.57")
    assert rerun.success
    assert metadata(rerun, "profit_distribution")["split_id"] == proposal_id
    amounts = distribution(database_url)
    assert sum(amounts.values()) == D("1234.57")
    for category, amount in amounts.items():
        assert abs(amount - D("1234.57") * getattr(new_split, category) / 100) < D("0.01")


def _review_job(
    database_url: str,
    proposal_id: str,
    approve: bool,
    by: str,
    instance: dg.DagsterInstance | None = None,
    **config: object,
) -> dg.ExecuteInProcessResult:
    review = {"proposal_id": proposal_id, "approve": approve, "by": by, "notes": "job"}
    return run_review(database_url, review, instance=instance, **config)


def _failure(result: dg.ExecuteInProcessResult) -> str:
    return str(step_failure(result).error)


def test_the_review_job_takes_run_config(database_url: str) -> None:
    engine = get_engine(database_url)
    proposal = propose(engine, SMALL, day=LATEST_DAY)
    own = _review_job(database_url, str(proposal.id), True, "alice")
    assert not own.success and "cannot approve" in _failure(own)
    approved = _review_job(database_url, str(proposal.id), True, "bob")
    assert approved.success
    assert approved.output_for_node("review_proposal")["status"] == "active"
    assert store.active_split(engine).id == proposal.id
    twice = _review_job(database_url, str(proposal.id), False, "carol")
    assert not twice.success and "only a proposed proposal" in _failure(twice)
    assert store.get_proposal(engine, proposal.id).reviewed_by == "bob"
    unknown = _review_job(database_url, "no-such-id", True, "bob")
    assert not unknown.success and "no proposal with id 'no-such-id'" in _failure(unknown)


def test_the_review_job_applies_the_multisignature_policy(database_url: str) -> None:
    engine = get_engine(database_url)
    big = propose(engine, BIG, day=LATEST_DAY)
    policy = {"multisig_threshold_pct": "3", "multisig_approvals": 2, "reviewers": ["bob", "carol"]}
    outsider = _review_job(database_url, str(big.id), True, "mallory", **policy)
    assert not outsider.success and "not one of the configured reviewers" in _failure(outsider)
    first = _review_job(database_url, str(big.id), True, "bob", **policy)
    assert first.success and first.output_for_node("review_proposal")["status"] == "proposed"
    second = _review_job(database_url, str(big.id), True, "carol", **policy)
    assert second.output_for_node("review_proposal")["status"] == "active"
    assert store.approvals_of(engine, big.id) == ("bob", "carol")


def _observed(instance: dg.DagsterInstance, partition: str) -> list[dict]:
    records = instance.fetch_observations(dg.AssetKey("profit_split_proposal"), limit=100).records
    return [
        {k: v.value for k, v in r.asset_observation.metadata.items()}
        for r in records
        if r.partition_key == partition
    ]


def test_a_review_updates_what_the_ui_shows(
    database_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proposal asset's materialisation said 'proposed'; after the review an observation
    of the same partition says what it is now, whether the review ran as a job or on the CLI."""
    instance = dg.DagsterInstance.ephemeral()
    first = materialize(database_url, ALL, instance=instance, sample_scenario="rapid_growth")
    day_one = metadata(first, "profit_split_proposal")
    other_day = (LATEST_DAY - timedelta(days=1)).isoformat()
    second = materialize(
        database_url,
        [platform_metrics, profit_split_proposal],
        other_day,
        instance=instance,
        sample_scenario="declining",
    )
    day_two = metadata(second, "profit_split_proposal")
    assert day_one["status"] == day_two["status"] == "proposed"

    approved = _review_job(database_url, day_one["proposal_id"], True, "bob", instance=instance)
    assert approved.success
    (latest, *_) = _observed(instance, LATEST)
    assert latest["status"] == "active" and latest["in_force"] is True
    assert latest["reviewed_by"] == "bob" and latest["proposal_id"] == day_one["proposal_id"]
    # the other day's proposal was made against the seed: closed, and its partition says so
    (closed, *_) = _observed(instance, other_day)
    assert closed["status"] == "rejected" and closed["reviewed_by"] == "system"

    # the command line records observations in the instance of DAGSTER_HOME
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    third_day = (LATEST_DAY - timedelta(days=2)).isoformat()
    third = materialize(
        database_url,
        [platform_metrics, profit_split_proposal],
        third_day,
        sample_scenario="treasury_critical",
    )
    third_id = metadata(third, "profit_split_proposal")["proposal_id"]
    runner = CliRunner()
    reviewed = runner.invoke(
        cli,
        [
            "proposals",
            "review",
            "--database-url",
            database_url,
            third_id,
            "--reject",
            "--by",
            "carol",
            "--notes",
            "not now",
        ],
    )
    assert reviewed.exit_code == 0, reviewed.output
    assert "updated in the Dagster instance" in reviewed.output
    with dg.DagsterInstance.get() as persisted:
        (seen, *_) = _observed(persisted, third_day)
    assert seen["status"] == "rejected" and seen["review_notes"] == "not now"


def test_the_distribution_pays_what_the_allocation_paid_out_and_waits_without_it(
    database_url: str,
) -> None:
    first, second = date(2026, 3, 1), date(2026, 3, 2)
    realised = {"profit_source": "realised_yield"}
    waiting = materialize(
        database_url, DISTRIBUTION, partition=str(first), raise_on_error=False, **realised
    )
    assert not waiting.success
    (failure,) = waiting.get_step_failure_events()
    message = failure.event_specific_data.error.message
    assert "the distribution of 2026-03-01 waits" in message
    assert "materialise asset_allocations for 2026-03-01 first" in message
    assert distribution(database_url, first) == {}  # nothing paid from a configured default

    assert run_days(chain_resources(database_url), first, second).success
    engine = get_engine(database_url)
    with engine.connect() as conn:
        payouts = {d: recorded_payout(read_allocation(conn, d).report) for d in (first, second)}  # type: ignore[union-attr]
    loss = materialize(database_url, DISTRIBUTION, partition=str(first), **realised)
    assert payouts[first].profit_usd < 0  # day 1 places the idle capital: costs, no yield yet
    assert "a loss" in metadata(loss, "profit_distribution")["notes"]
    assert set(distribution(database_url, first).values()) == {D("0.00")}

    gain = materialize(database_url, DISTRIBUTION, partition=str(second), **realised)
    md = metadata(gain, "profit_distribution")
    assert md["profit_source"] == "realised_yield" and md["notes"] == "none"
    assert payouts[second].profit_usd > 0
    assert distribution(database_url, second) == dict(payouts[second].amounts)
    assert md["split_id"] == payouts[second].split_id
    # what was paid is what left the treasury: the next day's paper ledger is short by it
    with engine.connect() as conn:
        next_day = read_holdings(conn, second + timedelta(days=1))
        start = read_holdings(conn, second)
    assert next_day is not None and start is not None
    assert (
        next_day.total_usd
        == start.total_usd + payouts[second].profit_usd - payouts[second].paid_usd
    )

    configured = materialize(
        database_url,
        DISTRIBUTION,
        partition="2025-02-01",
        profit_source="configured",
        default_profit_usd="10.00",
    )
    assert metadata(configured, "profit_distribution")["profit_source"] == "configured"
    assert sum(distribution(database_url, date(2025, 2, 1)).values()) == D("10.00")

    bad = materialize(
        database_url,
        DISTRIBUTION,
        partition="2025-02-05",
        raise_on_error=False,
        default_profit_usd="10.001",
    )
    assert not bad.success


def test_metrics_from_the_database(database_url: str) -> None:
    engine = get_engine(database_url)
    seed = store.ensure_active_split(engine)
    day = date(2025, 3, 10)
    store.write_platform_metrics(engine, sample_metrics(day, "declining", seed.split))
    before = store.list_proposals(engine)
    selection = [platform_metrics, profit_split_proposal]
    result = materialize(database_url, selection, partition="2025-03-10", metrics_source="database")
    assert metadata(result, "platform_metrics")["source"] == "database"
    stored = store.get_proposal(engine, metadata(result, "profit_split_proposal")["proposal_id"])
    assert stored.input_metrics["source"] == "database"
    assert stored.split.reinvestment > SEED_SPLIT.reinvestment  # declining activity

    missing = materialize(
        database_url,
        selection,
        partition="2025-03-11",
        raise_on_error=False,
        metrics_source="database",
    )
    assert not missing.success
    message = _failure(missing)
    assert "no metrics for 2025-03-11" in message and "no sample data in production" in message
    assert "allocator metrics import --day 2025-03-11 FILE" in message
    assert "Traceback" not in message
    assert store.day_record(engine, date(2025, 3, 11)) is None
    assert len(store.list_proposals(engine)) == len(before) + 1  # only 2025-03-10's


def test_the_auto_approve_policy_activates_small_confident_changes(database_url: str) -> None:
    result = materialize(
        database_url,
        ALL,
        sample_scenario="treasury_critical",
        auto_approve=True,
        auto_approve_min_confidence=0.8,
        auto_approve_max_change_pct=5.0,
    )
    md = metadata(result, "profit_split_proposal")
    assert md["status"] == "active" and md["auto_approve"].startswith("auto-approved")
    stored = store.get_proposal(get_engine(database_url), md["proposal_id"])
    assert stored.reviewed_by == AUTO_APPROVE_REVIEWER and stored.split.dao == D(20)
    assert metadata(result, "profit_distribution")["split_id"] == md["proposal_id"]
    assert distribution(database_url)["dao"] == D("200.00")

    refused = materialize(
        database_url,
        [platform_metrics, profit_split_proposal],
        (LATEST_DAY - timedelta(days=1)).isoformat(),
        sample_scenario="rapid_growth",
        auto_approve=True,
        auto_approve_max_change_pct=1.0,
    )
    refused_md = metadata(refused, "profit_split_proposal")
    assert refused_md["status"] == "proposed" and "exceeds" in refused_md["auto_approve"]


def test_the_blocking_check_fails_the_run_when_cents_do_not_add_up(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = assets_module.distribute

    def off_by_a_cent(profit: Decimal, split: Split) -> dict[str, Decimal]:
        amounts = real(profit, split)  # still sums to the profit, but not what the split gives
        amounts["reinvestment"] -= D("0.01")
        amounts["creator"] += D("0.01")
        return amounts

    monkeypatch.setattr(assets_module, "distribute", off_by_a_cent)
    result = materialize(database_url, DISTRIBUTION, raise_on_error=False)
    assert not result.success
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "creator got 20.01, the split gives 20.00" in str(check.metadata["problems"].value)


def test_the_definitions(monkeypatch: pytest.MonkeyPatch) -> None:
    defs = build_definitions()
    job = defs.resolve_job_def("profit_split_job")
    assert job.partitions_def == PARTITIONS
    assert PARTITIONS.start.date() == date(2025, 1, 1) and PARTITIONS.timezone == "UTC"
    schedule = defs.resolve_schedule_def("profit_split_daily")
    assert schedule.cron_schedule == "0 6 * * *" and schedule.job_name == "profit_split_job"
    assert defs.resolve_job_def("review_proposal_job") is not None
    asset_graph = defs.resolve_asset_graph()
    for asset in (platform_metrics, profit_split_proposal, profit_distribution):
        assert asset_graph.get(asset.key).group_name == "profit_split"
    assert asset_graph.get_check_spec(distribution_cents_add_up.check_key).blocking

    monkeypatch.delenv(LLM_URL_ENV, raising=False)
    monkeypatch.delenv(LLM_API_KEY_ENV, raising=False)
    assert default_profit_split_config().llm_api_key == ""
    monkeypatch.setenv(LLM_URL_ENV, "http://127.0.0.1:1/v1")
    monkeypatch.setenv(LLM_API_KEY_ENV, "sk-x")
    config = default_profit_split_config()
    assert isinstance(config.llm_api_key, dg.EnvVar) and isinstance(config.llm_url, dg.EnvVar)


def test_cli_errors(database_url: str) -> None:
    runner = CliRunner()
    base = ["proposals"]
    db = ["--database-url", database_url]
    assert runner.invoke(cli, [*base, "list"]).output.strip() == "no proposals"
    missing = runner.invoke(cli, [*base, "show", *db, "42"])
    assert missing.exit_code == 2 and "no proposal with id '42'" in missing.output
    assert "Traceback" not in missing.output
    no_decision = runner.invoke(cli, [*base, "review", *db, "1", "--by", "x"])
    assert no_decision.exit_code == 2 and "--approve or --reject" in no_decision.output
    invalid = runner.invoke(
        cli,
        [
            *base,
            "propose",
            *db,
            "--reinvestment",
            "95",
            "--dao",
            "3",
            "--lucky",
            "1",
            "--creator",
            "1",
            "--by",
            "erin",
            "--reasoning",
            "all in",
        ],
    )
    assert invalid.exit_code == 2 and "outside its bounds" in invalid.output
    proposed = runner.invoke(
        cli,
        [
            *base,
            "propose",
            *db,
            "--reinvestment",
            "78.5",
            "--dao",
            "15",
            "--lucky",
            "4",
            "--creator",
            "2.5",
            "--by",
            "erin",
            "--reasoning",
            "a bit more lottery",
        ],
    )
    assert proposed.exit_code == 0, proposed.output
    listed = runner.invoke(cli, [*base, "list", *db, "--json"])
    assert '"proposer": "manual"' in listed.output and '"status": "active"' in listed.output
    assert '"proposed_by": "manual"' in listed.output
    with get_engine(database_url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM profit_allocation_log")).scalar() == 2


def test_rematerialising_a_day_never_proposes_again(database_url: str) -> None:
    engine = get_engine(database_url)
    first = materialize(database_url, ALL, sample_scenario="rapid_growth")
    second = materialize(database_url, ALL, sample_scenario="rapid_growth")
    assert first.success and second.success
    proposal_id = metadata(first, "profit_split_proposal")["proposal_id"]
    reused = metadata(second, "profit_split_proposal")
    assert reused["proposal_id"] == proposal_id and reused["reused"] is True
    assert reused["auto_approve"] == "the day was decided before"
    # reviewed or not: after a rejection the day still has its answer
    store.review_proposal(engine, proposal_id, approve=False, by="bob")
    third = materialize(database_url, ALL, sample_scenario="declining")
    assert metadata(third, "profit_split_proposal")["proposal_id"] == proposal_id
    assert metadata(third, "profit_split_proposal")["status"] == "rejected"
    day_rows = [p for p in store.list_proposals(engine) if p.proposal_date == LATEST_DAY]
    assert len(day_rows) == 1


def test_a_maintain_day_needs_no_review(database_url: str) -> None:
    engine = get_engine(database_url)
    result = materialize(database_url, ALL, sample_scenario="steady")
    md = metadata(result, "profit_split_proposal")
    assert md["outcome"] == "maintain" and "proposal_id" not in md
    assert md["auto_approve"] == "a maintain answer needs no review"
    assert store.list_proposals(engine, status="proposed") == []
    record = store.day_record(engine, LATEST_DAY)
    assert record.outcome == "maintain" and record.in_force_id == store.active_split(engine).id
