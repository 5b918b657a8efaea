"""`allocator activity`: the transparency log as a table or JSON lines."""

from __future__ import annotations

import json
from decimal import Decimal

from click.testing import CliRunner

from allocator_dagster.cli import main as cli

D = Decimal


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


def test_activity_shows_the_log(database_url: str) -> None:
    base = ["proposals"]
    db = ["--database-url", database_url]
    response = json.loads(
        invoke(
            *base,
            "analyze",
            *db,
            "--day",
            "2025-06-01",
            "--scenario",
            "rapid_growth",
            "--format",
            "json",
        ).output
    )
    approved = invoke(*base, "review", *db, response["proposal_id"][:8], "--approve", "--by", "bob")
    assert approved.exit_code == 0, approved.output
    table = invoke("activity", "--database-url", database_url)
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert [line.split()[3] for line in lines] == [
        "activation",
        "proposal_stored",
        "review",
        "deactivation",
        "activation",
    ]
    as_json = [
        json.loads(line)
        for line in invoke(
            "activity", "--database-url", database_url, "--format", "json"
        ).output.splitlines()
    ]
    assert as_json[1]["subject_id"] == response["proposal_id"]
    assert as_json[2]["actor"] == "bob" and as_json[2]["payload"]["decision"] == "approve"
    since = invoke("activity", "--database-url", database_url, "--since", "2999-01-01")
    assert since.output.strip() == "no activity since 2999-01-01 00:00:00 UTC"
    only = invoke(
        "activity", "--database-url", database_url, "--event", "review", "--format", "json"
    )
    assert len(only.output.splitlines()) == 1
