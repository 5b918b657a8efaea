"""`allocator run`: materialise both asset graphs for a range of days, as a Dagster run.

The runs go to the Dagster instance in DAGSTER_HOME (default: ./.dagster_home, created on first
use), so `dg dev` with the same DAGSTER_HOME shows them in the UI.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
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
"""


def _dagster_home() -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / DEFAULT_DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    instance_yaml = home / "dagster.yaml"
    if not instance_yaml.exists():  # the embedded default: run storage in local files
        instance_yaml.write_text(QUICKSTART_INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def materialize_range(
    start: dt.date, end: dt.date, *, graphs: tuple[str, ...], run_config: dict | None = None
) -> list[tuple[str, bool, str]]:
    """One run per graph covering start..end (single-run backfill); returns (graph, ok, which runs)."""
    from dagster import AssetSelection, DagsterInstance, materialize

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
        assets = [a for a in defs.assets if any(k in keys for k in getattr(a, "keys", []))]
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
                    "dagster/asset_partition_range_start": first.isoformat(),
                    "dagster/asset_partition_range_end": last.isoformat(),
                }
                if first != last
                else {},
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
def command(days: int, end_day: dt.datetime | None, graph: str, fresh_snapshots: bool) -> None:
    """Materialise the daily allocation (and the profit split) for a range of days."""
    home = _dagster_home()
    end = end_day.date() if end_day else dt.datetime.now(dt.UTC).date()
    start = end - dt.timedelta(days=days - 1)
    graphs = ("allocation", "profit_split") if graph == "all" else (graph,)
    click.echo(f"Dagster instance: {home}")
    click.echo(f"Application database: {redact(default_database_url())}")
    click.echo(f"Materialising {start} .. {end} ({days} days): {', '.join(graphs)}")
    run_config = {
        "ops": {
            "allocation_chain": {
                "config": {"snapshot": "fresh" if fresh_snapshots else "reproduce"}
            }
        }
    }
    results = materialize_range(start, end, graphs=graphs, run_config=run_config)
    failed = False
    for name, ok, runs in results:
        click.echo(f"  {name:<13} {'succeeded' if ok else 'FAILED'}   {runs}")
        failed |= not ok
    click.echo("")
    click.echo("Where to look:")
    project = Path(__file__).resolve().parents[2]  # the dg project: pyproject.toml's folder
    click.echo(f"  UI:      DAGSTER_HOME={home} dg dev --target-path {project}")
    click.echo(
        "           then open http://127.0.0.1:3000 (Assets, Runs, the daily_allocation_job)"
    )
    click.echo(f"  Today:   allocator solve ... or the asset_allocations metadata for {end}")
    if failed:
        click.echo("A run failed: its log in the UI (or `dagster run list`) says why.", err=True)
        sys.exit(1)
