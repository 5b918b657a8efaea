"""What the benchmarks share: the bench day and parameters, scratch databases, child processes."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from allocator_dagster.parameters import AllocationParameters

BENCH_DAY = dt.date(2026, 6, 1)
BENCH_PARAMS = AllocationParameters(min_pools=10, min_position_usd=10_000.0)

PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


@contextmanager
def _scratch_database(kind: str, workdir: str, name: str, pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database of `kind` (sqlite | postgresql) for one run; dropped afterwards."""
    from pathlib import Path

    import sqlalchemy as sa

    if kind == "sqlite":
        db = Path(workdir) / f"{name}.sqlite"
        db.unlink(missing_ok=True)
        yield f"sqlite:///{db}"
        db.unlink(missing_ok=True)
        return
    if kind != "postgresql":
        raise click.BadParameter(f"database must be sqlite or postgresql, got {kind!r}")
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield (
            sa.engine.make_url(pg_admin_url)
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _in_child(*args: str) -> dict:
    """Run one measurement in its own process (its peak memory is its own); its JSON line."""
    out = subprocess.run(
        [sys.executable, "-m", "allocator_dagster.bench", *args],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise click.ClickException(f"{' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
