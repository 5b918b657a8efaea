"""`allocator activity`: the transparency log (protocol_activity), oldest event first."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from allocator_dagster.cli.options import database_url_option, fail
from allocator_dagster.storage import StorageError, get_engine
from allocator_dagster.storage.activity import list_activity
from allocator_dagster.storage.schema import ACTIVITY_EVENTS
from allocator_dagster.terminal import shown


def _summary(payload: dict) -> str:
    """The payload in one line: its keys and short values, in a stable order."""
    parts = []
    for key in sorted(payload):
        value = payload[key]
        if value is None or value == [] or value == {}:
            continue
        text = json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)
        parts.append(f"{key}={text if len(text) <= 80 else text[:77] + '...'}")
    return " ".join(parts)


@click.command("activity")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="Only events at or after this UTC day or time.",
)
@click.option("--event", "event_type", type=click.Choice(ACTIVITY_EVENTS), help="Only this event.")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=None, help="The newest N.")
@click.option(
    "--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True
)
@database_url_option
def command(
    since: datetime | None,
    event_type: str | None,
    limit: int | None,
    fmt: str,
    database_url: str | None,
) -> None:
    """Every recorded event: proposals, warnings, reviews, activations, distributions, list
    changes and forced reallocations (one JSON object per line with --format json)."""
    try:
        engine = get_engine(database_url)
    except StorageError as exc:
        fail(exc)
    events = list_activity(
        engine,
        since=since.replace(tzinfo=UTC) if since else None,
        event_type=event_type,
        limit=limit,
    )
    if fmt == "json":
        for event in events:
            click.echo(json.dumps(event.to_json(), sort_keys=True))
        return
    if not events:
        click.echo("no activity" + (f" since {since:%Y-%m-%d %H:%M:%S} UTC" if since else ""))
        return
    for event in events:
        click.echo(
            f"{event.id:>6}  {event.occurred_at:%Y-%m-%d %H:%M:%S}  {event.event_type:20}  "
            f"{shown(event.actor):24}  {event.subject_type}:{event.subject_id}  "
            f"{shown(_summary(event.payload))}"
        )
