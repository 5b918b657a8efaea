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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from allocator_dagster.cli.options import fail
from allocator_dagster.storage import default_database_url, get_engine, redact

if TYPE_CHECKING:
    import sqlalchemy as sa
    from dagster import DagsterInstance

    from allocator_dagster.cli.in_process_backfill import BackfillOutcome

DEFAULT_DAGSTER_HOME = ".dagster_home"
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


def check_partition_range(start: dt.date, end: dt.date, first: dt.date, *, fixed: bool) -> None:
    """Refuse a range the daily partitions do not cover, before any run starts: days after today,
    and (when ALLOCATOR_FIRST_DAY fixes the calendar) days before its first day."""
    from allocator_dagster.defs.partitions import FIRST_DAY_ENV

    today = dt.datetime.now(dt.UTC).date()
    if end > today:
        raise PartitionRangeError(
            f"there is no partition for {end}: the last daily partition is today, {today} (UTC); "
            "choose an --end up to today"
        )
    if fixed and start < first:
        raise PartitionRangeError(
            f"there is no partition for {start}: the daily partitions start on {first} "
            f"({FIRST_DAY_ENV}); choose --end and --days inside them"
        )


def launched_backfills(invocation: str) -> list[str]:
    """The ids of the backfills this invocation added to the instance."""
    from dagster import DagsterInstance
    from dagster._core.execution.backfill import BulkActionsFilter

    mine = BulkActionsFilter(tags={INVOCATION_TAG: invocation})
    return [b.backfill_id for b in DagsterInstance.get().get_backfills(filters=mine)]


def fail_unfinished_runs(invocation: str, reason: str) -> list[str]:
    """Mark this invocation's runs that are not finished as failed (they would stay STARTED and
    hold the chain's concurrency pool), and its backfills (a daemon would resume them); returns
    the runs' ids."""
    from dagster import DagsterInstance, RunsFilter
    from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES

    instance = DagsterInstance.get()
    failed = []
    for run in instance.get_runs(
        filters=RunsFilter(tags={INVOCATION_TAG: invocation}, statuses=NOT_FINISHED_STATUSES)
    ):
        instance.report_run_failed(run, reason)
        failed.append(run.run_id)
    _fail_requested_backfills(instance, lambda tags: tags.get(INVOCATION_TAG) == invocation, reason)
    return failed


def _fail_requested_backfills(
    instance: DagsterInstance, belongs: Callable[[Mapping[str, str]], bool], reason: str
) -> None:
    """Mark failed the backfills still REQUESTED that `belongs` claims (by their tags)."""
    from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus

    from allocator_dagster.cli.in_process_backfill import fail_backfill

    requested = BulkActionsFilter(statuses=[BulkActionStatus.REQUESTED])
    for backfill in instance.get_backfills(filters=requested):
        if belongs(backfill.tags):
            fail_backfill(instance, backfill.backfill_id, reason)


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

    def gone(tags: Mapping[str, str]) -> bool:
        pid = tags.get(PID_TAG, "")
        return (
            tags.get(HOST_TAG) == host
            and pid.isdigit()
            and int(pid) != os.getpid()
            and not _process_alive(int(pid))
        )

    _fail_requested_backfills(instance, gone, "its allocator run process is gone (killed)")
    return dead


def _terminate_as_interrupt(signum: int, _frame: object) -> None:
    """SIGTERM ends `allocator run` the way Ctrl-C does, so its runs are marked failed."""
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _dagster_home() -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / DEFAULT_DAGSTER_HOME).resolve()
    instance_yaml = home / "dagster.yaml"
    try:
        home.mkdir(parents=True, exist_ok=True)
        if not instance_yaml.exists():  # the embedded default: run storage in local files
            instance_yaml.write_text(QUICKSTART_INSTANCE_YAML)
    except OSError as exc:  # a file in its place, a folder that cannot be written
        why = "a file, not a folder" if home.is_file() else exc.strerror
        fail(f"DAGSTER_HOME={home}: cannot use it as the Dagster instance's folder ({why})")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


# what each graph's named job is, and which of its days a range can have
JOBS = {"allocation": "daily_allocation_job", "profit_split": "profit_split_job"}


@dataclass(frozen=True)
class GraphResult:
    """One graph's backfill: which days it ran, which it skipped and why, how it ended."""

    graph: str
    days: list[dt.date]
    skipped: str  # why days of the range were left out ("" when none were)
    outcome: BackfillOutcome | None  # None: nothing to run

    @property
    def succeeded(self) -> bool:
        return self.outcome is None or self.outcome.succeeded

    def summary(self) -> str:
        if self.outcome is None:
            return f"nothing to run: {self.skipped}"
        runs = self.outcome.run_ids
        if len(runs) == 1 and len(self.days) > 1:
            counted = f"1 run for {len(self.days)} days (one run, in date order)"
        else:
            counted = f"{len(runs)} run(s) for {len(self.days)} day(s)"
        last = f", the last {runs[-1]}" if len(runs) > 1 else (f": {runs[0]}" if runs else "")
        return f"backfill {self.outcome.backfill_id}, {counted}{last}" + (
            f"; {self.skipped}" if self.skipped else ""
        )


def graph_days(graph: str, start: dt.date, end: dt.date, today: dt.date) -> tuple[list, str]:
    """The days of start..end a graph can run, and why any were left out."""
    last = end
    skipped = ""
    if graph == "profit_split" and end >= today:  # a day's profit is known once it is over
        last = today - dt.timedelta(days=1)
        skipped = f"{today} (today) is skipped: a day's profit is known once the day is over"
        if end > today:
            skipped = f"{today} and later are skipped: a day's profit is known once the day is over"
    days = [start + dt.timedelta(days=k) for k in range((last - start).days + 1)]
    return days, skipped


def backfill_range(
    start: dt.date,
    end: dt.date,
    *,
    graphs: tuple[str, ...],
    run_config: dict | None = None,
    tags: dict[str, str] | None = None,
) -> list[GraphResult]:
    """One backfill per graph's named job over start..end, executed here, graph after graph
    (the profit split's realised yield follows from the allocation's ledger)."""
    from allocator_dagster.cli.in_process_backfill import (
        code_location,
        in_process_instance,
        run_backfill,
    )
    from allocator_dagster.defs.allocation.partitions import ensure_chain_pool

    instance = in_process_instance(Path(os.environ["DAGSTER_HOME"]))
    ensure_chain_pool(instance)
    today = dt.datetime.now(dt.UTC).date()
    results = []
    with code_location(instance) as workspace:
        for graph in graphs:
            days, skipped = graph_days(graph, start, end, today)
            if not days:
                results.append(GraphResult(graph, days, skipped or "no day in the range", None))
                continue
            outcome = run_backfill(
                workspace,
                JOBS[graph],
                days,
                run_config=(run_config or {}) if graph == "allocation" else {},
                tags=tags or {},
                title=f"allocator run: {graph} {days[0]}..{days[-1]}",
            )
            results.append(GraphResult(graph, days, skipped, outcome))
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

    Each graph is a Dagster backfill of its named job (daily_allocation_job: the range as one
    run; profit_split_job: one run per completed day, so today is skipped), executed by this
    command and listed in the UI's Backfills tab. Interrupted (Ctrl-C, SIGTERM), it marks its
    unfinished runs and backfills failed before it exits, so no run is left STARTED to block the
    chain's queue.
    """
    from allocator_dagster.defs.partitions import FIRST_DAY_ENV, first_day

    end = end_day.date() if end_day else dt.datetime.now(dt.UTC).date()
    start = end - dt.timedelta(days=days - 1)
    fixed = bool(os.environ.get(FIRST_DAY_ENV, "").strip())  # a deployment's calendar
    try:
        first = dt.date.fromisoformat(first_day(os.environ.get(FIRST_DAY_ENV))) if fixed else start
        check_partition_range(start, end, first, fixed=fixed)
    except (PartitionRangeError, ValueError) as exc:
        fail(exc)
    # what would fail every run is refused before the instance or the calendar is touched
    from allocator_dagster.defs.resources import environment_errors

    if errors := environment_errors():
        fail("\n".join(errors))
    engine = get_engine(default_database_url())  # unusable: one line naming it, exit 2
    graphs = ("allocation", "profit_split") if graph == "all" else (graph,)
    if "allocation" in graphs and not (fresh_snapshots or accept_recomputation):
        _refuse_moving_stored_days(engine, start, end)
    home = _dagster_home()
    recorded_before: str | None = None
    if not fixed:
        from allocator_dagster.cli.first_day import record_first_day
        from allocator_dagster.defs.partitions import recorded_first_day

        try:
            recorded_before = recorded_first_day(str(home))
            record_first_day(home, start)
        except ValueError as exc:  # an unreadable record: say which file
            fail(exc)
    click.echo(f"Dagster instance: {home}")
    click.echo(f"Application database: {redact(default_database_url())}")
    counted = f"{days} day" if days == 1 else f"{days} days"
    click.echo(f"Materialising {start} .. {end} ({counted}): {', '.join(graphs)}")
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
        results = backfill_range(start, end, graphs=graphs, run_config=run_config, tags=tags)
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
        if not fixed:  # no backfill launched: the calendar is as it was
            from allocator_dagster.cli.first_day import settle_first_day

            settle_first_day(home, recorded_before, launched=bool(launched_backfills(invocation)))
        if signal.getsignal(signal.SIGTERM) in (_terminate_as_interrupt, signal.SIG_IGN):
            signal.signal(signal.SIGTERM, previous)
    for result in results:
        state = "succeeded" if result.succeeded else "FAILED"
        click.echo(f"  {result.graph:<13} {state:<9}   {result.summary()}")
        if done := _days_done(result, fresh=fresh_snapshots, accepted=accept_recomputation):
            click.echo(f"  {'':<13} {'':<9}   {done}")
    any_failed = not all(result.succeeded for result in results)
    if any_failed:
        _echo_failures(results)
    click.echo("")
    click.echo("Where to look:")
    project = Path(__file__).resolve().parents[2]  # the dg project: pyproject.toml's folder
    click.echo(f"  UI:      DAGSTER_HOME={home} dg dev --target-path {project}")
    jobs = " and ".join(JOBS[g] for g in graphs)
    click.echo(f"           then open http://127.0.0.1:3000 (Overview > Backfills, Assets, {jobs})")
    for result in results:
        if result.days and result.succeeded:  # a failed graph's day has no outcome to read
            click.echo(_where_to_look(result.graph, result.days[-1]))
    if any_failed:
        click.echo("A run failed: its full log is in the UI (or `dagster run list`).", err=True)
        sys.exit(1)


def _refuse_moving_stored_days(engine: sa.Engine, start: dt.date, end: dt.date) -> None:
    """On the paper ledger, a new day right before a stored one becomes that day's start: the
    stored day no longer reproduces and is kept on balances it was not decided on (a range
    extended back before the first stored day failed its checks and left that day
    inconsistent). Refused before anything is written, saying what to do instead."""
    from allocator_dagster.daily_allocation import moved_day_message, stored_days_moved_by

    if (os.environ.get("ALLOCATOR_BALANCES_SOURCE") or "paper") != "paper":
        return  # observed balances: a day's start does not follow from the day before
    days = [start + dt.timedelta(days=k) for k in range((end - start).days + 1)]
    if moved := stored_days_moved_by(engine, days):
        fail(moved_day_message(moved[0], len(moved) - 1))


def _days_done(result: GraphResult, *, fresh: bool, accepted: bool) -> str:
    """What the graph's runs did to its days, from what they recorded (`run_days`)."""
    from dagster import DagsterInstance

    from allocator_dagster.cli.run_days import days_done

    if result.outcome is None:
        return ""
    runs = result.outcome.run_ids
    return days_done(DagsterInstance.get(), result.graph, runs, fresh=fresh, accepted=accepted)


def _echo_failures(results: list[GraphResult]) -> None:
    """Why each failed run failed, from its event log: failed blocking checks' findings and
    failed steps' errors, without stack traces."""
    from dagster import DagsterInstance

    from allocator_dagster.cli.run_failures import run_failure_lines

    instance = DagsterInstance.get()
    for result in results:
        for run_id in result.outcome.failed_runs if result.outcome else []:
            click.echo(f"Run {run_id} ({result.graph}) failed:", err=True)
            for line in run_failure_lines(instance, run_id):
                click.echo(f"  {line}", err=True)


def _where_to_look(graph: str, day: dt.date) -> str:
    """The footer line of a graph: where its last day's outcome is read."""
    if graph == "allocation":
        return (
            f"  Allocation {day}: the asset_allocations partition {day} in the UI, or "
            f"`allocator plan show --day {day}` (its orders)"
        )
    return (
        f"  Profit split {day}: the profit_split_proposal partition {day} in the UI, or "
        "`allocator proposals list --status proposed` (what waits for review)"
    )
