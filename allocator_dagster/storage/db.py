"""Engines and schema upgrades for the application database.

Embedded default: a SQLite file in the local data folder. Production: the SQLAlchemy URL in
`ALLOCATOR_DATABASE_URL` (PostgreSQL). The schema is brought to the newest version by Alembic.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

DATABASE_URL_ENV = "ALLOCATOR_DATABASE_URL"
DATA_DIR_ENV = "ALLOCATOR_DATA_DIR"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class StorageError(RuntimeError):
    """The database cannot be reached or used; the message says which and why."""


def data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or Path.cwd() / ".data")


def default_database_url() -> str:
    url = os.environ.get(DATABASE_URL_ENV)
    if url:
        return url
    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'allocator.sqlite'}"


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown as "<invalid URL>"
        return "<invalid URL>"


_ENGINES: dict[str, sa.Engine] = {}


def _engine(url: str) -> sa.Engine:
    """One engine (one connection pool) per URL and process."""
    if url not in _ENGINES:
        _ENGINES[url] = _create_engine(url)
    return _ENGINES[url]


def _create_engine(url: str) -> sa.Engine:
    kwargs: dict = {"future": True}
    if url.startswith("sqlite"):
        # One writer at a time; wait instead of failing when Dagster runs steps in parallel.
        kwargs["connect_args"] = {"timeout": 60}
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": 10}
    engine = sa.create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        path = sqlite_path(engine.url)

        @sa.event.listens_for(engine, "handle_error")
        def _sqlite_file_errors(context):  # the file, not a traceback, when SQLite cannot write
            message = str(context.original_exception)
            if "readonly database" in message or "unable to open database file" in message:
                raise StorageError(
                    f"cannot write the SQLite database file {path or url}: {message} "
                    "(make the file and its folder writable, or point ALLOCATOR_DATABASE_URL "
                    "at another database)"
                ) from None

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

    return engine


def _drop_inherited_engines() -> None:
    """In a forked child: forget the parent's engines without closing their connections (those
    sockets belong to the parent; closing or reusing them here would break its sessions)."""
    for engine in _ENGINES.values():
        engine.dispose(close=False)
    _ENGINES.clear()
    _upgraded.clear()


os.register_at_fork(after_in_child=_drop_inherited_engines)


def sqlite_path(url: sa.URL) -> Path | None:
    """The file of a SQLite URL (plain or `file:...?mode=ro&uri=true`); None for in-memory."""
    database = url.database or ""
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
    if not database or database == ":memory:" or re.match(r"^:memory:|mode=memory", database):
        return None
    return Path(database)


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 to SQLAlchemy 2.1; the project ships psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def get_engine(url: str | None = None, *, upgrade: bool = True) -> sa.Engine:
    """An engine for `url` (default: the configured database), with the schema at the newest version."""
    url = normalise_url(url or default_database_url())
    try:
        engine = _engine(url)
    except Exception as exc:  # noqa: BLE001 - bad URL or missing driver
        raise StorageError(f"cannot use database {redact(url)}: {exc}") from None
    if upgrade:
        upgrade_schema(engine)
    return engine


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction for a read-check-write: on SQLite it holds the database's write lock from
    its first statement (BEGIN IMMEDIATE; other writers wait on it instead of failing to upgrade
    a read lock); on PostgreSQL an ordinary transaction in which callers take row locks."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            # pysqlite opens transactions lazily; issuing BEGIN IMMEDIATE ourselves makes the
            # read-check-write atomic against other writers.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


def copy_out(conn: sa.Connection, query: sa.Select, buffer: IO[Any], fmt: str) -> None:
    """Write `query`'s rows into `buffer` through PostgreSQL's `COPY ... TO STDOUT` (psycopg2):
    many times cheaper than fetching a large read row by row. COPY takes its query as text, so
    it is compiled with literal binds: callers pass only queries whose literals they computed
    (dates), never outside text (pool ids stay bound parameters in the row-by-row path)."""
    if fmt not in ("csv", "binary"):
        raise ValueError(f"COPY format must be csv or binary, got {fmt!r}")
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT {fmt})", buffer)
    finally:
        cursor.close()


def alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # only if the package's migrations folder is empty or missing
        raise RuntimeError(f"no Alembic migration found in {MIGRATIONS_DIR}")
    return head


def inserted_id(result: sa.CursorResult[object]) -> int:
    """The integer primary key an INSERT of one row created."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the INSERT reported no primary key")
    return int(key[0])


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


_upgraded: set[str] = set()
# any constant: the key of the PostgreSQL advisory lock that serialises schema upgrades
MIGRATION_LOCK_KEY = 0x616C6C6F63  # "alloc"


@contextmanager
def _sqlite_migration_lock(engine: sa.Engine) -> Iterator[None]:
    """An exclusive lock on `<file>.migrate.lock` next to the SQLite file, held while the schema
    is created or upgraded: processes using a fresh file at once wait here, the first creates
    the tables and the others find them at head."""
    path = sqlite_path(engine.url) if engine.dialect.name == "sqlite" else None
    if path is None:
        yield
        return
    lock_path = path.with_name(path.name + ".migrate.lock")
    try:
        handle = open(lock_path, "a+b")  # noqa: SIM115 - closed in finally
    except OSError:  # a read-only folder: nothing can be created there, nor raced over
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # releases the lock


def upgrade_schema(engine: sa.Engine, revision: str = "head") -> None:
    """Apply the migrations up to `revision`; rows already stored are kept.

    Several processes may use a fresh database at once (a CLI command while Dagster runs a
    step): the upgrade is serialised (PostgreSQL: a transaction-scoped advisory lock taken
    before Alembic reads the version; SQLite: a file lock), so the schema is created once and
    the others wait, then find it at head.
    """
    key = f"{engine.url!r}:{revision}"
    if key in _upgraded:
        return
    try:
        with _sqlite_migration_lock(engine), engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            elif conn.dialect.name == "sqlite":
                # pysqlite opens a transaction only before DML, so each CREATE TABLE would commit
                # on its own and an interrupted first upgrade would leave tables without their
                # version row ("table already exists" for ever after); in one explicit
                # transaction the whole upgrade commits or nothing does.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            command.upgrade(alembic_config(conn), revision)
    except sa.exc.OperationalError as exc:
        raise StorageError(
            f"cannot connect to database {redact(str(engine.url))}: {exc.orig}".strip()
        ) from None
    _upgraded.add(key)
