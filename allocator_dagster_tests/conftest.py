"""Shared fixtures: the application database on SQLite and on the real PostgreSQL.

PostgreSQL is found on 127.0.0.1:5432 (or started with pg_ctlcluster). Under CI=true a missing
server is a failure, never a skip.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from allocator_dagster.storage import get_engine
from allocator_dagster.storage.schema import metadata

# The calendar is read when the definitions load: a developer's exported quickstart instance
# (DAGSTER_HOME with its recorded first day) or ALLOCATOR_FIRST_DAY would move every test's
# partitions. Tests that need either set them themselves.
for _name in ("DAGSTER_HOME", "ALLOCATOR_FIRST_DAY"):
    os.environ.pop(_name, None)

PG_ADMIN_URL = os.environ.get(
    "ALLOCATOR_TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


def _pg_reachable() -> bool:
    try:
        engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001
        return False


def _start_pg() -> None:
    try:
        versions = sorted(os.listdir("/etc/postgresql"))
    except OSError:
        return
    if versions:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
            check=False,
            capture_output=True,
            timeout=60,
        )


@pytest.fixture(scope="session")
def pg_server() -> str:
    """Admin URL of a running PostgreSQL; starts it if it is down."""
    if not _pg_reachable():
        _start_pg()
    if not _pg_reachable():
        message = f"PostgreSQL is not reachable at {PG_ADMIN_URL}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)
    return PG_ADMIN_URL


def create_pg_database(admin_url: str, name: str) -> str:
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(admin_url: str, name: str) -> None:
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def pg_database_url(pg_server: str, worker_id: str) -> Iterator[str]:
    """One scratch database per test worker, with the schema at head."""
    name = f"allocator_test_{worker_id}_{uuid.uuid4().hex[:8]}"
    url = create_pg_database(pg_server, name)
    get_engine(url)
    yield url
    get_engine(url, upgrade=False).dispose()
    drop_pg_database(pg_server, name)


@pytest.fixture(scope="session")
def worker_id(request) -> str:  # noqa: D401 - pytest-xdist provides the same fixture
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


def _truncate_all(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path: Path) -> str:
    """A clean application database on each backend: the same test runs on SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'allocator.sqlite'}"
    url = request.getfixturevalue("pg_database_url")
    _truncate_all(get_engine(url))
    return url


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    return get_engine(database_url)
