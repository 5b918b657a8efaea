"""The shipped deployment files, read the way the tests need them.

The topology test starts what these files describe (the Dockerfile's command, deploy/workspace.yaml)
with only the host and the port replaced, so that what is tested is what ships; the lint tests
compare the files with each other. Nothing here knows the code location's module: it is read
from the Dockerfile.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
DEPLOY = REPO_ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yaml"
DEPLOY_INSTANCE_YAML = DEPLOY / "dagster.yaml"
DEPLOY_WORKSPACE_YAML = DEPLOY / "workspace.yaml"
HELM_VALUES = DEPLOY / "helm" / "values.yaml"
REPO_INSTANCE_YAML = REPO_ROOT / "dagster.yaml"
REPO_WORKSPACE_YAML = REPO_ROOT / "workspace.yaml"
README = REPO_ROOT / "README.md"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def dockerfile_instructions(name: str) -> list[str]:
    """The arguments of every `NAME ...` instruction of the Dockerfile, continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    prefix = name.upper() + " "
    return [line[len(prefix) :].strip() for line in logical if line.upper().startswith(prefix)]


def code_server_command() -> list[str]:
    """The image's CMD, in exec form: the code server as the container starts it."""
    (cmd,) = dockerfile_instructions("CMD")
    command = json.loads(cmd)
    if not (isinstance(command, list) and all(isinstance(part, str) for part in command)):
        raise ValueError(f"{DOCKERFILE}: CMD must be a JSON list of strings, got {cmd!r}")
    return command


def option(command: list[str], *names: str) -> str:
    """The value that follows the first of `names` in a command line."""
    for index, part in enumerate(command[:-1]):
        if part in names:
            return command[index + 1]
    raise KeyError(f"none of {names} in {command}")


def with_options(command: list[str], replacements: dict[tuple[str, ...], str]) -> list[str]:
    """`command` with the values of the given options replaced (each option must be present)."""
    result = list(command)
    for names, value in replacements.items():
        index = next((i for i, part in enumerate(result[:-1]) if part in names), None)
        if index is None:
            raise KeyError(f"none of {names} in {command}")
        result[index + 1] = value
    return result


def workspace_for(host: str, port: int) -> dict[str, Any]:
    """deploy/workspace.yaml with its gRPC server's host and port replaced."""
    workspace = load_yaml(DEPLOY_WORKSPACE_YAML)
    (entry,) = workspace["load_from"]
    entry["grpc_server"]["host"] = host
    entry["grpc_server"]["port"] = port
    return workspace
