"""`allocator run`: the README's first command; days outside the partitions; interrupted or
killed invocations.

A run left STARTED holds the chain's concurrency pool, so every later run of the chain would
queue behind it for ever. Interrupted (SIGTERM, SIGINT) the command marks its runs failed; a
killed one (SIGKILL) is found by the next `allocator run`; and the instances enable Dagster's
run monitoring for runs whose process died elsewhere.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from allocator_dagster.cli import main
from allocator_dagster.storage import get_engine
from allocator_dagster_tests.conftest import create_pg_database, drop_pg_database

REPO_ROOT = Path(__file__).resolve().parents[2]
ALLOCATOR = str(Path(sys.executable).with_name("allocator"))
RANGE = ["--days", "40", "--end", "2026-06-20", "--graph", "allocation"]
BACKFILLS_QUERY = """
{ partitionBackfillsOrError { ... on PartitionBackfills { results {
    id status numPartitions partitionSet { pipelineName }
} } } }
"""


@pytest.mark.parametrize(
    ("args", "first_day", "message"),
    [
        (
            ["--days", "1", "--end", "2031-01-01"],
            None,
            "error: there is no partition for 2031-01-01: the last daily partition is today",
        ),
        (
            ["--days", "3", "--end", "2025-01-02"],
            "2025-01-01",
            "error: there is no partition for 2024-12-31: the daily partitions start on "
            "2025-01-01 (ALLOCATOR_FIRST_DAY)",
        ),
        (["--days", "3"], "01/11/2026", "error: ALLOCATOR_FIRST_DAY='01/11/2026' is not a date"),
    ],
)
def test_days_outside_the_partitions_are_a_clear_error(
    args: list[str],
    first_day: str | None,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    if first_day:
        monkeypatch.setenv("ALLOCATOR_FIRST_DAY", first_day)
    else:
        monkeypatch.delenv("ALLOCATOR_FIRST_DAY", raising=False)
    result = CliRunner().invoke(main, ["run", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "home").exists(), "nothing is created for a refused range"


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"ALLOCATOR_POOL_SOURCE": "bogus"}, "error: ALLOCATOR_POOL_SOURCE='bogus' must be one of"),
        ({"ALLOCATOR_SOLVER": "cplex"}, "error: ALLOCATOR_SOLVER='cplex' must be one of"),
        ({"ALLOCATOR_BALANCES_SOURCE": "bank"}, "error: ALLOCATOR_BALANCES_SOURCE='bank' must be"),
        ({"ALLOCATOR_METRICS_SOURCE": "x"}, "error: ALLOCATOR_METRICS_SOURCE='x' must be one of"),
        ({"ALLOCATOR_CHART_DAYS": "ten"}, "error: ALLOCATOR_CHART_DAYS='ten' must be a number"),
        ({"ALLOCATOR_PARAMS_FILE": "{tmp}/none.yaml"}, "error: ALLOCATOR_PARAMS_FILE: {tmp}/none"),
        (
            {"ALLOCATOR_POOL_SOURCE": "history", "ALLOCATOR_HISTORY_FILE": "{tmp}/none.csv"},
            "error: ALLOCATOR_HISTORY_FILE='{tmp}/none.csv': no such file or folder",
        ),
        ({"ALLOCATOR_SCHEDULES": "on"}, "error: ALLOCATOR_SCHEDULES='on': use running or stopped"),
        (
            {"ALLOCATOR_MULTISIG_APPROVALS": "two"},
            "error: ALLOCATOR_MULTISIG_APPROVALS='two' is not a whole number",
        ),
        (
            {"ALLOCATOR_DRIFT_TOLERANCE_USD": "lots"},
            "error: ALLOCATOR_DRIFT_TOLERANCE_USD='lots': drift tolerance usd 'lots' is not a",
        ),
        (
            {"ALLOCATOR_DATABASE_URL": "postgresql+psycopg2://a@127.0.0.1:{port}/allocator"},
            "error: cannot connect to database postgresql+psycopg2://a@127.0.0.1:{port}/allocator",
        ),
    ],
)
def test_a_configuration_every_run_would_fail_on_is_refused_before_anything_is_written(
    environment: dict[str, str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each used to start a Dagster run that failed (or, for ALLOCATOR_METRICS_SOURCE and
    ALLOCATOR_CHART_DAYS, print a traceback), after recording the instance's first day."""
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("ALLOCATOR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    for name, value in environment.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path, port=port))
    result = CliRunner().invoke(main, ["run", "--days", "1", "--graph", "allocation"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(message.format(tmp=tmp_path, port=port)), result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "home").exists(), "no instance, run or first day for a refused run"


def test_a_dagster_home_that_is_a_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was a FileExistsError traceback from mkdir."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home").write_text("")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ALLOCATOR_DATABASE_URL", f"sqlite:///{tmp_path / 'app.sqlite'}")
    result = CliRunner().invoke(main, ["run", "--days", "1", "--graph", "allocation"])
    assert result.exit_code == 2, result.output
    assert result.output == (
        f"error: DAGSTER_HOME={tmp_path / 'home'}: cannot use it as the Dagster instance's "
        "folder (a file, not a folder)\n"
    )


@pytest.mark.parametrize("recorded", [None, "2026-05-20"])
def test_an_invocation_stopped_before_its_backfill_leaves_the_first_day_as_it_was(
    recorded: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first day is recorded before the definitions load (a backfill's days must be
    partitions); an invocation stopped before it launched a backfill (Ctrl-C while the code
    location loads, an error) used to leave it moved, so the calendar started on days nothing
    was ever run for. Once a backfill is launched its days stay (test below)."""
    import allocator_dagster.cli.run as run_module

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("ALLOCATOR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ALLOCATOR_DATABASE_URL", f"sqlite:///{tmp_path / 'app.sqlite'}")
    if recorded:
        (tmp_path / "home").mkdir()
        (tmp_path / "home" / "allocator_first_day").write_text(recorded + "\n")
    monkeypatch.setattr(run_module, "backfill_range", interrupted)
    result = CliRunner().invoke(main, ["run", "--days", "30", "--end", "2026-06-01"])
    assert result.exit_code == 130, result.output
    record = tmp_path / "home" / "allocator_first_day"
    assert (record.read_text().strip() if record.exists() else None) == recorded


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DAGSTER_HOME=str(tmp_path / "home"),
        ALLOCATOR_DATA_DIR=str(tmp_path / "data"),
        ALLOCATOR_DATABASE_URL=f"sqlite:///{tmp_path / 'allocator.sqlite'}",
    )
    return env


def _runs(home: Path) -> list:
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        return list(reversed(instance.get_runs()))  # oldest first


def _started(home: Path) -> bool:
    """Whether the instance's run storage holds a STARTED run, read without opening a Dagster
    instance (that would race the subprocess creating the storage's schema)."""
    runs_db = home / "history" / "runs.db"
    if not runs_db.exists():
        return False
    try:
        with sqlite3.connect(f"file:{runs_db}?mode=ro", uri=True, timeout=1) as conn:
            return (
                conn.execute("SELECT 1 FROM runs WHERE status = 'STARTED'").fetchone() is not None
            )
    except sqlite3.Error:  # the schema is not created yet
        return False


def _start_and_signal(tmp_path: Path, signum: int) -> subprocess.CompletedProcess:
    """`allocator run` in a subprocess, sent `signum` once its run is STARTED."""
    env = _env(tmp_path)
    process = subprocess.Popen(
        [ALLOCATOR, "run", *RANGE], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    home = tmp_path / "home"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if _started(home):
            break
        time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("the run did not start within 180 s")
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=180)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _a_new_run_goes_through(tmp_path: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [ALLOCATOR, "run", *RANGE], env=_env(tmp_path), cwd=tmp_path, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_run_is_marked_failed(tmp_path: Path, signum: int) -> None:
    from dagster import DagsterRunStatus

    interrupted = _start_and_signal(tmp_path, signum)
    [run] = _runs(tmp_path / "home")
    # Never left unfinished. Almost always the interrupt stops it: FAILURE, and the command
    # fails. A signal that lands in Dagster's last bookkeeping after the final step can be
    # swallowed there: the run then finished, SUCCESS, and the command says so (exit 0).
    if interrupted.returncode != 0:
        assert run.status == DagsterRunStatus.FAILURE, interrupted.stderr[-2000:]
    else:
        assert run.status == DagsterRunStatus.SUCCESS, interrupted.stderr[-2000:]
    _a_new_run_goes_through(tmp_path)
    assert [r.status for r in _runs(tmp_path / "home")] == [run.status, DagsterRunStatus.SUCCESS]


@pytest.mark.slow
def test_a_killed_run_is_marked_failed_by_the_next_invocation(tmp_path: Path) -> None:
    from dagster import DagsterRunStatus

    killed = _start_and_signal(tmp_path, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    [run] = _runs(tmp_path / "home")
    assert run.status == DagsterRunStatus.STARTED  # nothing in the process could react
    done = _a_new_run_goes_through(tmp_path)
    assert f"Marked run {run.run_id} failed: its allocator run process" in done.stdout
    runs = _runs(tmp_path / "home")
    assert [r.status for r in runs] == [DagsterRunStatus.FAILURE, DagsterRunStatus.SUCCESS]


def test_the_quickstart_instance_monitors_runs(tmp_path: Path, monkeypatch) -> None:
    from dagster import DagsterInstance

    from allocator_dagster.cli.run import QUICKSTART_INSTANCE_YAML

    (tmp_path / "dagster.yaml").write_text(QUICKSTART_INSTANCE_YAML)
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_runtime_seconds == 7200
        assert instance.run_monitoring_start_timeout_seconds == 300


@pytest.mark.postgres
def test_the_production_instance_monitors_runs(
    pg_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import DagsterInstance

    name = f"allocator_monitoring_{uuid.uuid4().hex[:8]}"
    url = sa.engine.make_url(create_pg_database(pg_server, name))
    try:
        monkeypatch.setenv("DAGSTER_PG_HOST", url.host or "127.0.0.1")
        monkeypatch.setenv("DAGSTER_PG_PORT", str(url.port or 5432))
        monkeypatch.setenv("DAGSTER_PG_USERNAME", url.username or "postgres")
        monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "")
        monkeypatch.setenv("DAGSTER_PG_DB", name)
        shutil.copyfile(REPO_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
        with DagsterInstance.from_config(str(tmp_path)) as instance:
            assert instance.run_monitoring_enabled
            assert instance.run_monitoring_max_runtime_seconds == 7200
            assert instance.run_monitoring_cancel_timeout_seconds == 300
    finally:
        drop_pg_database(pg_server, name)


def test_allocator_run_materialises_both_graphs_into_its_own_instance(
    tmp_path: Path, database_url: str
) -> None:
    """The README's first command, as a newcomer runs it: no DAGSTER_HOME, an empty folder."""
    from dagster import DagsterInstance, DagsterRunStatus
    from dagster._core.execution.backfill import BulkActionStatus
    from dagster_graphql.test.utils import execute_dagster_graphql

    from allocator_dagster.cli.in_process_backfill import code_location
    from allocator_dagster.defs.allocation.partitions import CHAIN_POOL
    from allocator_dagster.storage.schema import asset_allocations, profit_distributions

    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["ALLOCATOR_DATABASE_URL"] = database_url
    allocator = str(Path(sys.executable).with_name("allocator"))
    args = [allocator, "run", "--days", "3", "--end", "2026-06-03"]
    done = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "Materialising 2026-06-01 .. 2026-06-03 (3 days): allocation, profit_split" in done.stdout
    )
    backfill = r"backfill [a-z]{8}"
    assert re.search(
        rf"allocation +succeeded +{backfill}, 1 run for 3 days \(one run, in date order\): "
        r"[0-9a-f-]{36}\n",
        done.stdout,
    ), done.stdout
    assert re.search(
        rf"profit_split +succeeded +{backfill}, 3 run\(s\) for 3 day\(s\), the last [0-9a-f-]{{36}}\n",
        done.stdout,
    ), done.stdout
    assert "`allocator plan show --day 2026-06-03`" in done.stdout
    assert "`allocator proposals list --status proposed`" in done.stdout

    home = tmp_path / ".dagster_home"
    assert "telemetry:\n  enabled: false" in (home / "dagster.yaml").read_text()
    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 4  # the allocation's range as one run, the profit split one per day
        assert {run.status for run in runs} == {DagsterRunStatus.SUCCESS}
        # the chain's pool has its limit before any run from the UI could race the first one
        limits = {p.name: p for p in instance.event_log_storage.get_pool_limits()}
        assert limits[CHAIN_POOL].limit == 1 and not limits[CHAIN_POOL].from_default
        # named jobs, launched as backfills the UI lists (its Backfills tab reads this query)
        backfills = {b.backfill_id: b for b in instance.get_backfills()}
        assert {b.status for b in backfills.values()} == {BulkActionStatus.COMPLETED_SUCCESS}
        by_job = sorted((run.job_name, run.tags["dagster/backfill"]) for run in runs)
        assert [job for job, _ in by_job] == ["daily_allocation_job", *["profit_split_job"] * 3]
        assert {backfill for _, backfill in by_job} == set(backfills)
        [chain_run] = [run for run in runs if run.job_name == "daily_allocation_job"]
        assert chain_run.tags["dagster/asset_partition_range_start"] == "2026-06-01"
        assert chain_run.tags["dagster/asset_partition_range_end"] == "2026-06-03"
        with code_location(instance) as workspace:
            listed = execute_dagster_graphql(workspace.create_request_context(), BACKFILLS_QUERY)
    results = listed.data["partitionBackfillsOrError"]["results"]
    assert sorted((r["partitionSet"]["pipelineName"], r["numPartitions"]) for r in results) == [
        ("daily_allocation_job", 3),
        ("profit_split_job", 3),
    ]
    assert all(r["status"] == "COMPLETED_SUCCESS" for r in results)
    with get_engine(database_url).connect() as conn:
        days = conn.execute(sa.select(asset_allocations.c.allocation_date)).scalars().all()
        paid = conn.execute(sa.select(profit_distributions.c.distribution_date)).scalars().all()
    assert sorted(days) == [dt.date(2026, 6, 1), dt.date(2026, 6, 2), dt.date(2026, 6, 3)]
    assert sorted(set(paid)) == sorted(days)


def test_the_profit_split_skips_today_and_says_why() -> None:
    from allocator_dagster.cli.run import graph_days

    today = dt.date(2026, 12, 1)
    days, skipped = graph_days("profit_split", dt.date(2026, 11, 18), today, today)
    assert (len(days), days[-1]) == (13, dt.date(2026, 11, 30))
    assert skipped == "2026-12-01 (today) is skipped: a day's profit is known once the day is over"
    days, skipped = graph_days("allocation", dt.date(2026, 11, 18), today, today)
    assert (len(days), skipped) == (14, "")
    days, skipped = graph_days("profit_split", today, today, today)
    assert days == [] and "today" in skipped


def test_a_failed_check_says_what_it_found_without_a_traceback(tmp_path: Path) -> None:
    """A tampered stored day fails its blocking checks: the terminal names each failed check with
    its findings (the stored and recomputed hashes), and shows no Dagster stack trace."""
    env = {k: v for k, v in os.environ.items() if k != "ALLOCATOR_DATABASE_URL"}
    env.update(ALLOCATOR_DATA_DIR=str(tmp_path / "data"), DAGSTER_HOME=str(tmp_path / "home"))
    env.pop("ALLOCATOR_FIRST_DAY", None)

    def run(*args: str) -> subprocess.CompletedProcess:
        command = [ALLOCATOR, "run", *args, "--graph", "allocation"]
        return subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
        )

    first = run("--days", "2", "--end", "2026-11-20")
    assert first.returncode == 0, first.stdout + first.stderr
    with sqlite3.connect(tmp_path / "data" / "allocator.sqlite") as conn:
        rows = conn.execute(
            "SELECT pool_id FROM asset_allocation_details WHERE allocation_date = '2026-11-19' "
            "ORDER BY amount_usd DESC LIMIT 2"
        ).fetchall()
        move = "UPDATE asset_allocation_details SET amount_usd = amount_usd + ? "
        move += "WHERE allocation_date = '2026-11-19' AND pool_id = ?"
        conn.execute(move, (-1000, rows[0][0]))
        conn.execute(move, (1000, rows[1][0]))
    again = run("--days", "1", "--end", "2026-11-19")
    output = again.stdout + again.stderr
    assert again.returncode == 1, output
    found = re.search(
        r"check asset_allocations stored_day_untampered failed \(2026-11-19\): .*detail rows of "
        r"2026-11-19: stored hash ([0-9a-f]{12}), recomputed ([0-9a-f]{12})",
        output,
    )
    assert found, output
    assert found.group(1) != found.group(2)
    assert "step stored_allocation_checks failed: " in output
    # no pointer to the failed day's orders as if it had an outcome
    assert "allocator plan show --day 2026-11-19" not in output, output
    for trace in ("Traceback", "Stack Trace", 'File "'):
        assert trace not in output, output


def test_a_params_file_with_several_problems_is_refused_one_line_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every problem of ALLOCATOR_PARAMS_FILE (a bad entry in a list too, as `allocator lists
    add` would refuse it) is its own `error: ALLOCATOR_PARAMS_FILE: ...` line, before anything
    is written."""
    params = tmp_path / "params.yaml"
    params.write_text("group2_max_pct: 3\nicebox_tokens: ['bad token']\n")
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("ALLOCATOR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ALLOCATOR_PARAMS_FILE", str(params))
    result = CliRunner().invoke(main, ["run", "--days", "1", "--graph", "allocation"])
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert [line.split(": field ")[0] for line in lines] == [
        f"error: ALLOCATOR_PARAMS_FILE: {params}"
    ] * 2, lines
    assert "field 'icebox_tokens': entry 'bad token': symbol 'bad token' contains" in lines[1]
    assert not (tmp_path / "home").exists()


def test_a_re_run_says_what_it_did_to_the_stored_days(tmp_path: Path) -> None:
    """Re-running stored days printed only "succeeded": the footer now says per graph whether
    the days were stored for the first time, reproduced identically, replaced or kept."""

    def run(*args: str) -> str:
        done = subprocess.run(
            [ALLOCATOR, "run", *args], env=_env(tmp_path), cwd=tmp_path,
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    first = run("--days", "2", "--end", "2026-06-01")
    assert "\n" + " " * 28 + "2 days: 2 stored for the first time\n" in first, first
    assert " " * 28 + "2 days: 2 decided now\n" in first, first
    again = run("--days", "3", "--end", "2026-06-02")  # one day more
    assert (
        "3 days: 1 stored for the first time, 2 reproduced from their snapshots, identical\n"
        in again
    ), again
    assert "3 days: 1 decided now, 2 decided before (kept as they were)\n" in again, again
    fresh = run("--days", "1", "--end", "2026-06-02", "--graph", "allocation", "--fresh-snapshots")
    assert "1 day: 1 replaced by fresh snapshots (the same result)\n" in fresh, fresh


def test_a_range_extended_back_before_the_first_stored_day_is_refused(tmp_path: Path) -> None:
    """On the paper ledger a new day before the first stored one becomes its start: the run
    failed its checks on that day (stored and recomputed hashes differ, weights no longer sum
    to the day's capital) after writing the new day. Now refused before anything is written;
    with --fresh-snapshots the stored days are decided again from the new start."""

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [ALLOCATOR, "run", "--end", "2026-06-02", "--graph", "allocation", *args],
            env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=600,
        )  # fmt: skip

    assert run("--days", "2").returncode == 0
    refused = run("--days", "3")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.startswith(
        "error: 2026-06-01 is stored, decided on the start balances it had; deciding 2026-05-31 "
        "first would change them"
    ), refused.stderr
    assert len(refused.stderr.splitlines()) == 1 and refused.stdout == ""
    with sqlite3.connect(tmp_path / "allocator.sqlite") as conn:
        days = conn.execute("SELECT allocation_date FROM asset_allocations ORDER BY 1").fetchall()
    assert [d for (d,) in days] == ["2026-06-01", "2026-06-02"]
    fresh = run("--days", "3", "--fresh-snapshots")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "3 days: 1 stored for the first time, 2 replaced by fresh snapshots" in fresh.stdout
