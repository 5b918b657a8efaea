"""Application storage: the schema, engines and migrations, and the reads and writes of each table."""

from allocator_dagster.storage.db import (
    DATABASE_URL_ENV,
    StorageError,
    default_database_url,
    get_engine,
    redact,
    upgrade_schema,
)

__all__ = [
    "DATABASE_URL_ENV",
    "StorageError",
    "default_database_url",
    "get_engine",
    "redact",
    "upgrade_schema",
]
