"""First use of a fresh database by several processes at once, and unwritable SQLite files."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from allocator_dagster.storage import StorageError, get_engine
from allocator_dagster.storage.db import current_revision, head_revision
from allocator_dagster.storage.lists import change_list
from allocator_dagster.storage.schema import metadata
from allocator_dagster_tests.conftest import create_pg_database, drop_pg_database
from allocator_dagster_tests.support.processes import at_once


def _first_use(url: str) -> str:
    get_engine(url)
    return "ok"


def _six_at_once(url: str) -> None:
    assert at_once(_first_use, [(url,)] * 6) == ["ok"] * 6
    engine = get_engine(url)
    assert current_revision(engine) == head_revision()
    assert set(metadata.tables) <= set(sa.inspect(engine).get_table_names())


def test_six_processes_create_a_fresh_sqlite_schema_once(tmp_path: Path) -> None:
    _six_at_once(f"sqlite:///{tmp_path / 'fresh.sqlite'}")


@pytest.mark.postgres
def test_six_processes_create_a_fresh_postgresql_schema_once(pg_server: str) -> None:
    name = f"allocator_fresh_{uuid.uuid4().hex[:8]}"
    url = create_pg_database(pg_server, name)
    try:
        _six_at_once(url)
    finally:
        get_engine(url, upgrade=False).dispose()
        drop_pg_database(pg_server, name)


def test_a_read_only_sqlite_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "allocator.sqlite"
    get_engine(f"sqlite:///{path}")
    engine = get_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    with pytest.raises(StorageError, match=f"cannot write the SQLite database file {path}: "):
        change_list(engine, "approved_tokens", "USDC", action="add", reason="r", by="a")


def test_an_interrupted_first_upgrade_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    """Killed mid-migration (Ctrl-C while a first run creates the schema), the next process must
    find an empty file, not tables without their version row ("table already exists")."""
    from allocator_dagster.storage import db

    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    real_upgrade = db.command.upgrade

    def interrupted(config, revision):
        real_upgrade(config, revision)  # every table is created, then the process is stopped
        raise KeyboardInterrupt

    monkeypatch.setattr(db.command, "upgrade", interrupted)
    with pytest.raises(KeyboardInterrupt):
        get_engine(url)
    monkeypatch.setattr(db.command, "upgrade", real_upgrade)
    with sqlite3.connect(tmp_path / "fresh.sqlite") as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == []
    engine = get_engine(url)
    assert current_revision(engine) == head_revision()
