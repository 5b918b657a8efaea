"""`allocator backtest`: the product's daily decision over past days against baselines."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from decimal import Decimal
from pathlib import Path

import click

from allocator_dagster.cli.options import FiniteFloatRange, fail
from allocator_dagster.money import MAX_USD, to_cents
from allocator_dagster.terminal import shown


def _unwritable(folder: Path) -> str | None:
    """Why the report cannot be written in `folder` (created if missing), or None."""
    if folder.exists():
        return None if folder.is_dir() else "exists and is not a folder"
    parent = next((p for p in folder.parents if p.exists()), None)
    if parent is None or not parent.is_dir():
        return f"{parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create it: {parent} is not writable"
    return None


def _date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not a date (YYYY-MM-DD)")


@click.command("backtest")
@click.option(
    "--history", "history_path", help="A recording: CSV, CSV.gz or a folder of /pools saves."
)
@click.option("--sample", is_flag=True, help="The generated sample instead of a recording.")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the sample.")
@click.option("--start", "start_text", required=True, help="First day (YYYY-MM-DD).")
@click.option("--end", "end_text", required=True, help="Last day (YYYY-MM-DD).")
@click.option(
    "--capital",
    type=FiniteFloatRange(min=0, min_open=True, max=float(MAX_USD)),
    default=10_000_000.0,
    show_default=True,
    help="USD held idle on the first day.",
)
@click.option(
    "--params",
    "params_path",
    type=click.Path(dir_okay=False),
    help="PARAMS.yaml (MODEL.md's parameters; lists in it, if any, replace the defaults).",
)
@click.option(
    "--strategies",
    default="allocator,greedy,equal,hold,oracle",
    show_default=True,
    help="Comma-separated: allocator, greedy, equal, hold, oracle.",
)
@click.option(
    "--solver", type=click.Choice(["convex", "milp"]), default="convex", show_default=True
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option(
    "--trade-credibility",
    is_flag=True,
    help="Also print how much of the forecast gain of the allocator's trades was realised "
    "(MODEL.md, forecast_credibility).",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False),
    help="Write report.md and charts here.",
)
def command(
    history_path: str | None,
    sample: bool,
    seed: int,
    start_text: str,
    end_text: str,
    capital: float,
    params_path: str | None,
    strategies: str,
    solver: str,
    fmt: str,
    trade_credibility: bool,
    report_dir: str | None,
) -> None:
    """Replay the daily allocation over --start..--end against greedy, equal weight, buy and
    hold and a perfect-foresight oracle, all charged MODEL.md's gas and conversion costs.

    Lists: those in --params if it has any; else the sample's defaults, or, for a recording,
    every token and protocol it holds.
    """
    from allocator_dagster.backtest import STRATEGY_NAMES, BacktestError, run
    from allocator_dagster.backtest.days import history_days, sample_days
    from allocator_dagster.backtest.engine import DecisionFailure
    from allocator_dagster.backtest.metrics import as_json, summary_rows, text_table
    from allocator_dagster.backtest.report import build_report, write_report
    from allocator_dagster.parameters import (
        AllocationParameters,
        DynamicLists,
        ParameterError,
        load_parameters_file,
    )
    from allocator_dagster.solvers import Backend

    if bool(history_path) == sample:
        fail("give exactly one of --history FILE and --sample")
    start, end = _date(start_text, "--start"), _date(end_text, "--end")
    if start > end:
        fail(f"--start {start} is after --end {end}")
    names = [n.strip() for n in strategies.split(",") if n.strip()]
    unknown = [n for n in names if n not in STRATEGY_NAMES]
    if unknown or not names:
        what = f"unknown strategy {unknown[0]!r}" if unknown else "no strategy given"
        fail(f"{what}; choose from {', '.join(STRATEGY_NAMES)}")
    if report_dir and (why := _unwritable(Path(report_dir))):
        fail(f"--report {report_dir}: {why}")  # before the days are replayed, not after
    parameters, lists = AllocationParameters(), None
    if params_path:
        try:
            parameters, given = load_parameters_file(params_path)
        except ParameterError as exc:
            fail(exc)
        if given != DynamicLists():  # a file without lists keeps the defaults
            lists = given
    notes = []
    rejected: list[str] = []
    try:
        if sample:
            frame_of, sample_lists = sample_days(seed)
            lists = lists or sample_lists
            source = f"sample, seed {seed}"
        else:
            frame_of, rejected = history_days(history_path or "")
            source = f"recording {history_path}"
        result = run(
            frame_of,
            start,
            end,
            capital_usd=to_cents(Decimal(str(capital))),
            parameters=parameters,
            lists=lists,
            strategies=names,
            backend=Backend(solver),
        )
    except (BacktestError, ValueError) as exc:
        fail(exc)
    except DecisionFailure as exc:  # not bad input: the product's decision failed that day
        click.echo(f"error: {shown(exc)}", err=True)
        sys.exit(1)
    notes.append(f"data: {source}; parameters: {params_path or 'defaults'}; solver: {solver}")
    notes.append(
        f"lists: {len(result.lists.approved_tokens)} approved tokens, "
        f"{len(result.lists.approved_protocols)} approved protocols"
        + ("" if lists is not None else " (every token and protocol of the recording)")
    )
    if rejected:
        notes.append(
            f"{len(rejected)} recorded rows rejected as a live fetch would (left out); "
            f"the first: {rejected[0]}"
        )
    allocator = next((r for r in result.runs if r.name == "allocator"), None)
    if trade_credibility and allocator is not None:
        from allocator_dagster.backtest.credibility import credibility_text
        from allocator_dagster.backtest.credibility import trade_credibility as measure

        notes.append(credibility_text(measure(allocator, result.market)))
    if fmt == "json":
        payload = as_json(str(start), str(end), result.capital_usd, result.runs)
        click.echo(json.dumps(payload, ensure_ascii=False))
    else:
        click.echo(f"Backtest {start} .. {end}, capital {result.capital_usd:,.2f} USD")
        for note in notes:
            click.echo(f"  {shown(note)}")
        click.echo(text_table(summary_rows(result.runs)))
    if report_dir:
        report = build_report(
            "Backtest", str(start), str(end), result.capital_usd, result.runs, notes
        )
        try:
            files = write_report(report, report_dir)
        except OSError as exc:
            fail(f"--report {report_dir}: cannot write the report: {exc.strerror or exc}")
        click.echo(f"report: {shown(files[0])}", err=fmt == "json")
