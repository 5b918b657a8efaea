"""Engines and schema upgrades for the application database.

Embedded default: a SQLite file in the local data folder. Production: the SQLAlchemy URL in
`ALLOCATOR_DATABASE_URL` (PostgreSQL). The schema is brought to the newest version by Alembic.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

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


@cache
def _engine(url: str) -> sa.Engine:
    kwargs: dict = {"future": True}
    if url.startswith("sqlite"):
        # One writer at a time; wait instead of failing when Dagster runs steps in parallel.
        kwargs["connect_args"] = {"timeout": 60}
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": 10}
    engine = sa.create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

    return engine


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


def alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


_upgraded: set[str] = set()


def upgrade_schema(engine: sa.Engine, revision: str = "head") -> None:
    """Apply the migrations up to `revision`; rows already stored are kept."""
    key = f"{engine.url!r}:{revision}"
    if key in _upgraded:
        return
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
    except sa.exc.OperationalError as exc:
        raise StorageError(
            f"cannot connect to database {redact(str(engine.url))}: {exc.orig}".strip()
        ) from None
    _upgraded.add(key)
