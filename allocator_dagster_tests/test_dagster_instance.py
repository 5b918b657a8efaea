"""The production Dagster instance (dagster.yaml) and code location (workspace.yaml) really load.

dagster.yaml is loaded from a folder holding a byte-for-byte copy, as a deployment with
DAGSTER_HOME pointing there would (a copy, so local artifacts and compute logs land in tmp_path
rather than in the repository). Its storage must be PostgreSQL, and a run must round-trip
through a scratch database.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, Definitions, asset, materialize
from dagster._core.instance.config import PoolGranularity
from dagster._core.storage.event_log import EventLogStorage
from dagster._core.storage.runs import RunStorage
from dagster._core.workspace.load import location_origins_from_yaml_paths
from dagster_postgres import (
    PostgresEventLogStorage,
    PostgresRunStorage,
    PostgresScheduleStorage,
)

from allocator_dagster.cli.run import QUICKSTART_INSTANCE_YAML
from allocator_dagster.defs.allocation.assets import CHAIN_KEYS, allocation_chain
from allocator_dagster.defs.allocation.partitions import CHAIN_POOL
from allocator_dagster_tests.conftest import create_pg_database, drop_pg_database

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGSTER_YAML = REPO_ROOT / "dagster.yaml"
WORKSPACE_YAML = REPO_ROOT / "workspace.yaml"


@pytest.fixture
def pg_instance_url(pg_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A scratch database for Dagster's own tables, announced through the DAGSTER_PG_* variables."""
    name = f"allocator_dagster_instance_{uuid.uuid4().hex[:8]}"
    url = create_pg_database(pg_server, name)
    parsed = sa.engine.make_url(url)
    monkeypatch.setenv("DAGSTER_PG_HOST", parsed.host or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(parsed.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_USERNAME", parsed.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", parsed.password or "")
    monkeypatch.setenv("DAGSTER_PG_DB", name)
    yield url
    drop_pg_database(pg_server, name)


def test_dagster_yaml_reads_its_connection_from_the_environment() -> None:
    """No host, user or password is written in the file: every field is an `env:` reference."""
    config = yaml.safe_load(DAGSTER_YAML.read_text())
    postgres_db = config["storage"]["postgres"]["postgres_db"]
    assert postgres_db == {
        "scheme": "postgresql+psycopg2",
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "port": {"env": "DAGSTER_PG_PORT"},
        "username": {"env": "DAGSTER_PG_USERNAME"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
    }
    assert config["telemetry"] == {"enabled": False}
    assert {"run_coordinator", "run_launcher"} <= set(config)


@pytest.mark.postgres
def test_production_instance_stores_runs_in_postgresql(
    pg_instance_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(DAGSTER_YAML, home / "dagster.yaml")

    @asset
    def instance_probe() -> int:
        return 42

    instance = DagsterInstance.from_config(str(home))
    try:
        assert isinstance(instance.run_storage, RunStorage)
        assert isinstance(instance.run_storage, PostgresRunStorage), type(instance.run_storage)
        assert isinstance(instance.event_log_storage, EventLogStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
        # the chain's pool admits one run at a time, however the run was launched
        pools = instance.get_concurrency_config().pool_config
        assert pools.pool_granularity == PoolGranularity.RUN
        assert pools.default_pool_limit == 1

        result = materialize([instance_probe], instance=instance)
        assert result.success
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.status == DagsterRunStatus.SUCCESS
        event = instance.get_latest_materialization_event(AssetKey("instance_probe"))
        assert event is not None and event.run_id == result.run_id
    finally:
        instance.dispose()

    # the run is in the scratch PostgreSQL database itself, not in some file under DAGSTER_HOME
    engine = sa.create_engine(pg_instance_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                sa.text("SELECT status FROM runs WHERE run_id = :run_id"),
                {"run_id": result.run_id},
            ).scalar_one()
            materializations = conn.execute(
                sa.text(
                    "SELECT count(*) FROM event_logs WHERE run_id = :run_id "
                    "AND dagster_event_type = 'ASSET_MATERIALIZATION'"
                ),
                {"run_id": result.run_id},
            ).scalar_one()
    finally:
        engine.dispose()
    assert stored == "SUCCESS"
    assert materializations == 1
    assert not (home / "history").exists(), "run storage fell back to SQLite under DAGSTER_HOME"


def test_the_chain_is_in_a_concurrency_pool_of_one_run() -> None:
    """The pool is on the step itself, so UI materialisations and backfills queue on it too."""
    from allocator_dagster.definitions import build_definitions

    defs = build_definitions()
    assert allocation_chain.op.pool == CHAIN_POOL
    graph = defs.resolve_asset_graph()
    for key in CHAIN_KEYS:
        assert graph.get(AssetKey(key)).assets_def.op.pool == CHAIN_POOL
    config = yaml.safe_load(DAGSTER_YAML.read_text())
    assert config["concurrency"]["pools"] == {"granularity": "run", "default_limit": 1}
    # the quickstart instance of `allocator run` queues the same way
    quickstart = yaml.safe_load(QUICKSTART_INSTANCE_YAML)
    assert quickstart["concurrency"] == config["concurrency"]
    assert quickstart["telemetry"] == config["telemetry"]


def test_workspace_yaml_names_the_code_location() -> None:
    (origin,) = location_origins_from_yaml_paths([str(WORKSPACE_YAML)])
    assert origin.location_name == "allocator_dagster"
    module_name = origin.loadable_target_origin.module_name
    assert module_name == "allocator_dagster.definitions"

    module = __import__(module_name, fromlist=["build_definitions"])
    defs = module.build_definitions()
    assert isinstance(defs, Definitions)
    Definitions.validate_loadable(defs)
    assert defs.resolve_asset_graph().get_all_asset_keys()
