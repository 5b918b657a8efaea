"""The production topology, without Docker: separate processes that talk as the containers would.

On two fresh PostgreSQL databases (Dagster's instance and the application's), this starts
- the code server: the Dockerfile's CMD, with host 127.0.0.1 and a free port instead of 0.0.0.0:4000;
- the webserver and the daemon, with DAGSTER_HOME holding the repository's dagster.yaml
  (PostgreSQL through the DAGSTER_PG_* variables, the run queue, the chain's pool; the
  DefaultRunLauncher, since Docker cannot run here) and deploy/workspace.yaml with that code
  server's host and port substituted;
after the README's instance setup (`dagster instance concurrency set allocator_chain 1`). It
launches the allocation job for one day through the webserver's GraphQL and waits for the run to
succeed: queued by the webserver, dequeued by the daemon, executed by a worker that the code
server started. The processes are always stopped and the databases dropped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import yaml
from dagster import DagsterEventType, DagsterInstance
from dagster._grpc.client import DagsterGrpcClient

from allocator_dagster.storage.schema import asset_allocations
from allocator_dagster_tests.conftest import create_pg_database, drop_pg_database
from allocator_dagster_tests.support.deployment import (
    REPO_INSTANCE_YAML,
    code_server_command,
    with_options,
    workspace_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

HOST = "127.0.0.1"
BIN = Path(sys.executable).parent
DAY = "2025-03-03"
JOB = "daily_allocation_job"
CHAIN_POOL = "allocator_chain"
# what one day of the allocation job materialises (README, Using it)
ALLOCATION_ASSETS = {
    "pool_daily_metrics",
    "balances",
    "allocation_parameters",
    "solver_output",
    "asset_allocations",
    "rebalance_plan",
}
STARTUP_TIMEOUT = 180.0
RUN_TIMEOUT = 240.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Topology:
    """The processes started so far, each in its own session, with its output in a log file."""

    logs: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("w")
        process = subprocess.Popen(
            [str(BIN / command[0]), *command[1:]],
            env=self.env,
            cwd=self.logs,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes[name] = process
        return process

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 40) -> str:
        text = (self.logs / f"{name}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def report(self) -> str:
        return "\n".join(f"--- {name} ---\n{self.tail(name)}" for name in self.processes)

    def stop(self) -> None:
        """SIGTERM to each process group (the code server's and the daemon's children too), then SIGKILL."""
        for process in self.processes.values():
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def wait_for(what: str, probe: Callable[[], Any], topology: Topology, timeout: float) -> Any:
    """Poll `probe` until it returns something truthy; fail with the processes' logs otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        topology.check_alive()
        result = probe()
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{topology.report()}")


class GraphQL:
    def __init__(self, port: int) -> None:
        self.url = f"http://{HOST}:{port}/graphql"

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = requests.post(
            self.url, json={"query": query, "variables": variables}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]


LOCATIONS = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { repositories { name jobs { name } } }
          ... on PythonError { message }
        }
      }
    }
  }
}
"""

LAUNCH_RUN = """
mutation LaunchRun($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""

RUN_STATUS = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status tags { key value } }
    ... on Error { message }
  }
}
"""

RUN_LOGS = """
query RunLogs($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection { events { __typename ... on MessageEvent { message } } }
  }
}
"""

DAEMON_HEALTH = """
query { instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }
"""


@pytest.fixture
def databases(pg_server: str) -> Iterator[tuple[str, str]]:
    """Throwaway databases: Dagster's instance and the application's; dropped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    names = (f"allocator_topology_dagster_{suffix}", f"allocator_topology_app_{suffix}")
    urls = []
    try:
        for name in names:
            urls.append(create_pg_database(pg_server, name))
        yield urls[0], urls[1]
    finally:
        for name in names:
            drop_pg_database(pg_server, name)


@pytest.fixture
def topology(
    tmp_path: Path, databases: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Topology]:
    instance_url, app_url = databases
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO_INSTANCE_YAML, home / "dagster.yaml")
    parsed = sa.engine.make_url(instance_url)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DAGSTER_", "ALLOCATOR_", "DEFILLAMA_"))
    }
    env.update(
        DAGSTER_HOME=str(home),
        DAGSTER_PG_HOST=parsed.host or HOST,
        DAGSTER_PG_PORT=str(parsed.port or 5432),
        DAGSTER_PG_USERNAME=parsed.username or "postgres",
        DAGSTER_PG_PASSWORD=parsed.password or "",
        DAGSTER_PG_DB=parsed.database or "",
        ALLOCATOR_DATABASE_URL=app_url,
        ALLOCATOR_POOL_SOURCE="sample",
    )
    for key in (
        "DAGSTER_HOME",
        "DAGSTER_PG_HOST",
        "DAGSTER_PG_PORT",
        "DAGSTER_PG_USERNAME",
        "DAGSTER_PG_PASSWORD",
        "DAGSTER_PG_DB",
    ):
        monkeypatch.setenv(key, env[key])  # the test reads the same instance afterwards
    logs = tmp_path / "logs"
    logs.mkdir()
    running = Topology(logs=logs, env=env)
    try:
        yield running
    finally:
        running.stop()


def test_a_run_launched_through_the_webserver_succeeds_on_the_code_server(
    topology: Topology, tmp_path: Path
) -> None:
    started = time.monotonic()
    grpc_port, web_port = free_port(), free_port()
    code_server = with_options(
        code_server_command(), {("-h", "--host"): HOST, ("-p", "--port"): str(grpc_port)}
    )
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(yaml.safe_dump(workspace_for(HOST, grpc_port)))
    location = workspace_for(HOST, grpc_port)["load_from"][0]["grpc_server"]["location_name"]

    topology.start("code-server", code_server)
    # the README's setup of a new instance, while the code loads
    setup = subprocess.run(
        [str(BIN / "dagster"), "instance", "concurrency", "set", CHAIN_POOL, "1"],
        env=topology.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    grpc = DagsterGrpcClient(port=grpc_port, host=HOST)

    def serving() -> bool:
        # a plain connect first: the health check prints every refused connection
        with socket.socket() as sock:
            if sock.connect_ex((HOST, grpc_port)) != 0:
                return False
        return grpc.health_check_query() == "SERVING"

    wait_for("the code server", serving, topology, STARTUP_TIMEOUT)

    topology.start(
        "webserver", ["dagster-webserver", "-h", HOST, "-p", str(web_port), "-w", str(workspace)]
    )
    topology.start("daemon", ["dagster-daemon", "run", "-w", str(workspace)])
    graphql = GraphQL(web_port)

    def location_loaded() -> dict[str, Any] | None:
        try:
            data = graphql(LOCATIONS)
        except requests.ConnectionError:
            return None
        (entry,) = data["workspaceOrError"]["locationEntries"]
        if entry["loadStatus"] != "LOADED":
            return None
        return entry

    entry = wait_for(
        "the webserver and its code location", location_loaded, topology, STARTUP_TIMEOUT
    )
    loaded = entry["locationOrLoadError"]
    assert entry["name"] == location
    assert loaded["__typename"] == "RepositoryLocation", loaded
    (repository,) = loaded["repositories"]
    assert JOB in {job["name"] for job in repository["jobs"]}
    up = time.monotonic()

    launched = graphql(
        LAUNCH_RUN,
        params={
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": repository["name"],
                "jobName": JOB,
            },
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": DAY}]},
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    assert launched["run"]["status"] == "QUEUED"  # the daemon starts it, not the webserver

    def finished() -> str | None:
        status = graphql(RUN_STATUS, runId=run_id)["runOrError"]["status"]
        return status if status in {"SUCCESS", "FAILURE", "CANCELED"} else None

    status = wait_for(f"run {run_id}", finished, topology, RUN_TIMEOUT)
    done = time.monotonic()
    if status != "SUCCESS":
        events = graphql(RUN_LOGS, runId=run_id)["logsForRun"].get("events", [])
        messages = "\n".join(event.get("message", "") for event in events[-30:])
        pytest.fail(f"run {run_id} ended {status}:\n{messages}\n{topology.report()}")

    daemons = graphql(DAEMON_HEALTH)["instance"]["daemonHealth"]["allDaemonStatuses"]
    health = {d["daemonType"]: d["healthy"] for d in daemons if d["required"]}
    assert health.get("QUEUED_RUN_COORDINATOR") is True, health

    # Dagster's side: the run is in the instance's PostgreSQL, queued then started, with the
    # day's five assets materialised
    instance = DagsterInstance.from_config(topology.env["DAGSTER_HOME"])
    try:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.tags.get("dagster/partition") == DAY
        events = [r.dagster_event for r in instance.all_logs(run_id) if r.is_dagster_event]
    finally:
        instance.dispose()
    types = [event.event_type for event in events]
    # queued by the webserver, then started by the daemon (the webserver only enqueues)
    assert types.index(DagsterEventType.RUN_ENQUEUED) < types.index(DagsterEventType.RUN_STARTING)
    assert DagsterEventType.RUN_SUCCESS in types
    materialized = {
        event.asset_key.to_user_string()
        for event in events
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION and event.asset_key
    }
    assert materialized == ALLOCATION_ASSETS

    # the application's side: the day's allocation is in the application database
    engine = sa.create_engine(topology.env["ALLOCATOR_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                sa.select(asset_allocations.c.status, asset_allocations.c.decision).where(
                    asset_allocations.c.allocation_date == sa.bindparam("day", type_=sa.Date)
                ),
                {"day": dt.date.fromisoformat(DAY)},
            ).all()
    finally:
        engine.dispose()
    assert len(stored) == 1 and stored[0].status == "optimal", stored

    print(  # noqa: T201 - the timing the README and the report quote
        f"\ntopology: processes up and the location loaded in {up - started:.1f} s, "
        f"run {run_id} {status} {done - up:.1f} s after launch, {done - started:.1f} s in all"
    )
