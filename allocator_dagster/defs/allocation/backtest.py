"""`backtest_report`: the backtest on the stored pool days, run on demand (not partitioned).

The days are the ones `pool_daily_metrics` stored (with the forecast stored with them), the
parameters and solver those of the `allocation` resource, the lists those in the database (none
yet: every token and protocol of the days is approved). Its own group, so neither the daily job
nor `allocator run` materialises it. (No postponed annotations: Dagster reads the config
class's annotations.)
"""

import datetime as dt
from typing import TYPE_CHECKING

from dagster import AssetExecutionContext, Config, Failure, MaterializeResult, MetadataValue, asset
from pydantic import Field

if TYPE_CHECKING:  # what Dagster accepts as a metadata value (it has no public name)
    from dagster._core.definitions.metadata import RawMetadataValue

from allocator_dagster import backtest
from allocator_dagster.backtest.days import stored_days
from allocator_dagster.backtest.engine import DecisionFailure
from allocator_dagster.backtest.metrics import markdown_table, summarise, summary_rows
from allocator_dagster.backtest.report import CHART_FILES, build_report, write_report
from allocator_dagster.backtest.strategies import STRATEGY_NAMES
from allocator_dagster.charts import png_markdown
from allocator_dagster.defs.resources import AllocationResource, DatabaseResource
from allocator_dagster.money import to_cents
from allocator_dagster.parameters import DynamicLists
from allocator_dagster.risk import concentration_markdown
from allocator_dagster.storage.lists import read_lists
from allocator_dagster.storage.pool_days import stored_pool_days


class BacktestConfig(Config):
    """Which stored days, how much capital and which strategies."""

    start: str = Field(default="", description="first day (YYYY-MM-DD); empty: the first stored")
    end: str = Field(default="", description="last day (YYYY-MM-DD); empty: the last stored")
    capital_usd: float = Field(default=10_000_000.0, gt=0, le=1e12)
    strategies: list[str] = Field(default_factory=lambda: list(STRATEGY_NAMES))
    report_dir: str = Field(default="", description="also write report.md and the PNGs here")


def _day(text: str, name: str, default: dt.date) -> dt.date:
    if not text:
        return default
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise Failure(f"backtest config {name} {text!r} is not a date (YYYY-MM-DD)") from None


@asset(
    group_name="backtest",
    deps=["pool_daily_metrics"],
    kinds={"python"},
    description="The allocator against greedy, equal weight, buy and hold and an oracle on the "
    "stored pool days: summary table, risk and charts (run on demand).",
)
def backtest_report(
    context: AssetExecutionContext,
    config: BacktestConfig,
    database: DatabaseResource,
    allocation: AllocationResource,
) -> MaterializeResult:
    engine = database.engine()
    stored = stored_pool_days(engine)
    if not stored:
        raise Failure("no pool days are stored: materialise pool_daily_metrics first")
    start = _day(config.start, "start", stored[0])
    end = _day(config.end, "end", stored[-1])
    with engine.connect() as conn:
        lists = read_lists(conn)
    settings = allocation.settings()
    try:
        result = backtest.run(
            stored_days(engine),
            start,
            end,
            capital_usd=to_cents(config.capital_usd),
            parameters=settings.parameters,
            lists=None if lists == DynamicLists() else lists,
            strategies=list(config.strategies),
            backend=settings.backend,
        )
    except (ValueError, DecisionFailure) as exc:  # a bad range, an unknown strategy, a failed day
        raise Failure(str(exc)) from None
    notes = [
        f"stored pool days; solver {settings.backend.value}; lists: "
        + ("the database's" if lists != DynamicLists() else "every token and protocol (none set)")
    ]
    report = build_report("Backtest", str(start), str(end), result.capital_usd, result.runs, notes)
    if config.report_dir:
        written = write_report(report, config.report_dir)
        context.log.info(f"backtest report written to {written[0]}")
    summaries = {r.name: summarise(r) for r in result.runs}
    metadata: dict[str, RawMetadataValue] = {
        "start": str(start),
        "end": str(end),
        "days": (end - start).days + 1,
        "capital_usd": float(result.capital_usd),
        "summary": MetadataValue.md(markdown_table(summary_rows(result.runs))),
        **{f"{name}_net_apy_pct": round(s.net_apy_pct, 4) for name, s in summaries.items()},
        **{f"{name}_net_usd": float(s.net_usd) for name, s in summaries.items()},
    }
    focus = next((r for r in result.runs if r.name == "allocator"), result.runs[0])
    last = next((d for d in reversed(focus.days) if d.risk.positions), None)
    if last is not None:
        metadata["risk"] = MetadataValue.md(
            f"{focus.name} on {last.day}:\n\n" + concentration_markdown(last.risk)
        )
    for stem, caption in CHART_FILES.items():
        metadata[stem] = MetadataValue.md(png_markdown(report.charts[stem], caption))
    return MaterializeResult(metadata=metadata)
