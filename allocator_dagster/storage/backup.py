"""A consistent copy of the application database while it is in use.

The embedded SQLite file runs in WAL mode: recent commits live in `allocator.sqlite-wal` until a
checkpoint, so copying only the `.sqlite` file can give a database without them (a fresh one
has no tables at all). SQLite's online backup API copies the database as readers see it,
WAL included, while other connections keep working. PostgreSQL is backed up with `pg_dump`.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from allocator_dagster.storage.db import StorageError, redact, sqlite_path


@dataclass(frozen=True)
class BackupResult:
    source: Path
    target: Path
    tables: int
    pages: int


def pg_dump_guidance(url: str) -> str:
    """How to back up a PostgreSQL database (this command copies SQLite files only)."""
    parsed = sa.engine.make_url(url)
    target = parsed.set(drivername="postgresql").render_as_string(hide_password=True)
    return (
        f"the application database is PostgreSQL ({redact(url)}); back it up with pg_dump, "
        f"e.g. `PGPASSWORD=... pg_dump --format=custom --file allocator.dump '{target}'`, "
        "and restore with `pg_restore --clean --dbname ... allocator.dump`; "
        "allocator backup copies the embedded SQLite database only"
    )


def backup_sqlite(url: str, target: Path) -> BackupResult:
    """Copy the SQLite database of `url` to `target` (a new file) with the online backup API.

    The copy is written next to `target` and renamed into place once complete, so a failed
    backup leaves nothing; it is switched to the rollback journal, so the one file is the whole
    database. Never overwrites an existing file.
    """
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise StorageError(pg_dump_guidance(url))
    source = sqlite_path(parsed)
    if source is None or not source.is_file():
        raise StorageError(f"no SQLite database file at {source or url}: nothing to back up")
    target = Path(target)
    if target.exists():
        raise StorageError(f"{target} exists; give a new file name (a backup never overwrites)")
    if not target.parent.is_dir():
        raise StorageError(f"folder {target.parent} does not exist")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=60)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")
                check = dst.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise StorageError(f"the copy of {source} failed its integrity check: {check}")
                tables = dst.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                ).fetchone()[0]
                pages = dst.execute("PRAGMA page_count").fetchone()[0]
            finally:
                dst.close()
        finally:
            src.close()
        os.link(partial, target)  # fails if target appeared meanwhile: never overwrite
    except sqlite3.Error as exc:
        raise StorageError(f"cannot back up {source} to {target}: {exc}") from None
    except FileExistsError:
        raise StorageError(
            f"{target} exists; give a new file name (a backup never overwrites)"
        ) from None
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(source, target, tables, pages)
