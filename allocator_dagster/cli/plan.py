"""`allocator plan show --day D`: the orders that take the day's holdings to its allocation."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import click

from allocator_dagster.cli.options import DAY, database_url_option, fail
from allocator_dagster.day_payouts import DayInputError
from allocator_dagster.day_plan import day_plan
from allocator_dagster.plan import PlanError
from allocator_dagster.pool_labels import fit, labels_from_universe
from allocator_dagster.storage import StorageError, get_engine
from allocator_dagster.storage.pool_reads import load_pool_day
from allocator_dagster.terminal import shown

COLUMNS = (
    "chain",
    "pool",
    "protocol",
    "action",
    "amount_usd",
    "gas_usd",
    "conversion_usd",
    "reason",
    "recipient",
)


@click.group("plan")
def command() -> None:
    """The day's rebalance plan: orders per chain, withdrawals before deposits."""


@command.command("show")
@click.option("--day", type=DAY, required=True, help="The allocated day.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@database_url_option
def show_command(day: datetime, fmt: str, database_url: str | None) -> None:
    """Print the orders that take the day's holdings exactly to its allocation, then the payouts
    of the day's profit (the same plan the rebalance_plan asset records)."""
    try:
        plan = day_plan(get_engine(database_url), day.date()).plan
    except (PlanError, StorageError, DayInputError) as exc:
        fail(exc)
    rows = [o.as_dict() for o in plan.orders]
    if fmt == "json":
        payload = plan.as_dict(day.date())
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(out.getvalue(), nl=False)
        return
    if plan.why:
        click.echo(f"{day.date()}: no rebalance orders. {shown(plan.why)}")
    # a person reads pools by label (symbol · project · chain · poolMeta · short id); the csv
    # and json keep the full ids for machines
    universe = load_pool_day(get_engine(database_url), day.date())
    labels = labels_from_universe(universe, {o.pool for o in plan.orders})
    w = 60
    click.echo(
        f"{'chain':<10} {'action':<8} {'pool':<{w}} {'amount USD':>16} {'gas':>8} {'conv.':>8}  reason"
    )
    for o in plan.orders:
        label = labels.get(o.pool) or " · ".join(p for p in (o.protocol, o.pool) if p)
        click.echo(
            f"{shown(o.chain)[:10]:<10} {o.action:<8} {fit(shown(label), w):<{w}} "
            f"{o.amount_usd:>16,.2f} {o.gas_usd:>8,.2f} {o.conversion_usd:>8,.2f}  {o.reason}"
            + (f" to {o.recipient}" if o.recipient else "")
        )
    click.echo(
        f"idle cash {plan.idle_start_usd:,.2f} + withdrawn {plan.withdrawn_usd:,.2f} - deposited "
        f"{plan.deposited_usd:,.2f} = {plan.idle_end_usd:,.2f} USD; the day's realised profit "
        f"{plan.profit_usd:,.2f} USD lands as idle cash; {plan.paid_out_usd:,.2f} USD paid out of it"
    )
