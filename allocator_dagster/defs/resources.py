"""Resources shared by both asset graphs: the application database."""

from __future__ import annotations

import sqlalchemy as sa
from dagster import ConfigurableResource
from pydantic import Field

from allocator_dagster.storage import get_engine


class DatabaseResource(ConfigurableResource):
    """The application database. Empty URL: the embedded SQLite file in the local data folder."""

    database_url: str = Field(
        default="",
        description="SQLAlchemy URL (set from ALLOCATOR_DATABASE_URL); empty for the embedded SQLite file.",
    )

    def engine(self) -> sa.Engine:
        return get_engine(self.database_url or None)
