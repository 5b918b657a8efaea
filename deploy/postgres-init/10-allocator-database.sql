-- Run once by the postgres image when its data volume is new (docker-entrypoint-initdb.d), as
-- DAGSTER_PG_USERNAME: the application's database next to Dagster's own (DAGSTER_PG_DB). They
-- are two databases because both schemas are managed by Alembic (each has an alembic_version).
CREATE DATABASE allocator;
