"""`allocator solve`: one day's allocation from files, with either backend."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from decimal import Decimal

import click
import pandas as pd

from allocator_dagster.allocation_report import AllocationReport, Decision
from allocator_dagster.cli.options import FiniteFloatRange, fail
from allocator_dagster.inputs import InputFileError, read_holdings_csv, read_pools_csv
from allocator_dagster.model import Holdings, ModelInputError, SolveStatus
from allocator_dagster.model.eligibility import effective_apy
from allocator_dagster.money import MAX_USD
from allocator_dagster.paper_trading import realised_yield
from allocator_dagster.parameters import ParameterError, load_parameters_file
from allocator_dagster.pool_labels import fit, pool_label, readable, report_labels
from allocator_dagster.rebalance import decide
from allocator_dagster.solvers import BACKENDS, Backend
from allocator_dagster.terminal import shown

LABEL_WIDTH = 64


@dataclass(frozen=True)
class HeldEarnings:
    """What the holdings earn when a day keeps them (a held day moves nothing, yet they earn)."""

    apy_pct: dict[str, float]  # per held pool, MODEL.md's effective APY in POOLS.csv (0: gone)
    yield_usd: dict[str, Decimal]  # per held pool, one day at that APY, exact cents

    @property
    def daily_yield_usd(self) -> Decimal:
        return sum(self.yield_usd.values(), Decimal("0.00"))


def held_earnings(universe: pd.DataFrame, holdings: Holdings) -> HeldEarnings:
    """One day of the held positions at the pools' APY (a pool no longer in the data earns 0)."""
    rows = {str(row["pool"]): row for row in universe.to_dict("records")}
    apy = {}
    for pool in holdings.held():
        value = effective_apy(rows[pool])[0] if pool in rows else 0.0
        apy[pool] = value if math.isfinite(value) else 0.0
    return HeldEarnings(apy_pct=apy, yield_usd=realised_yield(holdings, apy))


def render_table(
    report: AllocationReport,
    labels: dict[str, str] | None = None,
    held: HeldEarnings | None = None,
) -> str:
    """A treasurer's summary: the decision and why, the figures, the allocation and the limits.
    Pools are named by their readable labels (symbol · project · chain · poolMeta · short id).
    A held day shows what the kept positions earn, not the zero of a solve that placed nothing."""
    labels = labels or {}
    held = held if report.decision == Decision.HOLD else None
    daily = (
        f"Daily yield        {held.daily_yield_usd:>18,.2f} USD/day (the held positions at "
        "their APY; nothing is moved)"
        if held
        else f"Daily yield        {report.daily_yield_usd:>18,.2f} USD/day"
    )
    out = [
        f"Decision: {report.decision}   status: {report.status}   solver: {report.backend}",
        "Why:",
        *[f"  - {shown(readable(r, labels))}" for r in report.reasons],
        "",
        f"Capital            {report.total_usd:>18,.2f} USD",
        daily,
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
        apy = held.apy_pct.get(line.pool, line.apy_used) if held else line.apy_used
        out.append(
            f"{fit(shown(label), w):<{w}} "
            f"{line.amount_usd:>16,.2f} {line.weight:>8.2%} {line.delta_usd:>+16,.2f} {apy:>7.2f}"
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
    type=FiniteFloatRange(min=0, min_open=True, max=float(MAX_USD)),
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
        fail(exc)
    held = held_earnings(universe, holdings) if report.decision == Decision.HOLD else None
    if fmt == "json":
        payload = report.as_dict()
        if held:  # beside the report (its hash covers only what the model decided)
            payload["held_daily_yield_usd"] = str(held.daily_yield_usd)
        click.echo(json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        click.echo(render_table(report, report_labels(report, universe), held))
    if report.status != SolveStatus.OPTIMAL:
        sys.exit(1)
