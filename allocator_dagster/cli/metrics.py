"""`allocator metrics import --day D FILE`: a day's platform metrics into the four tables.

The file is checked whole before anything is written (docs/platform_metrics.md is the contract);
the four rows are written in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from allocator_dagster.cli.options import database_url_option, fail
from allocator_dagster.profit_split.metrics_file import MetricsFileError, read_metrics_file
from allocator_dagster.storage import StorageError, get_engine
from allocator_dagster.storage import profit_split as store
from allocator_dagster.terminal import shown


@click.group("metrics")
def command() -> None:
    """The platform's daily metrics that profit-split proposals are made from."""


@command.command("import")
@click.option("--day", "day", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--replace", is_flag=True, help="Replace the day's metrics if it has some.")
@database_url_option
def import_command(day: datetime, file: Path, replace: bool, database_url: str | None) -> None:
    """Import one day's metrics from FILE (.csv: a header and one row; .json: an object)."""
    try:
        metrics = read_metrics_file(file, day.date())
    except MetricsFileError as exc:  # one `error:` line per problem, each escaped on its own
        fail("\n".join(shown(problem) for problem in exc.problems))
    try:
        store.write_platform_metrics(get_engine(database_url), metrics, replace=replace)
    except (StorageError, store.MetricsExist) as exc:
        fail(exc)
    click.echo(
        f"metrics for {metrics.metric_date} imported from {file}: engagement score "
        f"{metrics.engagement.engagement_score}, treasury {metrics.treasury.balance_usd} USD, "
        f"community growth {metrics.community.growth_pct_7d} % in 7 days"
    )
