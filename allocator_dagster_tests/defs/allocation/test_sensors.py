"""Issue 5: list changes force a same-day reallocation, once."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from dagster import (
    DagsterInstance,
    Definitions,
    SensorResult,
    SkipReason,
    build_sensor_context,
    materialize,
)

from allocator_dagster.defs.allocation.sensors import list_change_sensor
from allocator_dagster.model import pool_tokens
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage import get_engine
from allocator_dagster.storage.activity import list_activity
from allocator_dagster.storage.lists import change_list
from allocator_dagster.storage.schema import dynamic_list_changes
from allocator_dagster_tests.support.allocation_runs import (
    ASSETS,
    chain_resources,
    held_pools,
    run_days,
)

TODAY = dt.datetime.now(dt.UTC).date()


def _sensor(database_url: str, cursor: str | None):
    resources = chain_resources(database_url)
    context = build_sensor_context(
        instance=DagsterInstance.ephemeral(),
        cursor=cursor,
        resources={"database": resources["database"]},
        definitions=Definitions(
            assets=ASSETS[:2], sensors=[list_change_sensor], resources=resources
        ),
    )
    return list_change_sensor(context)


def test_list_changes_force_todays_reallocation_once(database_url: str) -> None:
    resources = chain_resources(database_url)
    assert run_days(resources, TODAY).success
    engine = get_engine(database_url)
    held = held_pools(engine, TODAY)
    assert len(held) >= 3

    # the seed lists are history too: approvals touch nothing held
    first = _sensor(database_url, None)
    assert isinstance(first, SensorResult) and not first.run_requests
    cursor = first.cursor
    with engine.connect() as conn:
        assert (
            int(cursor)
            == conn.execute(sa.select(sa.func.max(dynamic_list_changes.c.change_id))).scalar_one()
        )

    # a change that touches nothing held requests nothing, but is consumed
    change_list(engine, "icebox_tokens", "NOTHELD", action="add", reason="watch", by="alice")
    quiet = _sensor(database_url, cursor)
    assert not quiet.run_requests and int(quiet.cursor) > int(cursor)
    cursor = quiet.cursor

    # two changes between ticks: both acted on, in one run
    (pool_a, symbol_a, _), (_, _, project_b) = held[0], held[1]
    token_a = pool_tokens(symbol_a, ())[0][0]
    change_list(engine, "blacklisted_tokens", token_a, action="add", reason="exploit", by="bob")
    change_list(
        engine, "approved_protocols", project_b, action="remove", reason="audit failed", by="carol"
    )
    result = _sensor(database_url, cursor)
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.partition_key == TODAY.isoformat()
    reasons = request.run_config["ops"]["allocation_chain"]["config"]["force_reasons"]
    assert any(token_a in r and pool_a in r for r in reasons)
    assert any(project_b in r for r in reasons)
    assert request.tags["allocator/forced_reallocation"] == "true"

    # a repeated tick (same cursor) asks for the same run key: Dagster runs it once
    repeat = _sensor(database_url, cursor)
    assert repeat.run_requests[0].run_key == request.run_key
    # after the cursor moved, nothing more
    assert isinstance(_sensor(database_url, result.cursor), SkipReason)

    # run what the sensor asked for: the new allocation holds none of the affected pools
    run = materialize(
        ASSETS,
        instance=DagsterInstance.ephemeral(),
        resources=resources,
        partition_key=request.partition_key,
        run_config=request.run_config,
        tags=request.tags,
        selection=request.asset_selection,
    )
    assert run.success
    with engine.connect() as conn:
        today = store.read_allocation(conn, TODAY)
    assert today.decision == "forced"
    after = {p for p, _, _ in held_pools(engine, TODAY)}
    assert pool_a not in after
    assert all(project != project_b for _, _, project in held_pools(engine, TODAY))
    assert all(token_a not in pool_tokens(s, ())[0] for _, s, _ in held_pools(engine, TODAY))
    assert today.report["reproduction"]["policy"] == "fresh"
    # re-running the forced day in reproduce mode replays its reasons: same result
    again = run_days(resources, TODAY)
    assert again.success
    with engine.connect() as conn:
        replay = store.read_allocation(conn, TODAY)
    assert (
        replay.result_hash == today.result_hash and replay.report["reproduction"]["matched"] is True
    )
    # the transparency log has each list change and the forced reallocation, once
    changes = list_activity(engine, event_type="list_change")
    assert [(a.actor, a.payload["list"], a.payload["action"]) for a in changes[-3:]] == [
        ("alice", "icebox_tokens", "add"),
        ("bob", "blacklisted_tokens", "add"),
        ("carol", "approved_protocols", "remove"),
    ]
    (forced,) = list_activity(engine, event_type="forced_reallocation")
    assert forced.subject_id == TODAY.isoformat()
    assert all(any(r in logged for logged in forced.payload["reasons"]) for r in reasons)
