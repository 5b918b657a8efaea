"""The one schema, three ways: the metadata (storage/schema.py), sql/schema.sql and the Alembic
migrations must all build the same database, and the database itself must enforce the rules.

- sql/schema.sql is byte for byte what `render_postgresql_ddl()` gives today;
- on PostgreSQL, a database built from sql/schema.sql and one built by the migrations reflect
  identically (columns, keys, check constraints, indexes with the partial one's predicate); on
  SQLite the migrations build what `metadata.create_all` builds;
- Alembic's autogenerate comparison sees no difference between the migrated database and the
  metadata (SQLite and PostgreSQL);
- upgrading a database from 0001 to head keeps every row;
- CHECK constraints and the one-active-split index reject bad rows on both databases;
- an unreachable database gives a StorageError that names the redacted URL, never the password.
"""

from __future__ import annotations

import difflib
import re
import traceback
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from allocator_dagster.storage import StorageError, get_engine, redact, upgrade_schema
from allocator_dagster.storage.day_series import load_day_series
from allocator_dagster.storage.db import alembic_config, current_revision, head_revision
from allocator_dagster.storage.ddl import REGENERATE_COMMAND, render_postgresql_ddl
from allocator_dagster.storage.pool_writes import _metric_rows
from allocator_dagster.storage.schema import (
    allocation_parameters,
    approved_tokens,
    asset_allocations,
    daily_ledger,
    dynamic_list_changes,
    metadata,
    pool_daily_metrics,
    profit_allocation_log,
    profit_distributions,
    profit_split_days,
)
from allocator_dagster_tests.conftest import create_pg_database, drop_pg_database
from allocator_dagster_tests.storage.test_day_series import assert_packed_is_the_rows, awkward_frame

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_SQL = REPO_ROOT / "sql" / "schema.sql"
NOW = datetime(2025, 3, 1, 6, 30, 15, 123456, tzinfo=UTC)


# ------------------------------------------------------------------ helpers


def _scratch_name(purpose: str) -> str:
    return f"allocator_schema_{purpose}_{uuid.uuid4().hex[:8]}"


def _dispose(url: str) -> None:
    """Close the cached engine's connections so the scratch database can be dropped."""
    get_engine(url, upgrade=False).dispose()


def _norm(text: Any) -> str:
    """SQL text with runs of whitespace collapsed: layout is not part of the schema."""
    return re.sub(r"\s+", " ", str(text)).strip()


def _snapshot(engine: sa.Engine) -> dict[str, Any]:
    """Everything about the application tables that reflection can see, in a comparable form."""
    inspector = sa.inspect(engine)
    tables: dict[str, Any] = {}
    for name in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        pk = inspector.get_pk_constraint(name)
        tables[name] = {
            "columns": [
                (c["name"], repr(c["type"]), c["nullable"], _norm(c.get("default")))
                for c in inspector.get_columns(name)
            ],
            "primary_key": (pk["name"], tuple(pk["constrained_columns"])),
            "foreign_keys": sorted(
                (
                    fk["name"],
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    tuple(sorted(fk.get("options", {}).items())),
                )
                for fk in inspector.get_foreign_keys(name)
            ),
            "unique": sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(name)
            ),
            "checks": sorted(
                (c["name"], _norm(c["sqltext"])) for c in inspector.get_check_constraints(name)
            ),
            "indexes": sorted(
                (
                    ix["name"],
                    tuple(ix["column_names"]),
                    bool(ix["unique"]),
                    tuple(
                        sorted(
                            (k, _norm(v))
                            for k, v in ix.get("dialect_options", {}).items()
                            if k.endswith("_where")
                        )
                    ),
                )
                for ix in inspector.get_indexes(name)
            ),
        }
    snapshot: dict[str, Any] = {"tables": tables}
    if engine.dialect.name == "postgresql":
        snapshot["sequences"] = sorted(inspector.get_sequence_names())
    return snapshot


def _assert_same(expected: dict[str, Any], actual: dict[str, Any], what: str) -> None:
    """Equal snapshots, or a failure that lists exactly which table and aspect differ."""
    assert set(actual["tables"]) == set(expected["tables"]), what
    differences = [
        f"{table}.{aspect}:\n  expected {expected['tables'][table][aspect]}\n"
        f"  actual   {actual['tables'][table][aspect]}"
        for table in sorted(expected["tables"])
        for aspect in expected["tables"][table]
        if expected["tables"][table][aspect] != actual["tables"][table][aspect]
    ]
    assert not differences, f"{what}:\n" + "\n".join(differences)
    assert actual == expected, what


@pytest.fixture
def pg_scratch(pg_server: str) -> Iterator[Callable[[str], str]]:
    """Creates scratch databases on demand (never in the admin database); drops them afterwards."""
    created: list[tuple[str, str]] = []

    def make(purpose: str) -> str:
        name = _scratch_name(purpose)
        url = create_pg_database(pg_server, name)
        created.append((name, url))
        return url

    yield make
    for name, url in created:
        _dispose(url)
        drop_pg_database(pg_server, name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no tables at all, on each backend (migrations start from nothing)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.sqlite'}"
    return request.getfixturevalue("pg_scratch")("empty")


# ------------------------------------------------------------------ sql/schema.sql is current


def test_schema_sql_is_the_rendered_metadata() -> None:
    rendered = render_postgresql_ddl()
    on_disk_bytes = SCHEMA_SQL.read_bytes() if SCHEMA_SQL.exists() else b""
    on_disk = on_disk_bytes.decode(errors="replace")
    diff = "".join(
        difflib.unified_diff(
            on_disk.splitlines(keepends=True),
            rendered.splitlines(keepends=True),
            "sql/schema.sql",
            "render_postgresql_ddl()",
            n=1,
        )
    )
    assert on_disk_bytes == rendered.encode(), (
        f"sql/schema.sql does not match storage/schema.py; regenerate it with "
        f"`{REGENERATE_COMMAND}` (from the repository root).\n{diff[:4000]}"
    )


def test_rendered_ddl_is_complete_and_ordered() -> None:
    """Every table, each after the tables it references, and the partial unique index."""
    ddl = render_postgresql_ddl()
    positions = {t.name: ddl.find(f"CREATE TABLE {t.name} (") for t in metadata.tables.values()}
    assert all(p >= 0 for p in positions.values()), positions
    for table in metadata.tables.values():
        for fk in table.foreign_keys:
            if fk.column.table is not table:  # a self-reference needs no order
                assert positions[fk.column.table.name] < positions[table.name], fk
    assert (
        "CREATE UNIQUE INDEX uq_profit_allocation_log_in_force ON profit_allocation_log "
        "(status) WHERE status = 'active' AND effective_until IS NULL;"
    ) in ddl
    assert (
        "CONSTRAINT valid_total CHECK (reinvestment_pct + dao_pct + lucky_pct + creator_pct = 100)"
        in ddl
    )
    assert "CREATE TRIGGER protocol_activity_append_only BEFORE UPDATE OR DELETE" in ddl
    assert ddl.startswith("-- ") and REGENERATE_COMMAND in ddl.split("\n\n")[0]


# ------------------------------------------------------------------ the three agree


@pytest.mark.postgres
def test_schema_sql_and_migrations_build_the_same_postgresql_database(
    pg_scratch: Callable[[str], str],
) -> None:
    from_sql = sa.create_engine(pg_scratch("sql"))
    try:
        with from_sql.begin() as conn:
            conn.exec_driver_sql(SCHEMA_SQL.read_text())
        expected = _snapshot(from_sql)
    finally:
        from_sql.dispose()
    migrated = get_engine(pg_scratch("migrated"))
    actual = _snapshot(migrated)

    assert set(expected["tables"]) == set(metadata.tables)
    partial = expected["tables"]["profit_allocation_log"]["indexes"]
    assert partial[2][:3] == ("uq_profit_allocation_log_in_force", ("status",), True)
    assert "effective_until IS NULL" in dict(partial[2][3])["postgresql_where"]
    checks = dict(expected["tables"]["profit_allocation_log"]["checks"])
    assert len(checks) == 11
    # the specification's exact sum on PostgreSQL (SQLite's REAL needs the rounded one)
    assert "creator_pct" in checks["valid_total"] and "round" not in checks["valid_total"].lower()
    _assert_same(expected, actual, "sql/schema.sql vs the Alembic migrations on PostgreSQL")


def test_migrations_build_what_create_all_builds_on_sqlite(tmp_path: Path) -> None:
    created = sa.create_engine(f"sqlite:///{tmp_path / 'create_all.sqlite'}")
    metadata.create_all(created)
    expected = _snapshot(created)
    created.dispose()
    actual = _snapshot(get_engine(f"sqlite:///{tmp_path / 'migrated.sqlite'}"))
    _assert_same(expected, actual, "metadata.create_all vs the Alembic migrations on SQLite")


def test_snapshot_sees_a_changed_check_and_index_predicate(tmp_path: Path) -> None:
    """The comparison above is not blind: a changed check text or partial-index predicate shows."""
    changed = sa.MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    log = changed.tables["profit_allocation_log"]
    next(
        c for c in log.constraints if c.name == "ck_profit_allocation_log_confidence_range"
    ).sqltext = sa.text("confidence >= 0 AND confidence < 1")
    index = next(ix for ix in log.indexes if ix.name == "uq_profit_allocation_log_in_force")
    index.dialect_options["sqlite"]["where"] = log.c.status == "proposed"

    snapshots = []
    for name, meta in (("same", metadata), ("changed", changed)):
        engine = sa.create_engine(f"sqlite:///{tmp_path / name}.sqlite")
        meta.create_all(engine)
        snapshots.append(_snapshot(engine))
        engine.dispose()
    with pytest.raises(AssertionError) as failure:
        _assert_same(snapshots[0], snapshots[1], "control")
    assert "profit_allocation_log.checks" in str(failure.value)
    assert "profit_allocation_log.indexes" in str(failure.value)


def test_autogenerate_finds_no_difference_from_the_metadata(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], f"the migrated database differs from storage/schema.py: {diff}"


def test_autogenerate_comparison_is_not_blind(engine: sa.Engine) -> None:
    """Control for the test above: a changed type, a new column and a new index are reported."""
    changed = sa.MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    ledger = changed.tables["daily_ledger"]
    ledger.c.source.type = sa.String(64)
    ledger.append_column(sa.Column("note", sa.Text))
    sa.Index("ix_daily_ledger_source", ledger.c.source)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), changed)
    kinds = {d[0][0] if isinstance(d, list) else d[0] for d in diff}
    assert {"modify_type", "add_column", "add_index"} <= kinds, diff


# ------------------------------------------------------------------ upgrades keep rows


def _seed_0001_rows(conn: sa.Connection) -> dict[str, list[dict[str, Any]]]:
    """Rows in several 0001 tables (with NULLs, exact cents, JSON, UTC times, a foreign key)."""
    parameters_row = {
        "allocation_date": date(2025, 3, 1),
        "mode": "original",
        "parameters": {"min_pools": 3, "gas_usd": {"default": 2.5}},
        "dynamic_lists": {"approved_tokens": ["USDC", "DAI"]},
        "metrics_hash": "m" * 64,
        "balances_hash": "b" * 64,
        "code_version": "0.1.0",
        "solver_versions": {"highspy": "1.7"},
        "snapshot_hash": "s" * 64,
        "created_at": NOW,
    }
    snapshot_id = conn.execute(
        allocation_parameters.insert().returning(allocation_parameters.c.snapshot_id),
        parameters_row,
    ).scalar_one()
    rows: dict[str, list[dict[str, Any]]] = {
        "pool_daily_metrics": [
            {
                "metric_date": date(2025, 3, 1),
                "pool_id": "pool-a",
                "chain": "Ethereum",
                "project": "aave-v3",
                "symbol": "USDC",
                "underlying_tokens": ["0xA0b8"],
                "tvl_usd": 123456789.25,
                "apy": 4.5,
                "apy_base": 4.0,
                "apy_reward": 0.5,
                "apy_mean_30d": 4.2,
                "stablecoin": True,
                "il_risk": "no",
                "exposure": "single",
                "pool_meta": None,
                "apy_forecast": 4.4,
                "apy_base_forecast": 3.9,
                "apy_reward_forecast": 0.5,
                "tvl_forecast": 120000000.0,
                "source": "sample",
                "ingested_at": NOW,
            },
            {
                "metric_date": date(2025, 3, 2),
                "pool_id": "pool-b",
                "chain": "Base",
                "project": "curve-dex",
                "symbol": "USDC-DAI",
                "underlying_tokens": [],
                "tvl_usd": 0.0,
                "apy": None,
                "apy_base": None,
                "apy_reward": None,
                "apy_mean_30d": None,
                "stablecoin": False,
                "il_risk": None,
                "exposure": None,
                "pool_meta": "v2",
                "apy_forecast": None,
                "apy_base_forecast": None,
                "apy_reward_forecast": None,
                "tvl_forecast": None,
                "source": "defillama",
                "ingested_at": NOW,
            },
        ],
        "daily_ledger": [
            {
                "ledger_date": date(2025, 3, 1),
                "pool_id": "idle_usd",
                "amount_usd": Decimal("1234.56"),
                "source": "holdings",
                "recorded_at": NOW,
            },
            {
                "ledger_date": date(2025, 3, 1),
                "pool_id": "pool-a",
                "amount_usd": Decimal("98765432.10"),
                "source": "allocation",
                "recorded_at": NOW,
            },
        ],
        "approved_tokens": [
            {"value": "USDC", "added_by": "alice", "added_at": NOW, "reason": "seed"},
            {"value": "DAI", "added_by": "bob", "added_at": NOW, "reason": "stable"},
        ],
        "dynamic_list_changes": [
            {
                "list_name": "approved_tokens",
                "action": "add",
                "value": "DAI",
                "reason": "stable",
                "changed_by": "bob",
                "changed_at": NOW,
            }
        ],
        "asset_allocations": [
            {
                "allocation_date": date(2025, 3, 1),
                "status": "optimal",
                "decision": "full",
                "reasons": ["first day"],
                "total_usd": Decimal("98766666.66"),
                "expected_daily_yield_usd": 12.5,
                "gas_cost_usd": 2.5,
                "conversion_cost_usd": 0.0,
                "objective_usd_per_day": 10.0,
                "solver": "convex",
                "snapshot_id": snapshot_id,
                "result_hash": "r" * 64,
                "report": {"pools": 1},
                "created_at": NOW,
            }
        ],
    }
    for name, table_rows in rows.items():
        conn.execute(metadata.tables[name].insert(), table_rows)
    rows["allocation_parameters"] = [{"snapshot_id": snapshot_id, **parameters_row}]
    return rows


TABLES_0001 = (
    pool_daily_metrics,
    daily_ledger,
    approved_tokens,
    dynamic_list_changes,
    allocation_parameters,
    asset_allocations,
)


def _read_all(engine: sa.Engine) -> dict[str, list[dict[str, Any]]]:
    with engine.connect() as conn:
        return {
            t.name: [
                dict(r._mapping)
                for r in conn.execute(sa.select(t).order_by(*t.primary_key.columns))
            ]
            for t in TABLES_0001
        }


def _comparable(value: Any) -> Any:
    """UTC wall time for datetimes: SQLite returns them naive, PostgreSQL aware."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _without_keys(rows: list[dict[str, Any]], keys: set[str]) -> list[dict[str, Any]]:
    return [{k: _comparable(v) for k, v in r.items() if k not in keys} for r in rows]


def test_upgrading_from_0001_keeps_every_row(empty_database_url: str) -> None:
    engine = get_engine(empty_database_url, upgrade=False)
    upgrade_schema(engine, "0001")
    assert current_revision(engine) == "0001"
    assert profit_allocation_log.name not in sa.inspect(engine).get_table_names()
    with engine.begin() as conn:
        inserted = _seed_0001_rows(conn)
    before = _read_all(engine)
    # what went in is what is read back (modulo generated keys and the UTC wall-time rule)
    for table in TABLES_0001:
        generated = {"change_id"} if table is dynamic_list_changes else set()
        key = list(table.primary_key.columns.keys())
        expected = sorted(
            _without_keys(inserted[table.name], generated),
            key=lambda r: [r[k] for k in key if k in r],
        )
        assert _without_keys(before[table.name], generated) == expected, table.name

    upgrade_schema(engine, "head")
    engine.dispose()  # a fresh connection sees the upgraded catalogue

    assert current_revision(engine) == head_revision()
    assert set(metadata.tables) <= set(sa.inspect(engine).get_table_names())
    after = _read_all(engine)
    assert after == before
    # the autoincrement counter survived too: a new change gets a new id
    with engine.begin() as conn:
        new_id = conn.execute(
            dynamic_list_changes.insert().returning(dynamic_list_changes.c.change_id),
            {**inserted["dynamic_list_changes"][0], "action": "remove"},
        ).scalar_one()
    assert new_id > max(r["change_id"] for r in after["dynamic_list_changes"])


# ------------------------------------------------------------------ constraints bite


def _split_row(**overrides: Any) -> dict[str, Any]:
    row = {
        "id": uuid.uuid4(),
        "timestamp": NOW,
        "status": "proposed",
        "proposed_by": "manual",
        "reinvestment_pct": Decimal("77.1"),
        "dao_pct": Decimal("15.3"),
        "lucky_pct": Decimal("4.8"),
        "creator_pct": Decimal("2.8"),
        "reasoning": "test",
        "confidence": Decimal("0.75"),
        "input_metrics": {},
        "effective_from": None,
        "effective_until": None,
        "proposal_date": date(2025, 3, 1),
        "proposer": "manual",
        "proposer_name": "alice",
        "should_rebalance": True,
        "warnings": [],
    }
    row.update(overrides)
    return row


def _allocation_row(snapshot_id: int, **overrides: Any) -> dict[str, Any]:
    row = {
        "allocation_date": date(2025, 3, 2),
        "status": "optimal",
        "decision": "hold",
        "reasons": [],
        "total_usd": Decimal("100.00"),
        "expected_daily_yield_usd": 0.0,
        "gas_cost_usd": 0.0,
        "conversion_cost_usd": 0.0,
        "objective_usd_per_day": 0.0,
        "solver": "convex",
        "snapshot_id": snapshot_id,
        "result_hash": "r" * 64,
        "report": {},
        "created_at": NOW,
    }
    row.update(overrides)
    return row


def _ledger_row(**overrides: Any) -> dict[str, Any]:
    row = {
        "ledger_date": date(2025, 3, 2),
        "pool_id": "pool-z",
        "amount_usd": Decimal("0.00"),
        "source": "test",
        "recorded_at": NOW,
    }
    row.update(overrides)
    return row


ACTIVE = {"status": "active", "effective_from": NOW}

# (id, table, bad row builder(snapshot_id), expected error text on sqlite, on postgresql)
VIOLATIONS = [
    (
        "pct_sum_not_100",
        profit_allocation_log,
        lambda _: _split_row(creator_pct=Decimal("2.70")),
        "valid_total",
        "valid_total",
    ),
    (
        "pct_out_of_range",
        profit_allocation_log,
        lambda _: _split_row(
            reinvestment_pct=Decimal("101.00"),
            dao_pct=Decimal("-1.00"),
            lucky_pct=Decimal("0.00"),
            creator_pct=Decimal("0.00"),
        ),
        "_pct_range",  # reinvestment's or dao's: which one a database reports first varies
        "_pct_range",
    ),
    (
        "unknown_status",
        profit_allocation_log,
        lambda _: _split_row(status="superseded", effective_from=NOW),
        "ck_profit_allocation_log_status_values",
        "ck_profit_allocation_log_status_values",
    ),
    (
        "unknown_proposed_by",
        profit_allocation_log,
        lambda _: _split_row(proposed_by="rules-proposer"),
        "ck_profit_allocation_log_proposed_by_values",
        "ck_profit_allocation_log_proposed_by_values",
    ),
    (
        "ended_before_it_started",
        profit_allocation_log,
        lambda _: _split_row(
            status="active", effective_from=NOW, effective_until=NOW - timedelta(seconds=1)
        ),
        "ck_profit_allocation_log_effective_range",
        "ck_profit_allocation_log_effective_range",
    ),
    (
        "confidence_above_1",
        profit_allocation_log,
        lambda _: _split_row(confidence=Decimal("1.001")),
        "ck_profit_allocation_log_confidence_range",
        "ck_profit_allocation_log_confidence_range",
    ),
    (
        "active_without_effective_from",
        profit_allocation_log,
        lambda _: _split_row(status="active", effective_until=NOW),
        "ck_profit_allocation_log_active_has_effective_from",
        "ck_profit_allocation_log_active_has_effective_from",
    ),
    (
        "second_active_split",
        profit_allocation_log,
        lambda _: _split_row(**ACTIVE),
        "UNIQUE constraint failed: profit_allocation_log.status",
        "uq_profit_allocation_log_in_force",
    ),
    (
        "negative_ledger_amount",
        daily_ledger,
        lambda _: _ledger_row(pool_id="pool-y", amount_usd=Decimal("-0.01")),
        "ck_daily_ledger_amount_not_negative",
        "ck_daily_ledger_amount_not_negative",
    ),
    (
        "unknown_decision",
        asset_allocations,
        lambda snapshot_id: _allocation_row(
            snapshot_id, allocation_date=date(2025, 3, 3), decision="yolo"
        ),
        "ck_asset_allocations_decision_enum",
        "ck_asset_allocations_decision_enum",
    ),
    (
        "unknown_list_action",
        dynamic_list_changes,
        lambda _: {
            "list_name": "approved_tokens",
            "action": "delete",
            "value": "USDC",
            "reason": "x",
            "changed_by": "alice",
            "changed_at": NOW,
        },
        "ck_dynamic_list_changes_action_enum",
        "ck_dynamic_list_changes_action_enum",
    ),
]


def _valid_rows(conn: sa.Connection) -> int:
    """Rows the rules allow, close to each violation (so only the violated rule can refuse it)."""
    snapshot_id = _seed_0001_rows(conn)["allocation_parameters"][0]["snapshot_id"]
    conn.execute(
        profit_allocation_log.insert(),
        [
            _split_row(**ACTIVE),
            _split_row(status="active", effective_from=NOW, effective_until=NOW),
            _split_row(),
            _split_row(status="rejected", confidence=Decimal("1.000"), proposed_by="ai"),
            _split_row(
                reinvestment_pct=Decimal("100.00"),
                dao_pct=Decimal("0.00"),
                lucky_pct=Decimal("0.00"),
                creator_pct=Decimal("0.00"),
                confidence=Decimal("0.000"),
            ),
        ],
    )
    conn.execute(daily_ledger.insert(), _ledger_row())
    conn.execute(asset_allocations.insert(), _allocation_row(snapshot_id))
    return snapshot_id


@pytest.mark.parametrize(
    ("table", "bad_row", "sqlite_error", "postgresql_error"),
    [pytest.param(*v[1:], id=v[0]) for v in VIOLATIONS],
)
def test_the_database_refuses_rows_that_break_the_rules(
    engine: sa.Engine,
    table: sa.Table,
    bad_row: Callable[[int], dict[str, Any]],
    sqlite_error: str,
    postgresql_error: str,
) -> None:
    with engine.begin() as conn:
        snapshot_id = _valid_rows(conn)
    row = bad_row(snapshot_id)
    with pytest.raises(sa.exc.IntegrityError) as refused, engine.begin() as conn:
        conn.execute(table.insert(), row)
    expected = sqlite_error if engine.dialect.name == "sqlite" else postgresql_error
    assert expected in str(refused.value.orig)


# ------------------------------------------------------------------ unreachable database


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql+psycopg2://postgres:hunter2-s3cret@127.0.0.1:1/x", "Connection refused"),
        ("postgresql+nosuchdriver://postgres:hunter2-s3cret@127.0.0.1:1/x", "nosuchdriver"),
    ],
    ids=["connection_refused", "missing_driver"],
)
def test_unusable_database_is_a_storage_error_without_the_password(url: str, problem: str) -> None:
    with pytest.raises(StorageError) as failure:
        get_engine(url)
    message = str(failure.value)
    assert redact(url) in message
    assert "postgres:***@127.0.0.1:1/x" in message
    assert problem in message
    chain = []
    exc: BaseException | None = failure.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    for exc in chain:
        assert "hunter2-s3cret" not in "".join(traceback.format_exception(exc)), type(exc)


# ------------------------------------------------------------------ 0004: the specification's log


def _migration_0004() -> Any:
    """The migration module itself (its file name starts with a digit, so it is loaded by path)."""
    import importlib.util

    path = next((REPO_ROOT / "allocator_dagster/storage/migrations/versions").glob("0004_*.py"))
    spec = importlib.util.spec_from_file_location("migration_0004", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


T1 = datetime(2025, 3, 2, 8, 0, tzinfo=UTC)


def _legacy_row(legacy_id: int, **overrides: Any) -> dict[str, Any]:
    row = {
        "proposal_id": legacy_id,
        "proposal_date": date(2025, 3, 1),
        "created_at": NOW,
        "proposer": "rules",
        "proposed_by": "rules-proposer",
        "status": "proposed",
        "reinvestment_pct": Decimal("77.10"),
        "dao_pct": Decimal("15.30"),
        "lucky_pct": Decimal("4.80"),
        "creator_pct": Decimal("2.80"),
        "confidence": Decimal("0.750"),
        "should_rebalance": True,
        "reasoning": f"row {legacy_id}",
        "warnings": [],
        "input_metrics": {"current_proposal_id": 1},
        "fallback_reason": None,
        "reviewed_by": None,
        "reviewed_at": None,
        "review_notes": None,
        "effective_from": None,
        "effective_to": None,
    }
    row.update(overrides)
    return row


LEGACY_ROWS = [
    _legacy_row(
        1,
        proposer="seed",
        proposed_by="seed",
        status="superseded",
        reinvestment_pct=Decimal("80.00"),
        dao_pct=Decimal("15.00"),
        lucky_pct=Decimal("3.00"),
        creator_pct=Decimal("2.00"),
        confidence=Decimal("1.000"),
        should_rebalance=False,
        input_metrics={},
        effective_from=datetime(2025, 1, 1, tzinfo=UTC),
        effective_to=T1,
    ),
    _legacy_row(2, status="active", reviewed_by="bob", reviewed_at=T1, effective_from=T1),
    _legacy_row(
        3,
        proposal_date=date(2025, 3, 2),
        proposer="llm",
        proposed_by="llm:gpt-x",
        status="rejected",
        reviewed_by="carol",
        reviewed_at=T1,
        review_notes="no",
    ),
    _legacy_row(
        4,
        proposal_date=date(2025, 3, 3),
        should_rebalance=False,
        input_metrics={"current_proposal_id": 2},
        reinvestment_pct=Decimal("77.10"),
    ),
    _legacy_row(5, proposer="manual", proposed_by="erin", input_metrics={"current_proposal_id": 2}),
    _legacy_row(6, status="rejected", reviewed_by="bob", reviewed_at=T1),
    # open, but made against the seed, which 2 replaced: approving it would replace 2 silently
    _legacy_row(7, proposal_date=date(2025, 3, 4), proposer="manual", proposed_by="frank"),
]


def test_0004_converts_the_profit_log_without_loss_and_back(empty_database_url: str) -> None:
    migration = _migration_0004()
    old_log, old_distributions = migration._old_tables()
    engine = get_engine(empty_database_url, upgrade=False)
    upgrade_schema(engine, "0003")
    distributions = [
        {
            "distribution_date": date(2025, 3, day),
            "category": category,
            "proposal_id": proposal_id,
            "profit_usd": Decimal("100.00"),
            "pct": pct,
            "amount_usd": pct,
            "profit_source": "configured",
            "created_at": NOW,
        }
        for day, proposal_id, split in ((1, 1, (80, 15, 3, 2)), (2, 2, (77.1, 15.3, 4.8, 2.8)))
        for category, pct in zip(
            ("reinvestment", "dao", "lucky", "creator"),
            (Decimal(str(v)).quantize(Decimal("0.01")) for v in split),
            strict=True,
        )
    ]
    with engine.begin() as conn:
        conn.execute(old_log.insert(), LEGACY_ROWS)
        conn.execute(old_distributions.insert(), distributions)

    upgrade_schema(engine, "0004")
    engine.dispose()
    log = profit_allocation_log
    with engine.connect() as conn:
        rows = {r.legacy_id: r for r in conn.execute(sa.select(log))}
        days = {r.proposal_date: r for r in conn.execute(sa.select(profit_split_days))}
        dist = list(conn.execute(sa.select(profit_distributions).order_by("distribution_date")))
    ids = {legacy: row.id for legacy, row in rows.items()}
    assert all(isinstance(i, uuid.UUID) for i in ids.values()) and len(set(ids.values())) == 7
    assert {k: r.status for k, r in rows.items()} == {
        1: "active",  # replaced: still 'active', with effective_until
        2: "active",
        3: "rejected",
        4: "rejected",  # an open maintain answer is closed: it never waits for a review
        5: "proposed",  # made against 2, which is in force: still open
        6: "rejected",
        7: "rejected",  # made against a replaced split: closed as stale
    }
    assert {k: r.proposed_by for k, r in rows.items()} == {
        1: "system",
        2: "system",
        3: "ai",
        4: "system",
        5: "manual",
        6: "system",
        7: "manual",
    }
    assert {k: r.proposer_name for k, r in rows.items()} == {
        r["proposal_id"]: r["proposed_by"] for r in LEGACY_ROWS
    }
    assert _comparable(rows[1].effective_until) == _comparable(T1)
    assert rows[2].effective_until is None and _comparable(rows[2].effective_from) == _comparable(
        T1
    )
    assert rows[4].reviewed_by == "system" and "maintain" in rows[4].review_notes
    assert rows[7].reviewed_by == "system"
    assert f"made against split {ids[1]}, and split {ids[2]} is in force" in rows[7].review_notes
    assert {k: r.based_on_id for k, r in rows.items()} == {
        1: None,
        2: ids[1],
        3: ids[1],
        4: ids[2],
        5: ids[2],
        6: ids[1],
        7: ids[1],
    }
    assert [rows[1].reinvestment_pct, rows[2].reinvestment_pct] == [Decimal(80), Decimal("77.1")]
    assert all(_comparable(r.timestamp) == _comparable(NOW) for r in rows.values())
    assert [r.proposal_id for r in dist] == [ids[1]] * 4 + [ids[2]] * 4
    # each day's first automatic proposal is the day's answer; the manual one is no day's
    assert {d: (r.outcome, r.proposal_id) for d, r in days.items()} == {
        date(2025, 3, 1): ("proposed", ids[2]),
        date(2025, 3, 2): ("proposed", ids[3]),
        date(2025, 3, 3): ("maintain", ids[4]),
    }

    upgrade_schema(engine, "head")
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0003")
    engine.dispose()
    with engine.connect() as conn:
        back = [dict(r._mapping) for r in conn.execute(sa.select(old_log).order_by("proposal_id"))]
        back_dist = [
            dict(r._mapping)
            for r in conn.execute(
                sa.select(old_distributions).order_by("distribution_date", "category")
            )
        ]
    expected = [dict(r) for r in LEGACY_ROWS]
    for closed in (3, 6):  # closed by the migration (maintain, stale): the closing is kept
        expected[closed].update(
            status="rejected",
            reviewed_by="system",
            review_notes=back[closed]["review_notes"],
            reviewed_at=back[closed]["reviewed_at"],
        )
    assert [{k: _comparable(v) for k, v in r.items()} for r in back] == [
        {k: _comparable(v) for k, v in r.items()} for r in expected
    ]
    assert [{k: _comparable(v) for k, v in r.items()} for r in back_dist] == [
        {k: _comparable(v) for k, v in r.items()}
        for r in sorted(distributions, key=lambda r: (r["distribution_date"], r["category"]))
    ]


# ------------------------------------------------------------------ 0007: the packed pool days


def test_0007_packs_the_days_stored_before_it(empty_database_url: str) -> None:
    engine = get_engine(empty_database_url, upgrade=False)
    upgrade_schema(engine, "0006")
    assert "pool_day_series" not in sa.inspect(engine).get_table_names()
    frame = awkward_frame()
    day = date(2026, 3, 10)
    days = [day - timedelta(days=2), day]
    stamp = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    with engine.begin() as conn:  # what an older version stored: the rows only
        for k, stored_day in enumerate(days):
            rows = _metric_rows(stored_day, frame.iloc[k:], "defillama", stamp)
            conn.execute(pool_daily_metrics.insert(), rows)
    upgrade_schema(engine, "head")
    engine.dispose()  # a fresh connection sees the upgraded catalogue
    assert current_revision(engine) == head_revision()
    assert [len(assert_packed_is_the_rows(engine, d).pools) for d in days] == [4, 3]
    assert list(load_day_series(engine, first=day - timedelta(days=9), before=day)) == days[:1]
    engine.dispose()
