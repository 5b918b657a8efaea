"""The Dagster CLI as an operator uses it: validate, and materialise a day from a DefiLlama-like API."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from allocator_dagster.storage import get_engine
from allocator_dagster.storage.schema import pool_daily_metrics
from allocator_dagster_tests.support import fake_defillama as fake_server
from allocator_dagster_tests.support.fake_defillama import FakeDefiLlama

fake_defillama = fake_server.fake_defillama
DAGSTER = str(Path(sys.executable).with_name("dagster"))
DG = str(Path(sys.executable).with_name("dg"))
PROJECT = Path(__file__).resolve().parents[1]
TODAY = dt.datetime.now(dt.UTC).date().isoformat()


def _dagster(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _env(tmp_path: Path, database_url: str, base_url: str) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {
        "DAGSTER_HOME": str(home),
        "ALLOCATOR_DATABASE_URL": database_url,
        "ALLOCATOR_POOL_SOURCE": "defillama",
        "DEFILLAMA_BASE_URL": base_url,
    }


def _rows(database_url: str) -> int:
    with get_engine(database_url).connect() as conn:
        return conn.execute(
            sa.select(sa.func.count())
            .select_from(pool_daily_metrics)
            .where(pool_daily_metrics.c.metric_date == dt.date.fromisoformat(TODAY))
        ).scalar_one()


def test_dg_checks_and_lists_the_project(tmp_path: Path) -> None:
    """`dg` from the project root finds the dg project and loads every definition of defs/."""
    env = {**os.environ, **_env(tmp_path, "", "http://127.0.0.1:9")}
    check = subprocess.run(
        [DG, "check", "defs"], env=env, cwd=PROJECT, capture_output=True, text=True, timeout=300
    )
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    assert "All definitions loaded successfully" in check.stdout
    listed = subprocess.run(
        [DG, "list", "defs", "--json"],
        env=env,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    defs = json.loads(listed.stdout)
    assets = {a["asset_key"] for a in defs["assets"]}
    assert assets == {
        "pool_daily_metrics",
        "balances",
        "allocation_parameters",
        "solver_output",
        "asset_allocations",
        "rebalance_plan",
        "platform_metrics",
        "profit_split_proposal",
        "profit_distribution",
        "backtest_report",
    }
    assert {j["name"] for j in defs["jobs"]} == {
        "daily_allocation_job",
        "profit_split_job",
        "review_proposal_job",
    }
    assert {s["name"] for s in defs["schedules"]} == {
        "daily_allocation_job_schedule",
        "profit_split_daily",
    }
    assert {s["name"] for s in defs["sensors"]} == {
        "list_change_sensor",
        "run_failure_alert_sensor",
        "check_failure_alert_sensor",
        "treasury_alert_sensor",
        "held_day_alert_sensor",
        "allocation_freshness_sensor",
    }
    # main's 10, plus plan_identities_hold and balances_within_drift_tolerance, plus the two
    # freshness checks, plus packed_row_matches
    assert len(defs["asset_checks"]) == 15
    assert {r["name"] for r in defs["resources"]} == {
        "database",
        "pool_source",
        "allocation",
        "profit_split_config",
        "alert_notifier",
    }


MATERIALIZE = [
    "asset",
    "materialize",
    "-m",
    "allocator_dagster.definitions",
    "--select",
    "pool_daily_metrics",
]


def test_definitions_validate(tmp_path: Path) -> None:
    result = _dagster(
        ["definitions", "validate", "-m", "allocator_dagster.definitions"],
        _env(tmp_path, "", "http://127.0.0.1:9"),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
def test_materialize_todays_pool_metrics_from_the_api(
    fake_defillama: FakeDefiLlama, database_url: str, tmp_path: Path
) -> None:
    env = _env(tmp_path, database_url, fake_defillama.base_url)
    result = _dagster([*MATERIALIZE, "--partition", TODAY], env, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _rows(database_url) > 0
    assert fake_defillama.count("/pools") >= 1

    # a malformed answer: a clear error naming the endpoint, and the stored day is untouched
    before = _rows(database_url)
    fake_defillama.malformed()
    failed = _dagster([*MATERIALIZE, "--partition", TODAY], env, tmp_path)
    assert failed.returncode != 0
    assert f"{fake_defillama.base_url}/pools" in failed.stderr + failed.stdout
    assert _rows(database_url) == before


def test_unreachable_api_and_refusing_database(
    fake_defillama: FakeDefiLlama, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'a.sqlite'}"
    dead = _dagster(
        [*MATERIALIZE, "--partition", TODAY], _env(tmp_path, db, "http://127.0.0.1:9"), tmp_path
    )
    assert dead.returncode != 0
    assert "DefiLlama http://127.0.0.1:9/pools" in dead.stderr + dead.stdout
    refused = _dagster(
        [*MATERIALIZE, "--partition", TODAY],
        _env(tmp_path, "postgresql+psycopg2://u:s3cret@127.0.0.1:1/x", fake_defillama.base_url),
        tmp_path,
    )
    assert refused.returncode != 0
    output = refused.stderr + refused.stdout
    assert "cannot connect to database postgresql+psycopg2://u:***@127.0.0.1:1/x" in output
    assert "s3cret" not in output
