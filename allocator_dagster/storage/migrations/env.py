"""Alembic environment: migrations run on the connection handed over by `storage.db`."""

from alembic import context

from allocator_dagster.storage.schema import metadata

target_metadata = metadata
connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `storage.db` drives migrations
    raise RuntimeError("run migrations through allocator_dagster.storage.db.upgrade_schema")
context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
