"""Sensors that tell a person when something needs them (messages: `allocator_dagster/alerts.py`).

- a failed run of the code location (either graph, or a review): Dagster's run-failure sensor;
- a failed blocking asset check, and a failed freshness check (a stalled day): check
  evaluations in the event log;
- a forced reallocation (reasons, USD moved) and a profit-split proposal waiting for review: the
  transparency log `protocol_activity`, where each is recorded once, whoever caused it (a sensor
  run, the UI, the command line);
- a day with no new allocation (infeasible or failed, the holdings kept): the materialisations
  of `asset_allocations`; a reproduction that gave the stored hash again is not a new event.

Each sensor keeps a cursor (Dagster's storage id, or the activity id), so each event is
announced once; on its first tick a sensor starts from the newest event (it announces what
happens from then on, not the history). Delivery never fails a tick: the notifier retries a
bounded number of times and logs what it could not deliver.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import sqlalchemy as sa
from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DefaultSensorStatus,
    EventRecordsFilter,
    RunFailureSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from allocator_dagster import alerts
from allocator_dagster.defs.resources import AlertNotifierResource, DatabaseResource
from allocator_dagster.storage import allocations as allocation_store
from allocator_dagster.storage import profit_split as split_store
from allocator_dagster.storage.activity import Activity, activity_after, last_activity_id

BATCH = 50  # events read per tick; the rest wait for the next tick
INTERVAL_SECONDS = 60
ALLOCATIONS = AssetKey("asset_allocations")
PARTITION_TAG = "dagster/partition"
FRESHNESS_PARAMS = "dagster/freshness_params"  # the metadata every Dagster freshness check has
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def _send_all(
    resource: AlertNotifierResource, log: Callable[[str], None], found: list[alerts.Alert]
) -> str:
    """Send each alert once; a summary for the tick (deliveries never raise)."""
    notifier = resource.notifier(log)
    deliveries = [notifier.send(alert) for alert in found]
    failed = [d for d in deliveries if not d.delivered]
    summary = f"{len(deliveries)} alert(s) to {notifier.target}"
    return summary + (f", {len(failed)} not delivered: {failed[0].detail}" if failed else "")


@run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=INTERVAL_SECONDS,
    description="Alerts once per failed run of this code location (allocation, profit split, "
    "review), with the job, its days and the error.",
)
def run_failure_alert_sensor(
    context: RunFailureSensorContext, alert_notifier: AlertNotifierResource
):
    run = context.dagster_run
    tags = run.tags
    if PARTITION_TAG in tags:
        days: str | None = tags[PARTITION_TAG]
    elif all(t in tags for t in RANGE_TAGS):
        days = f"{tags[RANGE_TAGS[0]]}..{tags[RANGE_TAGS[1]]}"
    else:
        days = None
    error = context.failure_event.message
    for step_failure in context.get_step_failure_events():
        data = step_failure.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            error = data.user_failure_data.description  # a dg.Failure: the clear message
        elif data.error is not None:
            error = data.error.message
        break
    alert = alerts.run_failed(run.run_id, run.job_name, days, error)
    context.log.info(_send_all(alert_notifier, context.log.info, [alert]))


def _first_tick(context: SensorEvaluationContext, newest: int) -> SkipReason:
    context.update_cursor(str(newest))
    return SkipReason(f"started: alerts for events after #{newest}")


@sensor(
    name="check_failure_alert_sensor",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=INTERVAL_SECONDS,
    description="Alerts once per failed blocking or freshness asset check (the check, its "
    "asset, day and why).",
)
def check_failure_alert_sensor(
    context: SensorEvaluationContext, alert_notifier: AlertNotifierResource
):
    storage = context.instance.event_log_storage
    if context.cursor is None:
        return _first_tick(context, storage.get_maximum_record_id() or 0)
    records = storage.get_event_records(
        EventRecordsFilter(
            event_type=DagsterEventType.ASSET_CHECK_EVALUATION, after_cursor=int(context.cursor)
        ),
        limit=BATCH,
        ascending=True,
    )
    if not records:
        return SkipReason(f"no check evaluation after #{context.cursor}")
    found = []
    for record in records:
        event = record.event_log_entry.dagster_event
        evaluation = event.event_specific_data if event else None
        if not isinstance(evaluation, AssetCheckEvaluation) or evaluation.passed:
            continue
        freshness = FRESHNESS_PARAMS in evaluation.metadata
        if not (evaluation.blocking or freshness):
            continue
        found.append(
            alerts.check_failed(
                evaluation.asset_key.to_user_string(),
                evaluation.check_name,
                evaluation.partition,
                record.run_id,
                evaluation.description or _details(evaluation),
                kind="Freshness" if freshness else "Blocking",
            )
        )
    context.update_cursor(str(records[-1].storage_id))
    if not found:
        return SkipReason(f"{len(records)} check evaluation(s), none a failed blocking check")
    context.log.info(_send_all(alert_notifier, context.log.info, found))
    return None


def _details(evaluation: AssetCheckEvaluation) -> str | None:
    """A check's own words when it gave no description: its `details` or `problems` metadata."""
    for key in ("details", "problems", "mismatches"):
        value = evaluation.metadata.get(key)
        if value is not None:
            text = str(getattr(value, "value", value))
            return " ".join(line.strip("- ") for line in text.splitlines() if line.strip())
    return None


ACTIVITY_EVENTS = ("forced_reallocation", "proposal_stored")


@sensor(
    name="treasury_alert_sensor",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=INTERVAL_SECONDS,
    description="Alerts once per forced reallocation (reasons, USD moved) and per profit-split "
    "proposal waiting for review (with the command to review it), from the transparency log.",
)
def treasury_alert_sensor(
    context: SensorEvaluationContext,
    database: DatabaseResource,
    alert_notifier: AlertNotifierResource,
):
    engine = database.engine()
    if context.cursor is None:
        return _first_tick(context, last_activity_id(engine))
    events, read_to = activity_after(engine, int(context.cursor), ACTIVITY_EVENTS, limit=BATCH)
    found = list(_activity_alerts(engine, events))
    context.update_cursor(str(read_to))
    if not found:
        return SkipReason(f"nothing needs a person up to activity #{read_to}")
    context.log.info(_send_all(alert_notifier, context.log.info, found))
    return None


def _activity_alerts(engine: sa.Engine, events: list[Activity]) -> Iterator[alerts.Alert]:
    for event in events:
        if event.event_type == "forced_reallocation":
            day = dt.date.fromisoformat(event.subject_id)
            with engine.connect() as conn:
                stored = allocation_store.read_allocation(conn, day)
            lines = stored.report.get("allocations", []) if stored else []
            yield alerts.forced_reallocation(
                day, event.payload.get("reasons", []), alerts.usd_moved(lines)
            )
        elif event.event_type == "proposal_stored":
            try:
                proposal = split_store.get_proposal(engine, event.subject_id)
            except split_store.ProposalNotFound:
                continue
            if proposal.status != "proposed":  # approved by the policy, or already reviewed
                continue
            yield alerts.proposal_waiting(
                str(proposal.id),
                proposal.proposal_date.isoformat(),
                proposal.split.label(),
                f"allocator proposals review {proposal.id} --approve|--reject --by NAME "
                "--notes TEXT",
            )


@sensor(
    name="held_day_alert_sensor",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=INTERVAL_SECONDS,
    description="Alerts once per day materialised without a new allocation (infeasible or "
    "failed: the holdings are kept), with why.",
)
def held_day_alert_sensor(
    context: SensorEvaluationContext,
    database: DatabaseResource,
    alert_notifier: AlertNotifierResource,
):
    instance = context.instance
    if context.cursor is None:
        return _first_tick(context, instance.event_log_storage.get_maximum_record_id() or 0)
    result = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=ALLOCATIONS, after_storage_id=int(context.cursor)),
        limit=BATCH,
        ascending=True,
    )
    records = list(result.records)
    if not records:
        return SkipReason(f"no asset_allocations materialisation after #{context.cursor}")
    held = []
    for record in records:
        materialization = record.asset_materialization
        if materialization is None or materialization.partition is None:
            continue
        metadata = materialization.metadata
        decision = metadata.get("decision")
        if decision is None or getattr(decision, "value", decision) != "hold":
            continue
        matched = metadata.get("hash_matched")
        if matched is not None and getattr(matched, "value", matched) is True:
            continue  # the same held day reproduced: already announced
        held.append(dt.date.fromisoformat(materialization.partition))
    context.update_cursor(str(records[-1].storage_id))
    found = []
    engine = database.engine()
    for day in dict.fromkeys(held):  # one alert per day, in order
        with engine.connect() as conn:
            stored = allocation_store.read_allocation(conn, day)
        if stored is None:
            continue
        found.append(alerts.held_day(day, str(stored.status), stored.report.get("reasons", [])))
    if not found:
        return SkipReason(f"{len(records)} materialisation(s), no held day")
    context.log.info(_send_all(alert_notifier, context.log.info, found))
    return None
