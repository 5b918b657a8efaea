"""The transparency log `protocol_activity`: one append-only row per event.

Every write that changes the profit split or the allocation's lists records its event through
`record` on the *same connection*, so the event and the change commit or fail together. The
database refuses UPDATE and DELETE on the table (a trigger), so the log can only grow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from allocator_dagster.storage.schema import ACTIVITY_EVENTS, ACTIVITY_SUBJECTS, protocol_activity


def json_ready(value: Any) -> Any:
    """Decimals, times and UUIDs as strings: the stored payload keeps exact values."""
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_ready(v) for v in value]
    return value


@dataclass(frozen=True)
class Activity:
    """One row of protocol_activity."""

    id: int
    occurred_at: datetime
    actor: str
    event_type: str
    subject_type: str
    subject_id: str
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return json_ready(vars(self))


def record(
    conn: sa.Connection,
    event_type: str,
    *,
    actor: str,
    subject_type: str,
    subject_id: object,
    payload: Mapping[str, Any],
    at: datetime,
) -> None:
    """Append one event in the caller's transaction."""
    if event_type not in ACTIVITY_EVENTS:
        raise ValueError(f"unknown activity event {event_type!r}")
    if subject_type not in ACTIVITY_SUBJECTS:
        raise ValueError(f"unknown activity subject {subject_type!r}")
    conn.execute(
        protocol_activity.insert().values(
            occurred_at=at,
            actor=actor,
            event_type=event_type,
            subject_type=subject_type,
            subject_id=str(subject_id),
            payload=json_ready(dict(payload)),
        )
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def list_activity(
    engine: sa.Engine,
    *,
    since: datetime | None = None,
    event_type: str | None = None,
    limit: int | None = None,
) -> list[Activity]:
    """Events in the order they happened (oldest first), optionally from `since` on."""
    query = sa.select(protocol_activity).order_by(protocol_activity.c.id)
    if since is not None:
        query = query.where(protocol_activity.c.occurred_at >= since)
    if event_type is not None:
        query = query.where(protocol_activity.c.event_type == event_type)
    if limit is not None:  # the newest `limit` events, still printed oldest first
        query = query.order_by(None).order_by(protocol_activity.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        rows = [row._mapping for row in conn.execute(query)]
    if limit is not None:
        rows.reverse()
    return [_activity(row) for row in rows]


def _activity(row: sa.RowMapping) -> Activity:
    return Activity(
        id=row["id"],
        occurred_at=_utc(row["occurred_at"]),
        actor=row["actor"],
        event_type=row["event_type"],
        subject_type=row["subject_type"],
        subject_id=row["subject_id"],
        payload=dict(row["payload"] or {}),
    )


def last_activity_id(engine: sa.Engine) -> int:
    """The id of the newest event (0 for an empty log): where a reader that starts now begins."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(protocol_activity.c.id))).scalar() or 0)


def activity_after(
    engine: sa.Engine, after_id: int, event_types: tuple[str, ...], *, limit: int
) -> tuple[list[Activity], int]:
    """Up to `limit` events of these types after `after_id`, oldest first, and the id to read on
    from (the last event looked at, of any type, so other events are not read again)."""
    with engine.connect() as conn:
        rows = [
            row._mapping
            for row in conn.execute(
                sa.select(protocol_activity)
                .where(protocol_activity.c.id > after_id)
                .order_by(protocol_activity.c.id)
                .limit(limit)
            )
        ]
    events = [_activity(row) for row in rows if row["event_type"] in event_types]
    return events, (rows[-1]["id"] if rows else after_id)
