"""The dynamic list tables and their change history: every change is one transaction."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from allocator_dagster.dynamic_lists import Change, ListValueError, normalise
from allocator_dagster.names import ActorNameError, clean_name
from allocator_dagster.parameters import DynamicLists
from allocator_dagster.storage import activity
from allocator_dagster.storage.db import inserted_id, write_transaction
from allocator_dagster.storage.schema import (
    LIST_TABLES,
    asset_allocation_details,
    dynamic_list_changes,
)


class ListChangeError(ValueError):
    """A change that cannot be made (already listed, not listed, missing reason); nothing written."""


def _table(list_name: str) -> sa.Table:
    if list_name not in LIST_TABLES:
        raise ListChangeError(f"unknown list {list_name!r}; lists: {', '.join(LIST_TABLES)}")
    return LIST_TABLES[list_name]


def change_list(
    engine: sa.Engine, list_name: str, value: str, *, action: str, reason: str, by: str
) -> Change:
    """Add or remove one entry and record who, what, when and why, in one transaction.

    Safe under concurrent changes of the same entry: of simultaneous adds one inserts and the
    others report that the entry is already there; of simultaneous removes exactly one deletes
    and records the removal (the delete's row count decides, not an earlier read).
    """
    table = _table(list_name)
    if action not in ("add", "remove"):
        raise ListChangeError(f"action must be add or remove, got {action!r}")
    if not reason.strip():
        raise ListChangeError("a change needs a --reason")
    try:
        by = clean_name(by, "--by (who makes the change)")
        entry = normalise(list_name, value)
    except (ActorNameError, ListValueError) as exc:
        raise ListChangeError(str(exc)) from None
    now = dt.datetime.now(dt.UTC)
    try:
        with write_transaction(engine) as conn:
            if action == "add":
                exists = conn.execute(sa.select(table.c.value).where(table.c.value == entry))
                if exists.first() is not None:
                    raise ListChangeError(f"{entry!r} is already in {list_name}")
                # a concurrent add that committed after our read violates the primary key here
                conn.execute(
                    table.insert().values(value=entry, added_by=by, added_at=now, reason=reason)
                )
            else:
                # PostgreSQL: a concurrent delete of the row blocks this one until it commits,
                # then this one deletes nothing; SQLite: the write lock is already ours.
                deleted = conn.execute(table.delete().where(table.c.value == entry)).rowcount
                if deleted != 1:
                    raise ListChangeError(f"{entry!r} is not in {list_name}")
            result = conn.execute(
                dynamic_list_changes.insert().values(
                    list_name=list_name,
                    action=action,
                    value=entry,
                    reason=reason,
                    changed_by=by,
                    changed_at=now,
                )
            )
            change_id = inserted_id(result)
            activity.record(
                conn,
                "list_change",
                actor=by,
                subject_type="list_change",
                subject_id=change_id,
                payload={"list": list_name, "action": action, "value": entry, "reason": reason},
                at=now,
            )
    except sa.exc.IntegrityError:
        # only a concurrent add of the same entry is expected here; anything else is raised
        with engine.connect() as conn:
            there = conn.execute(sa.select(table.c.value).where(table.c.value == entry)).first()
        if action != "add" or there is None:
            raise
        raise ListChangeError(f"{entry!r} is already in {list_name}") from None
    return Change(change_id, list_name, action, entry, reason, by)


def list_entries(engine: sa.Engine, list_name: str) -> list[dict]:
    table = _table(list_name)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(table.c.value))]


def changes_after(conn: sa.Connection, change_id: int, limit: int = 1000) -> list[Change]:
    rows = conn.execute(
        sa.select(dynamic_list_changes)
        .where(dynamic_list_changes.c.change_id > change_id)
        .order_by(dynamic_list_changes.c.change_id)
        .limit(limit)
    ).all()
    return [
        Change(r.change_id, r.list_name, r.action, r.value, r.reason, r.changed_by) for r in rows
    ]


def held_pool_details(conn: sa.Connection, allocation_date: dt.date) -> list[dict]:
    rows = conn.execute(
        sa.select(
            asset_allocation_details.c.pool_id,
            asset_allocation_details.c.project,
            asset_allocation_details.c.tokens,
        ).where(
            asset_allocation_details.c.allocation_date == allocation_date,
            asset_allocation_details.c.amount_usd > 0,
        )
    ).all()
    return [dict(r._mapping) for r in rows]


def read_lists(conn: sa.Connection) -> DynamicLists:
    values: dict[str, tuple[str, ...]] = {}
    for name, table in LIST_TABLES.items():
        values[name] = tuple(
            r[0] for r in conn.execute(sa.select(table.c.value).order_by(table.c.value))
        )
    return DynamicLists(**values)


def seed_lists_if_empty(engine: sa.Engine, lists: DynamicLists, *, by: str, reason: str) -> bool:
    """Fill empty list tables once (sample deployment), recorded in the change history."""
    with engine.begin() as conn:
        if any(
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in LIST_TABLES.values()
        ):
            return False
        now = dt.datetime.now(dt.UTC)
        for name, table in LIST_TABLES.items():
            rows = [
                {"value": v, "added_by": by, "added_at": now, "reason": reason}
                for v in getattr(lists, name)
            ]
            if rows:
                conn.execute(table.insert(), rows)
                conn.execute(
                    dynamic_list_changes.insert(),
                    [
                        {
                            "list_name": name,
                            "action": "add",
                            "value": r["value"],
                            "reason": reason,
                            "changed_by": by,
                            "changed_at": now,
                        }
                        for r in rows
                    ],
                )
        return True
