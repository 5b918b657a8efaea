"""`allocator solve`: one day's allocation from files, with either backend."""

from __future__ import annotations

import json
import sys
from decimal import Decimal

import click

from allocator_dagster.inputs import InputFileError, read_holdings_csv, read_pools_csv
from allocator_dagster.model import Holdings, ModelInputError, SolveStatus
from allocator_dagster.money import MAX_USD
from allocator_dagster.parameters import ParameterError, load_parameters_file
from allocator_dagster.pool_labels import fit, pool_label, readable, report_labels
from allocator_dagster.rebalance import AllocationReport, decide
from allocator_dagster.solvers import BACKENDS, Backend
from allocator_dagster.terminal import shown

LABEL_WIDTH = 64


def render_table(report: AllocationReport, labels: dict[str, str] | None = None) -> str:
    """A treasurer's summary: the decision and why, the figures, the allocation and the limits.
    Pools are named by their readable labels (symbol · project · chain · poolMeta · short id)."""
    labels = labels or {}
    out = [
        f"Decision: {report.decision}   status: {report.status}   solver: {report.backend}",
        "Why:",
        *[f"  - {shown(readable(r, labels))}" for r in report.reasons],
        "",
        f"Capital            {report.total_usd:>18,.2f} USD",
        f"Daily yield        {report.daily_yield_usd:>18,.2f} USD/day",
        f"One-time costs     {report.costs_usd:>18,.2f} USD (gas {report.gas_usd:,.2f}, "
        f"conversion {report.conversion_usd:,.2f})",
        f"Objective          {report.objective_usd_per_day:>18,.2f} USD/day (yield - costs/H)",
        f"Eligible pools     {report.eligible_pools:>18,d} (not eligible: {report.ineligible_pools:,d})",
        "",
    ]
    w = LABEL_WIDTH
    header = f"{'pool':<{w}} {'amount USD':>16} {'weight':>8} {'delta USD':>16} {'APY %':>7}"
    out += [header, "-" * len(header)]
    for line in report.lines:
        label = labels.get(line.pool) or pool_label(
            line.pool, line.symbol, line.project, line.chain
        )
        out.append(
            f"{fit(shown(label), w):<{w}} "
            f"{line.amount_usd:>16,.2f} {line.weight:>8.2%} {line.delta_usd:>+16,.2f} {line.apy_used:>7.2f}"
        )
    if report.binding_limits:
        out += ["", "Binding limits (shadow prices from the continuous solve):"]
        out += [f"  - {shown(readable(b.description, labels))}" for b in report.binding_limits[:15]]
        if len(report.binding_limits) > 15:
            out.append(f"  ... and {len(report.binding_limits) - 15} more")
    out += ["", "Model treatment:"]
    out += [f"  - {e.part}: {e.treatment}" for e in report.exactness]
    out.append(f"Solve time: {report.solve_seconds:.3f} s   result hash: {report.result_hash[:16]}")
    return "\n".join(out)


@click.command("solve")
@click.option(
    "--pools",
    "pools_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="POOLS.csv in DefiLlama's columns.",
)
@click.option(
    "--params",
    "params_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="PARAMS.yaml: MODEL.md's parameters and the four lists.",
)
@click.option(
    "--holdings",
    "holdings_path",
    type=click.Path(dir_okay=False),
    help="HOLDINGS.csv: pool,amount_usd rows and one idle_usd row.",
)
@click.option(
    "--capital",
    type=click.FloatRange(min=0, min_open=True, max=float(MAX_USD)),
    default=10_000_000.0,
    show_default=True,
    help="USD held idle when there is no HOLDINGS.csv.",
)
@click.option(
    "--solver", type=click.Choice(BACKENDS), default=Backend.CONVEX.value, show_default=True
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def command(
    pools_path: str,
    params_path: str,
    holdings_path: str | None,
    capital: float,
    solver: str,
    fmt: str,
) -> None:
    """Solve one day's allocation (MODEL.md) and print the report."""
    try:
        params, lists = load_parameters_file(params_path)
        universe = read_pools_csv(pools_path)
        holdings = (
            read_holdings_csv(holdings_path)
            if holdings_path
            else Holdings.idle(Decimal(str(capital)))
        )
        report = decide(universe, holdings, params, lists, Backend(solver))
    except (InputFileError, ParameterError, ModelInputError) as exc:
        click.echo(f"error: {shown(exc, lines=True)}", err=True)
        sys.exit(2)
    if fmt == "json":
        click.echo(json.dumps(report.as_dict(), indent=2, sort_keys=True, ensure_ascii=False))
    else:
        click.echo(render_table(report, report_labels(report, universe)))
    if report.status != SolveStatus.OPTIMAL:
        sys.exit(1)
