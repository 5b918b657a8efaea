"""`allocator backup`: a consistent copy of a SQLite database in WAL mode, pg_dump guidance."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from allocator_dagster.cli import main
from allocator_dagster.storage import get_engine
from allocator_dagster.storage.lists import change_list


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_backup_copies_what_a_file_copy_misses(tmp_path: Path) -> None:
    source = tmp_path / "allocator.sqlite"
    url = f"sqlite:///{source}"
    engine = get_engine(url)
    change_list(engine, "approved_tokens", "USDC", action="add", reason="r", by="alice")
    with engine.connect():  # a connection stays open: the WAL is not checkpointed away
        naive = tmp_path / "naive.sqlite"
        shutil.copy(source, naive)
        assert "approved_tokens" not in _tables(naive)  # why a plain copy is not a backup
        target = tmp_path / "backup.sqlite"
        result = CliRunner().invoke(main, ["backup", str(target), "--database-url", url])
    assert result.exit_code == 0, result.output
    assert f"backed up {source} to {target}" in result.output
    with sqlite3.connect(target) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("SELECT value, added_by FROM approved_tokens").fetchall() == [
            ("USDC", "alice")
        ]
    assert not list(tmp_path.glob(".backup.sqlite.partial-*"))
    again = CliRunner().invoke(main, ["backup", str(target), "--database-url", url])
    assert again.exit_code == 2 and "exists; give a new file name" in again.output


def test_backup_of_a_missing_database_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite"
    result = CliRunner().invoke(
        main, ["backup", str(tmp_path / "b.sqlite"), "--database-url", f"sqlite:///{missing}"]
    )
    assert result.exit_code == 2
    assert f"error: no SQLite database file at {missing}" in result.output
    assert not missing.exists()


def test_postgresql_gets_pg_dump_guidance(tmp_path: Path) -> None:
    url = "postgresql+psycopg2://allocator:secret@db.example:5432/allocator"
    result = CliRunner().invoke(main, ["backup", str(tmp_path / "b"), "--database-url", url])
    assert result.exit_code == 2
    assert "back it up with pg_dump" in result.output
    assert (
        "pg_dump --format=custom --file allocator.dump 'postgresql://allocator:***@db.example:5432/allocator'"
        in result.output
    )
    assert "secret" not in result.output
