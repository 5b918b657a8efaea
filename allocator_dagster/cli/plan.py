"""`allocator plan show --day D`: the orders that take the day's holdings to its allocation."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import datetime
from typing import NoReturn

import click

from allocator_dagster.cli.options import database_url_option
from allocator_dagster.plan import Plan, PlanError, PoolInfo, build_plan, empty_plan
from allocator_dagster.rebalance import Decision
from allocator_dagster.storage import StorageError, get_engine
from allocator_dagster.storage import allocations as store
from allocator_dagster.storage.pools import load_pool_day
from allocator_dagster.terminal import shown

DAY = click.DateTime(formats=["%Y-%m-%d"])
COLUMNS = (
    "chain",
    "pool",
    "protocol",
    "action",
    "amount_usd",
    "gas_usd",
    "conversion_usd",
    "reason",
)


def _fail(message: object) -> NoReturn:
    click.echo(f"error: {shown(message, lines=True)}", err=True)
    sys.exit(2)


@click.group("plan")
def command() -> None:
    """The day's rebalance plan: orders per chain, withdrawals before deposits."""


def day_plan(database_url: str | None, day) -> Plan:
    """The plan of a stored day: its start balances and its stored allocation."""
    engine = get_engine(database_url)
    with engine.connect() as conn:
        holdings = store.read_holdings(conn, day)
        stored = store.read_allocation(conn, day)
        details = store.read_detail_pools(conn, day)
    if holdings is None or stored is None:
        missing = "balances" if holdings is None else "allocation"
        _fail(f"{day} has no {missing}: materialise asset_allocations for {day} first")
    reasons = "; ".join(str(r) for r in stored.report.get("reasons") or [])
    if not stored.status.has_solution or stored.decision == Decision.HOLD:
        return empty_plan(holdings, f"{stored.decision} ({stored.status}): {reasons}")
    pools = {p: PoolInfo(ch, pr, g, c) for p, (ch, pr, g, c) in details.items()}
    universe = load_pool_day(engine, day)
    for row in universe.itertuples():  # pools left without a detail row (exits)
        pools.setdefault(str(row.pool), PoolInfo(str(row.chain), str(row.project)))
    return build_plan(
        holdings,
        stored.amounts,
        pools,
        forced=stored.decision == Decision.FORCED,
        yield_only=stored.decision == Decision.YIELD_ONLY,
    )


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
    """Print the orders that take the day's holdings exactly to its allocation."""
    try:
        plan = day_plan(database_url, day.date())
    except (PlanError, StorageError) as exc:
        _fail(exc)
    rows = [o.as_dict() for o in plan.orders]
    if fmt == "json":
        payload = {
            "day": day.date().isoformat(),
            "orders": rows,
            "idle_start_usd": str(plan.idle_start_usd),
            "idle_end_usd": str(plan.idle_end_usd),
            "why_empty": plan.why,
        }
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(out.getvalue(), nl=False)
        return
    if not plan.orders:
        click.echo(f"{day.date()}: no orders. {shown(plan.why)}")
        return
    click.echo(
        f"{'chain':<10} {'action':<8} {'pool':<38} {'protocol':<18} {'amount USD':>16} {'gas':>8} {'conv.':>8}  reason"
    )
    for o in plan.orders:
        click.echo(
            f"{shown(o.chain)[:10]:<10} {o.action:<8} {shown(o.pool)[:38]:<38} "
            f"{shown(o.protocol)[:18]:<18} {o.amount_usd:>16,.2f} {o.gas_usd:>8,.2f} "
            f"{o.conversion_usd:>8,.2f}  {o.reason}"
        )
    click.echo(
        f"idle cash {plan.idle_start_usd:,.2f} + withdrawn {plan.withdrawn_usd:,.2f} - deposited "
        f"{plan.deposited_usd:,.2f} = {plan.idle_end_usd:,.2f} USD"
    )
