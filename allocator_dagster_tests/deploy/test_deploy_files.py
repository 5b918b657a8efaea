"""Lint of the deployment files: the compose file and the Helm values against schemas of the keys
we use, and the files against each other (image, port 4000, module, environment names, secrets).

The schemas are the subset of the Compose specification and of the `dagster/dagster` chart's
values schema (its pydantic models: UserDeployment, K8sRunLauncherConfig, Daemon, Concurrency,
PostgreSQL, Global) that the files use, closed with `additionalProperties: false`, so a misspelt
key fails here instead of being ignored by the tool. `docker compose config` runs too when the
docker compose plugin is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sqlalchemy as sa
from dagster import DagsterInstance
from dagster_docker import DockerRunLauncher

from allocator_dagster_tests.conftest import create_pg_database, drop_pg_database
from allocator_dagster_tests.support.deployment import (
    COMPOSE_FILE,
    DEPLOY_INSTANCE_YAML,
    DEPLOY_WORKSPACE_YAML,
    DOCKERFILE,
    DOCKERIGNORE,
    HELM_VALUES,
    README,
    REPO_INSTANCE_YAML,
    REPO_ROOT,
    REPO_WORKSPACE_YAML,
    code_server_command,
    dockerfile_instructions,
    load_yaml,
    option,
)

PORT = 4000
CLOSED = {"additionalProperties": False}


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), **CLOSED}


STRINGS = {"type": "array", "items": {"type": "string"}}
ENV_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
INTERPOLATION = r"^([^$]|\$\$|\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\})*$"

COMPOSE_SERVICE = _object(
    {
        "image": {"type": "string"},
        "build": _object({"context": {"type": "string"}, "dockerfile": {"type": "string"}}),
        "command": STRINGS,
        "user": {"type": "string"},
        "environment": ENV_MAP,
        "volumes": STRINGS,
        "ports": STRINGS,
        "expose": STRINGS,
        "networks": STRINGS,
        "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
        "healthcheck": _object(
            {
                "test": STRINGS,
                "interval": {"type": "string"},
                "timeout": {"type": "string"},
                "retries": {"type": "integer"},
                "start_period": {"type": "string"},
            },
            ("test",),
        ),
        "depends_on": {
            "type": "object",
            "additionalProperties": _object(
                {
                    "condition": {
                        "enum": [
                            "service_started",
                            "service_healthy",
                            "service_completed_successfully",
                        ]
                    }
                },
                ("condition",),
            ),
        },
    },
    ("image",),
)
COMPOSE_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"},
        "services": {"type": "object", "additionalProperties": COMPOSE_SERVICE},
        "networks": {
            "type": "object",
            "additionalProperties": _object({"name": {"type": "string"}}),
        },
        "volumes": {
            "type": "object",
            "additionalProperties": {
                "oneOf": [{"type": "null"}, _object({"name": {"type": "string"}})]
            },
        },
    },
    "patternProperties": {"^x-": {}},
    "required": ["services"],
    **CLOSED,
}

IMAGE = _object(
    {
        "repository": {"type": "string"},
        "tag": {"type": "string"},
        "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
    },
    ("repository", "tag", "pullPolicy"),
)
RESOURCES = _object({"requests": ENV_MAP, "limits": ENV_MAP})
HELM_SCHEMA = _object(
    {
        "global": _object({"postgresqlSecretName": {"type": "string"}}),
        "generatePostgresqlPasswordSecret": {"type": "boolean"},
        "postgresql": _object(
            {
                "enabled": {"type": "boolean"},
                "postgresqlHost": {"type": "string"},
                "postgresqlUsername": {"type": "string"},
                "postgresqlDatabase": {"type": "string"},
                "postgresqlScheme": {"type": "string"},
                "service": _object({"port": {"type": "integer"}}),
            }
        ),
        "dagster-user-deployments": _object(
            {
                "enabled": {"type": "boolean"},
                "enableSubchart": {"type": "boolean"},
                "deployments": {
                    "type": "array",
                    "minItems": 1,
                    "items": _object(
                        {
                            # a Kubernetes name (DNS label)
                            "name": {
                                "type": "string",
                                "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                            },
                            "image": IMAGE,
                            "codeServerArgs": STRINGS,
                            "port": {"type": "integer"},
                            "env": ENV_MAP,
                            "envSecrets": {
                                "type": "array",
                                "items": _object({"name": {"type": "string"}}, ("name",)),
                            },
                            "includeConfigInLaunchedRuns": _object(
                                {"enabled": {"type": "boolean"}}, ("enabled",)
                            ),
                            "resources": RESOURCES,
                        },
                        ("name", "image", "port"),
                    ),
                },
            }
        ),
        "runLauncher": _object(
            {
                "type": {"enum": ["K8sRunLauncher", "CeleryK8sRunLauncher", "CustomRunLauncher"]},
                "config": _object(
                    {
                        "k8sRunLauncher": _object(
                            {
                                "loadInclusterConfig": {"type": "boolean"},
                                "imagePullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
                                "resources": RESOURCES,
                            }
                        )
                    }
                ),
            }
        ),
        "dagsterDaemon": _object(
            {
                "enabled": {"type": "boolean"},
                "runCoordinator": _object(
                    {
                        "enabled": {"type": "boolean"},
                        "type": {"enum": ["QueuedRunCoordinator", "CustomRunCoordinator"]},
                    }
                ),
                "runMonitoring": _object(
                    {
                        "enabled": {"type": "boolean"},
                        "startTimeoutSeconds": {"type": "integer"},
                        "pollIntervalSeconds": {"type": "integer"},
                        "maxResumeRunAttempts": {"type": "integer"},
                    }
                ),
            }
        ),
        "concurrency": _object(
            {
                "enabled": {"type": "boolean"},
                "pools": _object(
                    {
                        "granularity": {"enum": ["run", "op"]},
                        "defaultLimit": {"type": "integer", "minimum": 0},
                    }
                ),
            }
        ),
        "telemetry": _object({"enabled": {"type": "boolean"}}),
    }
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)


@pytest.fixture(scope="module")
def helm() -> dict[str, Any]:
    return load_yaml(HELM_VALUES)


@pytest.fixture(scope="module")
def deployment(helm: dict[str, Any]) -> dict[str, Any]:
    (only,) = helm["dagster-user-deployments"]["deployments"]
    return only


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _interpolated_default(value: str) -> str:
    """The value compose gives `${NAME:-default}` when NAME is unset."""
    match = re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", value)
    assert match, f"{value!r} is not ${{NAME:-default}}"
    return match.group(1)


def test_compose_file_matches_its_schema(compose: dict[str, Any]) -> None:
    jsonschema.validate(compose, COMPOSE_SCHEMA)
    for value in _strings(compose):
        assert re.fullmatch(INTERPOLATION, value), f"bad compose interpolation in {value!r}"


def test_helm_values_match_the_charts_keys(helm: dict[str, Any]) -> None:
    jsonschema.validate(helm, HELM_SCHEMA)


def test_the_schemas_reject_a_misspelt_key(
    compose: dict[str, Any], deployment: dict[str, Any], helm: dict[str, Any]
) -> None:
    """The checks above can fail: a typo in either file is caught."""
    broken_compose = {
        **compose,
        "services": {**compose["services"], "daemon": {"image": "x", "comand": []}},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken_compose, COMPOSE_SCHEMA)
    broken = {**deployment, "codeServerArg": deployment["codeServerArgs"]}
    broken_helm = {**helm, "dagster-user-deployments": {"deployments": [broken]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken_helm, HELM_SCHEMA)


def _docker_compose_available() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return "no docker client on PATH"
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        return (
            f"the docker compose plugin is not installed ({(probe.stderr or probe.stdout).strip()})"
        )
    return None


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    reason = _docker_compose_available()
    if reason:
        pytest.skip(f"docker compose config not run: {reason}")
    command = ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "-q"]
    secrets = {
        "DAGSTER_PG_PASSWORD": "lint-only",
        "ALLOCATOR_DATABASE_URL": "postgresql+psycopg2://dagster:lint-only@postgresql:5432/allocator",
    }
    base = {k: v for k, v in os.environ.items() if k not in secrets}
    ok = subprocess.run(
        command, env={**base, **secrets}, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    # without the secrets compose refuses to start
    missing = subprocess.run(command, env=base, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "DAGSTER_PG_PASSWORD" in missing.stderr


def test_one_image_one_port_one_module(
    compose: dict[str, Any], helm: dict[str, Any], deployment: dict[str, Any]
) -> None:
    command = code_server_command()
    assert command[:3] == ["dagster", "code-server", "start"]
    assert option(command, "-p", "--port") == str(PORT)
    assert option(command, "-h", "--host") == "0.0.0.0"
    assert dockerfile_instructions("EXPOSE") == [str(PORT)]
    assert dockerfile_instructions("FROM") == ["python:3.11-slim"]
    assert any("-c constraints.txt" in run for run in dockerfile_instructions("RUN"))
    module, attribute = option(command, "-m", "--module-name"), option(command, "-a", "--attribute")

    # the repository's own workspace names the same module; the Helm chart runs the same server
    (local,) = load_yaml(REPO_WORKSPACE_YAML)["load_from"]
    assert local["python_module"]["module_name"] == module
    args = deployment["codeServerArgs"]
    assert option(args, "-m", "--module-name") == module
    assert option(args, "-a", "--attribute") == attribute
    assert deployment["port"] == PORT

    # the webserver and the daemon reach the code server by its compose service name and port
    (grpc,) = load_yaml(DEPLOY_WORKSPACE_YAML)["load_from"]
    server = grpc["grpc_server"]
    assert server["host"] in compose["services"] and server["port"] == PORT
    assert server["location_name"] == local["python_module"]["location_name"]
    code_server = compose["services"][server["host"]]
    assert "command" not in code_server  # the image's CMD, as tested in test_topology
    assert str(PORT) in code_server["healthcheck"]["test"]

    # one image everywhere, tagged with the package's version
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    image = f"{deployment['image']['repository']}:{deployment['image']['tag']}"
    assert image == f"allocator-dagster:{version}"
    for name, service in compose["services"].items():
        if name != "postgresql":
            assert _interpolated_default(service["image"]) == image, name
    assert code_server["environment"]["DAGSTER_CURRENT_IMAGE"] == code_server["image"]
    # the chart's version is the dagster package's
    pins = dict(
        line.split("==")
        for line in (REPO_ROOT / "constraints.txt").read_text().split()
        if "==" in line
    )
    assert f"--version {pins['dagster']}" in HELM_VALUES.read_text()
    assert pins["dagster-docker"] == pins["dagster-k8s"] == pins["dagster-postgres"]


def test_environment_names_agree(compose: dict[str, Any]) -> None:
    env = compose["x-allocator-env"]
    for name in ("code-server", "webserver", "daemon", "instance-setup"):
        service_env = compose["services"][name]["environment"]
        assert {k: v for k, v in service_env.items() if k in env} == env, name
    instance = load_yaml(DEPLOY_INSTANCE_YAML)
    # every run container gets exactly the processes' environment
    assert set(instance["run_launcher"]["config"]["env_vars"]) == set(env)
    # the instance's PostgreSQL comes from these names, in both instance files
    postgres_db = instance["storage"]["postgres"]["postgres_db"]
    pg_names = {v["env"] for v in postgres_db.values() if isinstance(v, dict)}
    assert pg_names == {n for n in env if n.startswith("DAGSTER_PG_")}
    # the postgres service is created with the same user, password and database
    postgres = compose["services"]["postgresql"]["environment"]
    for pg, name in (
        ("POSTGRES_USER", "USERNAME"),
        ("POSTGRES_PASSWORD", "PASSWORD"),
        ("POSTGRES_DB", "DB"),
    ):
        assert postgres[pg] == env[f"DAGSTER_PG_{name}"]
    # every name is documented in the README's configuration table
    readme = README.read_text()
    for name in env:
        assert f"`{name}`" in readme, f"{name} is not in the README"


def test_secrets_come_only_from_the_environment(
    compose: dict[str, Any], helm: dict[str, Any], deployment: dict[str, Any]
) -> None:
    env = compose["x-allocator-env"]
    for secret in ("DAGSTER_PG_PASSWORD", "ALLOCATOR_DATABASE_URL"):
        assert re.fullmatch(rf"\$\{{{secret}:\?[^}}]+\}}", env[secret]), env[secret]
    assert env["ALLOCATOR_LLM_API_KEY"] == "${ALLOCATOR_LLM_API_KEY:-}"
    # Helm: the passwords are in Secrets the operator creates; the values name them only
    assert helm["generatePostgresqlPasswordSecret"] is False
    assert "postgresqlPassword" not in helm["postgresql"]
    assert deployment["envSecrets"] == [{"name": "allocator-dagster-env"}]
    assert "ALLOCATOR_DATABASE_URL" not in deployment["env"]
    readme = README.read_text()
    for secret in (helm["global"]["postgresqlSecretName"], "allocator-dagster-env"):
        assert secret in readme
    ignored = DOCKERIGNORE.read_text().split()
    assert "**/.env" in ignored
    assert "deploy/.env" in (REPO_ROOT / ".gitignore").read_text().split()


def test_deploy_instance_is_the_repository_instance_with_the_docker_launcher(
    compose: dict[str, Any], helm: dict[str, Any]
) -> None:
    repo = load_yaml(REPO_INSTANCE_YAML)
    deploy = load_yaml(DEPLOY_INSTANCE_YAML)
    assert set(deploy) == set(repo)
    for section in set(repo) - {"run_launcher", "run_monitoring"}:
        assert deploy[section] == repo[section], section
    # the repository's run monitoring, and never an automatic resume of a crashed run
    assert deploy["run_monitoring"] == {**repo["run_monitoring"], "max_resume_run_attempts": 0}
    launcher = deploy["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    assert launcher["config"]["network"] == compose["networks"]["allocator_dagster"]["name"]
    (volume,) = launcher["config"]["container_kwargs"]["volumes"]
    assert volume.split(":")[0] == compose["volumes"]["allocator_dagster_storage"]["name"]
    # the Helm chart's instance: the same pool limit, run monitoring, the Kubernetes launcher
    pools = repo["concurrency"]["pools"]
    assert helm["concurrency"] == {
        "enabled": True,
        "pools": {"granularity": pools["granularity"], "defaultLimit": pools["default_limit"]},
    }
    assert helm["dagsterDaemon"]["runMonitoring"]["enabled"] is True
    assert helm["runLauncher"]["type"] == "K8sRunLauncher"
    assert helm["telemetry"] == repo["telemetry"]


def test_the_image_holds_matplotlibs_font_list_for_the_runs_user() -> None:
    """Every run is a new container of the image: the font list matplotlib builds before its
    first chart must be in the image, built as the user the runs are (its cache is per user)."""
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    user = lines.index("USER dagster")
    built = [k for k, line in enumerate(lines) if line.startswith("RUN") and "font_manager" in line]
    assert built and built[0] > user
    assert dockerfile_instructions("USER") == ["dagster"]


def test_readme_documents_the_deployment() -> None:
    readme = README.read_text()
    assert "## Deployment" in readme
    for text in (
        "Dockerfile",
        "deploy/docker-compose.yaml",
        "deploy/dagster.yaml",
        "deploy/workspace.yaml",
        "deploy/helm/values.yaml",
        "docker compose -f deploy/docker-compose.yaml up",
        "helm upgrade --install",
        "test_topology.py",
    ):
        assert text in readme, text


@pytest.mark.postgres
def test_deploy_instance_loads_with_the_docker_run_launcher(
    pg_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/dagster.yaml as the webserver and daemon load it (no Docker engine is contacted)."""
    name = f"allocator_deploy_instance_{uuid.uuid4().hex[:8]}"
    url = sa.engine.make_url(create_pg_database(pg_server, name))
    monkeypatch.setenv("DAGSTER_PG_HOST", url.host or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(url.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_USERNAME", url.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "")
    monkeypatch.setenv("DAGSTER_PG_DB", name)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(DEPLOY_INSTANCE_YAML, home / "dagster.yaml")
    try:
        instance = DagsterInstance.from_config(str(home))
        try:
            launcher = instance.run_launcher
            assert isinstance(launcher, DockerRunLauncher)
            assert launcher.networks == ["allocator_dagster"]
            assert "ALLOCATOR_DATABASE_URL" in launcher.env_vars
            assert launcher.supports_check_run_worker_health
            assert instance.run_monitoring_enabled
            assert instance.run_monitoring_max_resume_run_attempts == 0
        finally:
            instance.dispose()
    finally:
        drop_pg_database(pg_server, name)
