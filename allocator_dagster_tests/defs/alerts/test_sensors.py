"""Issue 12's alerts: each event that needs a person is announced once, to a local webhook.

The sensors are evaluated as the daemon would (build_sensor_context /
build_run_status_sensor_context) on an instance where the real assets ran.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.test_utils import freeze_time

from allocator_dagster.defs.alerts.sensors import (
    check_failure_alert_sensor,
    held_day_alert_sensor,
    run_failure_alert_sensor,
    treasury_alert_sensor,
)
from allocator_dagster.defs.allocation.freshness import freshness_checks
from allocator_dagster.defs.resources import (
    AlertNotifierResource,
)
from allocator_dagster.storage import get_engine
from allocator_dagster.storage import profit_split as split_store
from allocator_dagster_tests.defs.profit_split.test_assets import ALL, LATEST_DAY, materialize
from allocator_dagster_tests.support.alert_sensors import watching
from allocator_dagster_tests.support.allocation_runs import (
    ASSETS,
    chain_resources,
    run_days,
    write_params_file,
)
from allocator_dagster_tests.support.fake_webhook import SECRET, FakeWebhook
from allocator_dagster_tests.support.profit_split import SMALL, propose
from allocator_dagster_tests.support.profit_split_runs import run_review

DAY1 = dt.date(2026, 3, 1)


def test_a_held_day_is_announced_once(database_url: str, tmp_path: Path) -> None:
    with watching(held_day_alert_sensor, database_url) as watch:
        instance, hook = watch.instance, watch.hook
        # the first tick starts from now: what happened before is not announced
        assert run_days(chain_resources(database_url), DAY1, instance=instance).success
        first = watch.tick()
        assert isinstance(first, dg.SkipReason) and watch.cursor is not None

        impossible = write_params_file(tmp_path, min_pools=5000, min_position_usd=1000)
        day2 = DAY1 + dt.timedelta(days=1)
        resources = chain_resources(database_url, impossible)
        assert run_days(resources, day2, instance=instance).success
        watch.tick()
        assert len(hook.texts) == 1
        assert hook.texts[0].startswith(
            ":double_vertical_bar: No new allocation on 2026-03-02 (infeasible)"
        )
        assert "min_pools=5000" in hook.texts[0]

        again = watch.tick()
        assert isinstance(again, dg.SkipReason) and len(hook.texts) == 1  # once
        # reproducing the held day gives the same hash: not a new event
        assert run_days(resources, day2, instance=instance).success
        watch.tick()
        assert len(hook.texts) == 1


def test_a_forced_reallocation_is_announced_with_its_reasons_and_the_usd_moved(
    database_url: str,
) -> None:
    resources = chain_resources(database_url)
    with watching(treasury_alert_sensor, database_url) as watch:
        instance, hook = watch.instance, watch.hook
        watch.tick()
        assert watch.cursor == "0"
        assert run_days(resources, DAY1, instance=instance).success
        forced = {"snapshot": "fresh", "force_reasons": ["USDC blacklisted: exploit"]}
        assert run_days(resources, DAY1, config=forced, instance=instance).success
        watch.tick()
        [text] = hook.texts
        # the day starts from idle capital: the whole 10,000,000 is placed again
        assert text == (
            ":warning: Forced reallocation on 2026-03-01: 10,000,000.00 USD moved. Reasons: "
            "forced reallocation requested: USDC blacklisted: exploit."
        )
        watch.tick()
        assert len(hook.texts) == 1


def test_a_proposal_waiting_for_review_is_announced_with_the_command(database_url: str) -> None:
    with watching(treasury_alert_sensor, database_url) as watch:
        instance, hook = watch.instance, watch.hook
        watch.tick()
        assert materialize(database_url, ALL, instance=instance, sample_scenario="rapid_growth")
        watch.tick()
        [proposal] = split_store.list_proposals(get_engine(database_url), status="proposed")
        [text] = hook.texts
        assert f"Profit-split proposal {proposal.id} for {LATEST_DAY} waits for review" in text
        assert f"`allocator proposals review {proposal.id} --approve|--reject --by NAME" in text
        # a re-run reuses the day's answer: nothing new to review
        materialize(database_url, ALL, instance=instance, sample_scenario="rapid_growth")
        watch.tick()
        assert len(hook.texts) == 1


@dg.asset
def guarded() -> int:
    return 1


@dg.asset_check(asset=guarded, blocking=True)
def must_hold() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, description="the cap of 20% is exceeded")


@dg.asset_check(asset=guarded)
def advisory() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, description="only a warning")


def test_a_failed_blocking_check_is_announced_once(database_url: str) -> None:
    with watching(check_failure_alert_sensor, database_url) as watch:
        hook = watch.hook
        watch.tick()
        result = dg.materialize(
            [guarded, must_hold, advisory], instance=watch.instance, raise_on_error=False
        )
        assert not result.success
        watch.tick()
        [text] = hook.texts  # the non-blocking check that failed is not an alert
        assert f"Blocking check `must_hold` of `guarded` failed (run {result.run_id})." in text
        assert "the cap of 20% is exceeded" in text
        watch.tick()
        assert len(hook.texts) == 1


def test_a_stalled_day_is_announced_by_its_freshness_check(database_url: str) -> None:
    with watching(check_failure_alert_sensor, database_url) as watch:
        instance, hook = watch.instance, watch.hook
        watch.tick()
        assert run_days(chain_resources(database_url), DAY1, instance=instance).success
        with freeze_time(dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC)):
            dg.materialize(
                [*ASSETS, *freshness_checks],
                selection=dg.AssetSelection.checks(*freshness_checks),
                instance=instance,
                resources=chain_resources(database_url),
            )
        watch.tick()
    assert len(hook.texts) == 2
    assert all(
        t.startswith(":no_entry: Freshness check `freshness_check` of `") for t in hook.texts
    )
    assert all("expected partition 2026-03-02 to have arrived" in t for t in hook.texts)


def _failure_context(instance, result, url: str, database_url: str):
    run = instance.get_run_by_id(result.run_id)
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE]
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=run,
        resources={"alert_notifier": AlertNotifierResource(webhook_url=url, backoff_seconds=0)},
    ).for_run_failure()


def test_a_failed_run_is_announced_with_its_clear_message(database_url: str) -> None:
    proposal = propose(get_engine(database_url), SMALL, by="alice", day=LATEST_DAY)
    instance = dg.DagsterInstance.ephemeral()
    review = {"proposal_id": str(proposal.id), "approve": True, "by": "alice"}
    own_review = run_review(database_url, review, instance=instance)
    assert not own_review.success
    with FakeWebhook() as hook:
        run_failure_alert_sensor(_failure_context(instance, own_review, hook.url, database_url))
    [text] = hook.texts
    assert f"Run failed: `review_proposal_job` (run {own_review.run_id})." in text
    assert "cannot approve" in text and "Traceback" not in text


def test_a_webhook_that_fails_never_fails_the_tick_nor_shows_its_url(
    database_url: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture
) -> None:
    with (
        watching(check_failure_alert_sensor, database_url, default_status=503) as watch,
        caplog.at_level(logging.DEBUG),
    ):
        watch.tick()
        before = watch.cursor
        dg.materialize([guarded, must_hold], instance=watch.instance, raise_on_error=False)
        watch.tick()
    assert watch.hook.requests == 3 and watch.cursor != before  # retried, bounded, went on
    logged = caplog.text + capfd.readouterr().err  # Python logging and the sensor's log
    assert "not delivered: webhook at 127.0.0.1 answered HTTP 503 after 3 attempt(s)" in logged
    assert SECRET not in logged and "/services/" not in logged
