"""The schema metadata rendered as PostgreSQL DDL, for `sql/schema.sql`.

`sql/schema.sql` exists for people (DBAs, reviewers, psql users) who want to read or apply the
schema without Python; it is never edited by hand. Regenerate it with
`python -m allocator_dagster.storage.ddl > sql/schema.sql`; a test fails while it is stale.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from allocator_dagster.storage.schema import APPEND_ONLY_DDL, metadata, protocol_activity

REGENERATE_COMMAND = "python -m allocator_dagster.storage.ddl > sql/schema.sql"

HEADER = f"""\
-- allocator-dagster application schema for PostgreSQL.
--
-- GENERATED from allocator_dagster/storage/schema.py -- do not edit by hand. Regenerate with:
--     {REGENERATE_COMMAND}
-- allocator_dagster_tests/storage/test_schema.py proves that this file matches the metadata
-- and that applying it builds the same database as the Alembic migrations (storage/migrations).
"""


def _statement(ddl: sa.schema.ExecutableDDLElement) -> str:
    """One statement, tidied: SQLAlchemy's tabs and trailing spaces vary the diff for nothing."""
    text = str(ddl.compile(dialect=postgresql.dialect()))
    lines = [line.rstrip().replace("\t", "    ") for line in text.strip().splitlines()]
    return "\n".join(lines) + ";"


def render_postgresql_ddl() -> str:
    """CREATE TABLE and CREATE INDEX statements of every table, referenced tables first, and
    the trigger that makes protocol_activity append-only.

    Deterministic: tables in `metadata.sorted_tables` order (dependencies, then name), constraints
    in their declaration order, indexes by name.
    """
    parts = [HEADER]
    for table in metadata.sorted_tables:
        statements = [_statement(CreateTable(table))]
        statements += [
            _statement(CreateIndex(index))
            for index in sorted(table.indexes, key=lambda ix: str(ix.name))
        ]
        if table is protocol_activity:  # its append-only trigger (function first)
            statements += [f"{ddl};" for ddl in APPEND_ONLY_DDL["postgresql"]]
        parts.append("\n".join(statements) + "\n")
    return "\n".join(parts)


def main() -> None:
    print(render_postgresql_ddl(), end="")


if __name__ == "__main__":
    main()
