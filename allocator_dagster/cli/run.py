"""`allocator run`: materialise both asset graphs for a range of days, as a Dagster run.

The runs go to the Dagster instance in DAGSTER_HOME (default: ./.dagster_home, created on first
use), so `dg dev` with the same DAGSTER_HOME shows them in the UI.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import uuid
from pathlib import Path

import click

from allocator_dagster.storage import default_database_url, redact

DEFAULT_DAGSTER_HOME = ".dagster_home"
# graphs whose assets take a partition range in one run (single-run backfill policy)
SINGLE_RUN_GRAPHS = ("allocation",)
# the quickstart instance: Dagster's embedded storage under DAGSTER_HOME, no telemetry (a first
# run needs no network), and the repository dagster.yaml's concurrency pools, so runs launched
# from the UI on this instance also queue behind each other
QUICKSTART_INSTANCE_YAML = """\
# local Dagster instance of `allocator run` (see the README)
telemetry:
  enabled: false
concurrency:
  pools:
    granularity: run
    default_limit: 1
# a run whose process died stops blocking the chain's pool (see the repository's dagster.yaml)
run_monitoring:
  enabled: true
  start_timeout_seconds: 300
  cancel_timeout_seconds: 300
  max_runtime_seconds: 7200
  poll_interval_seconds: 60
"""
# every run of one `allocator run` carries these tags: the invocation finds its own runs when it
# is interrupted, and a later invocation finds runs whose process was killed (SIGKILL, OOM)
INVOCATION_TAG = "allocator/invocation"
HOST_TAG = "allocator/host"
PID_TAG = "allocator/pid"


class PartitionRangeError(ValueError):
    """Days outside the daily partitions; the message gives the partitions' first and last day."""


def check_partition_range(start: dt.date, end: dt.date) -> None:
    """Refuse a range the allocation's daily partitions do not cover, before any run starts."""
    from allocator_dagster.defs.allocation.partitions import daily_partitions

    first_key = daily_partitions.get_first_partition_key()
    last_key = daily_partitions.get_last_partition_key()
    if first_key is None or last_key is None:  # the first day is in the future: no partition yet
        raise PartitionRangeError("there is no daily partition yet: the first day is still to come")
    first, last = dt.date.fromisoformat(first_key), dt.date.fromisoformat(last_key)
    outside = [day for day in (start, end) if not first <= day <= last]
    if outside:
        raise PartitionRangeError(
            f"there is no partition for {outside[0]}: the daily partitions run from {first} to "
            f"{last} (today, UTC); choose --end and --days inside them"
        )


def fail_unfinished_runs(invocation: str, reason: str) -> list[str]:
    """Mark this invocation's runs that are not finished as failed (they would stay STARTED and
    hold the chain's concurrency pool); returns their ids."""
    from dagster import DagsterInstance, RunsFilter
    from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES

    instance = DagsterInstance.get()
    failed = []
    for run in instance.get_runs(
        filters=RunsFilter(tags={INVOCATION_TAG: invocation}, statuses=NOT_FINISHED_STATUSES)
    ):
        instance.report_run_failed(run, reason)
        failed.append(run.run_id)
    return failed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def fail_dead_runs() -> list[tuple[str, int]]:
    """Mark failed the unfinished runs of earlier `allocator run` processes on this host that no
    longer exist: a killed process (SIGKILL cannot be caught) leaves its run STARTED, and a
    STARTED run holds the chain's concurrency pool. Returns (run id, pid) of each."""
    from dagster import DagsterInstance, RunsFilter
    from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES

    instance = DagsterInstance.get()
    host = os.uname().nodename
    dead = []
    for run in instance.get_runs(
        filters=RunsFilter(tags={HOST_TAG: host}, statuses=NOT_FINISHED_STATUSES)
    ):
        pid = run.tags.get(PID_TAG, "")
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            instance.report_run_failed(
                run, f"the allocator run process {pid} that executed this run is gone (killed)"
            )
            dead.append((run.run_id, int(pid)))
    return dead


def _terminate_as_interrupt(signum: int, _frame: object) -> None:
    """SIGTERM ends `allocator run` the way Ctrl-C does, so its runs are marked failed."""
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _dagster_home() -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / DEFAULT_DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    instance_yaml = home / "dagster.yaml"
    if not instance_yaml.exists():  # the embedded default: run storage in local files
        instance_yaml.write_text(QUICKSTART_INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def materialize_range(
    start: dt.date,
    end: dt.date,
    *,
    graphs: tuple[str, ...],
    run_config: dict | None = None,
    tags: dict[str, str] | None = None,
) -> list[tuple[str, bool, str]]:
    """One run per graph covering start..end (single-run backfill); returns (graph, ok, which runs)."""
    from dagster import AssetsDefinition, AssetSelection, DagsterInstance, materialize

    from allocator_dagster.definitions import build_definitions
    from allocator_dagster.defs.allocation.partitions import ensure_chain_pool

    defs = build_definitions()
    instance = DagsterInstance.get()
    ensure_chain_pool(instance)
    results = []
    graph = defs.resolve_asset_graph()
    for name in graphs:
        selection = AssetSelection.groups(name)
        keys = selection.resolve(graph)
        assets = [
            a
            for a in (defs.assets or [])
            if isinstance(a, AssetsDefinition) and any(k in keys for k in a.keys)
        ]
        checks = [
            c for c in (defs.asset_checks or []) if any(k.asset_key in keys for k in c.check_keys)
        ]
        config = {
            **((run_config or {}) if name == "allocation" else {}),
            "loggers": {"console": {"config": {"log_level": "ERROR"}}},
        }
        last = end
        if name == "profit_split":  # a day's profit is known once the day is over
            last = min(end, dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
        if last < start:
            results.append((name, True, "nothing to run: no completed day in the range"))
            continue
        if name in SINGLE_RUN_GRAPHS:  # one run for the whole range, days in date order
            spans = [(start, last)]
        else:  # one run per day
            spans = [(start + dt.timedelta(days=k),) * 2 for k in range((last - start).days + 1)]
        ok, run_ids = True, []
        for first, last in spans:
            result = materialize(
                [*assets, *checks],
                instance=instance,
                resources=defs.resources,
                tags={
                    **(tags or {}),
                    **(
                        {
                            "dagster/asset_partition_range_start": first.isoformat(),
                            "dagster/asset_partition_range_end": last.isoformat(),
                        }
                        if first != last
                        else {}
                    ),
                },
                partition_key=first.isoformat() if first == last else None,
                run_config=config,
                raise_on_error=False,
            )
            ok &= result.success
            run_ids.append(result.run_id)
            if not result.success:
                break
        results.append(
            (
                name,
                ok,
                f"run {run_ids[-1]}"
                if len(run_ids) == 1
                else f"{len(run_ids)} runs, the last {run_ids[-1]}",
            )
        )
    return results


@click.command("run")
@click.option(
    "--days",
    type=click.IntRange(1, 800),
    default=14,
    show_default=True,
    help="How many days, ending at --end.",
)
@click.option(
    "--end",
    "end_day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Last day (default: today, UTC).",
)
@click.option(
    "--graph",
    "graph",
    type=click.Choice(["all", "allocation", "profit_split"]),
    default="all",
    show_default=True,
)
@click.option(
    "--fresh-snapshots", is_flag=True, help="Take new snapshots instead of reproducing stored ones."
)
@click.option(
    "--accept-recomputation",
    is_flag=True,
    help="Replace stored days whose records fail their hashes (check stored_day_untampered) or "
    "no longer reproduce, by the days decided again from what is stored now.",
)
def command(
    days: int,
    end_day: dt.datetime | None,
    graph: str,
    fresh_snapshots: bool,
    accept_recomputation: bool,
) -> None:
    """Materialise the daily allocation (and the profit split) for a range of days.

    Interrupted (Ctrl-C, SIGTERM), it marks its unfinished runs failed before it exits, so no
    run is left STARTED to block the chain's queue.
    """
    end = end_day.date() if end_day else dt.datetime.now(dt.UTC).date()
    start = end - dt.timedelta(days=days - 1)
    try:
        check_partition_range(start, end)
    except PartitionRangeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    home = _dagster_home()
    graphs = ("allocation", "profit_split") if graph == "all" else (graph,)
    click.echo(f"Dagster instance: {home}")
    click.echo(f"Application database: {redact(default_database_url())}")
    click.echo(f"Materialising {start} .. {end} ({days} days): {', '.join(graphs)}")
    run_config = {
        "ops": {
            "allocation_chain": {
                "config": {
                    "snapshot": "fresh" if fresh_snapshots else "reproduce",
                    "accept_recomputation": accept_recomputation,
                }
            }
        }
    }
    for run_id, pid in fail_dead_runs():
        click.echo(f"Marked run {run_id} failed: its allocator run process {pid} was killed")
    invocation = uuid.uuid4().hex
    tags = {INVOCATION_TAG: invocation, HOST_TAG: os.uname().nodename, PID_TAG: str(os.getpid())}
    previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        results = materialize_range(start, end, graphs=graphs, run_config=run_config, tags=tags)
    except BaseException as exc:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not stop the cleanup
        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else type(exc).__name__
        failed = fail_unfinished_runs(
            invocation, f"allocator run was {why}; the run did not finish"
        )
        if failed:
            click.echo(f"{why}: marked run(s) {', '.join(failed)} failed", err=True)
        if isinstance(exc, KeyboardInterrupt):
            click.echo("interrupted: nothing more was run", err=True)
            sys.exit(130)
        raise
    finally:
        if signal.getsignal(signal.SIGTERM) in (_terminate_as_interrupt, signal.SIG_IGN):
            signal.signal(signal.SIGTERM, previous)
    any_failed = False
    for name, ok, runs in results:
        click.echo(f"  {name:<13} {'succeeded' if ok else 'FAILED'}   {runs}")
        any_failed |= not ok
    click.echo("")
    click.echo("Where to look:")
    project = Path(__file__).resolve().parents[2]  # the dg project: pyproject.toml's folder
    click.echo(f"  UI:      DAGSTER_HOME={home} dg dev --target-path {project}")
    click.echo(
        "           then open http://127.0.0.1:3000 (Assets, Runs, the daily_allocation_job)"
    )
    click.echo(f"  Today:   allocator solve ... or the asset_allocations metadata for {end}")
    if any_failed:
        click.echo("A run failed: its log in the UI (or `dagster run list`) says why.", err=True)
        sys.exit(1)
