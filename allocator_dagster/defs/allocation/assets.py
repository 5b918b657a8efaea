"""The daily allocation chain as software-defined assets.

`pool_daily_metrics` -> `balances` -> `allocation_parameters` -> `solver_output` -> `asset_allocations`.
The last four are one non-subsettable step: day D's balances follow from day D-1's allocation
(paper trading), which Dagster can only express as a self-dependency of `asset_allocations`.
A range of days runs in one run, in date order (single-run backfill policy).
"""

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Literal

import pandas as pd
import sqlalchemy as sa
from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    TimeWindowPartitionMapping,
    asset,
    multi_asset,
)
from pydantic import Field

if TYPE_CHECKING:  # what Dagster accepts as a metadata value (it has no public name)
    from dagster._core.definitions.metadata import RawMetadataValue

from allocator_dagster.allocation_history import HISTORY_DAYS, realised_usd
from allocator_dagster.charts import (
    allocation_history_png,
    png_markdown,
    weights_and_deltas_png,
    yield_history_png,
)
from allocator_dagster.daily_allocation import DayOutcome, run_day
from allocator_dagster.defs.allocation.partitions import CHAIN_POOL, GROUP, daily_partitions
from allocator_dagster.defs.allocation.trailing_apy import TrailingApy
from allocator_dagster.defs.partitions import partition_days
from allocator_dagster.defs.resources import (
    AllocationResource,
    DatabaseResource,
    PoolSourceResource,
)
from allocator_dagster.model import SolveStatus
from allocator_dagster.money import round_usd
from allocator_dagster.pool_labels import readable, report_labels
from allocator_dagster.reporting import (
    allocation_table_rows,
    binding_limits_markdown,
    decision_markdown,
    drift_markdown,
    top_pools_markdown,
)
from allocator_dagster.risk import concentration, concentration_markdown, pool_facts
from allocator_dagster.runtime import frozen_heap
from allocator_dagster.storage import StorageError
from allocator_dagster.storage.history import HistoryWindow


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name=GROUP,
    kinds={"python", "sql"},
    description="Pool metrics of the day in DefiLlama's yields shape, with the APY/TVL forecast for the day.",
)
def pool_daily_metrics(
    context: AssetExecutionContext,
    database: DatabaseResource,
    pool_source: PoolSourceResource,
) -> MaterializeResult:
    engine = database.engine()
    days = partition_days(context)
    rows = 0
    rejected: Counter[str] = Counter()
    with frozen_heap():
        for day in days:
            result = pool_source.ingest(engine, day)
            rows += result.stored_rows
            lines = []
            for r in result.rejections:
                rejected[r.reason.split(":")[0]] += 1
                lines.append(f"row {r.row_number} (pool {r.pool_id}): {r.reason}")
            if lines:  # one log entry per day, not one per rejected row
                context.log.warning(f"{day}: rejected " + "; rejected ".join(lines))
            # each day's partition records its own figures, not the range's last day
            context.add_asset_metadata(
                {
                    "day": day.isoformat(),
                    "rows": result.stored_rows,
                    "rejected_rows": len(result.rejections),
                    "rejections": MetadataValue.md(
                        "\n".join(f"- {line}" for line in lines[:20]) or "none"
                    ),
                    "top_pools": MetadataValue.md(top_pools_markdown(result.universe)),
                    "dagster/row_count": len(result.universe),
                },
                partition_key=day.isoformat(),
            )
            context.log.debug(f"{day}: pool day stored")  # the benchmark's per-day clock
    return MaterializeResult(
        metadata={
            **_span(days),
            "run_rows": rows,
            "run_rejected_rows": sum(rejected.values()),
            "source": pool_source.source,
        }
    )


class AllocationRunConfig(Config):
    """Run configuration of the allocation step."""

    snapshot: Literal["reproduce", "fresh"] = Field(
        default="reproduce",
        description="reproduce: solve from the day's stored snapshot (backfills give the same result); "
        "fresh: take a new snapshot of today's parameters and lists",
    )
    force_reallocation: bool = Field(
        default=False, description="reallocate fully (set by the sensors)"
    )
    force_reasons: list[str] = Field(
        default_factory=list, description="why the reallocation is forced"
    )
    accept_recomputation: bool = Field(
        default=False,
        description="reproduce mode: replace a stored day whose records fail their hashes "
        "(check stored_day_untampered) or whose result no longer matches, by the day decided "
        "again from what is stored now (the operator's decision; the problems stay in the report)",
    )


CHAIN_KEYS = ("balances", "allocation_parameters", "solver_output", "asset_allocations")


@multi_asset(
    specs=[
        AssetSpec(
            "balances",
            deps=["pool_daily_metrics"],
            group_name=GROUP,
            description="Holdings per pool and idle cash at the start of the day (daily_ledger).",
        ),
        AssetSpec(
            "allocation_parameters",
            deps=["balances"],
            group_name=GROUP,
            description="The snapshot the day's run used: parameters, the four lists, input hashes, versions.",
        ),
        AssetSpec(
            "solver_output",
            deps=["allocation_parameters"],
            group_name=GROUP,
            description="MODEL.md's report: decision, reasons, amounts, objective, binding limits.",
        ),
        AssetSpec(
            "asset_allocations",
            deps=[
                "solver_output",
                AssetDep(
                    "asset_allocations",
                    partition_mapping=TimeWindowPartitionMapping(start_offset=-1, end_offset=-1),
                ),
            ],
            group_name=GROUP,
            description="The stored allocation with per-pool details; the next day's ledger follows from it.",
        ),
    ],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    can_subset=False,
    pool=CHAIN_POOL,
)
def allocation_chain(
    context: AssetExecutionContext,
    config: AllocationRunConfig,
    database: DatabaseResource,
    pool_source: PoolSourceResource,
    allocation: AllocationResource,
) -> Iterator[MaterializeResult]:
    engine = database.engine()
    pool_source.seed_lists(engine)
    settings = allocation.settings()
    force = list(config.force_reasons) or (
        ["requested in run config"] if config.force_reallocation else []
    )
    outcomes: list[DayOutcome] = []
    days = partition_days(context)
    # charts cost tens of ms each: drawn only for the run's last days, where a person looks
    charted = set(days[len(days) - allocation.chart_days :]) if allocation.chart_days else set()
    history = HistoryWindow(engine)
    trailing = TrailingApy(engine)
    with frozen_heap():
        for day in days:
            _observe_balances(context, allocation, engine, day)
            outcome = run_day(
                engine,
                day,
                settings,
                snapshot_policy=config.snapshot,
                force_reasons=force or None,
                successor_in_run=day != days[-1],
                accept_recomputation=config.accept_recomputation,
            )
            report = outcome.report
            context.log.info(
                f"{day}: {report.decision} ({report.status}), objective {report.objective_usd_per_day:,.2f} USD/day, "
                f"hash {report.result_hash[:12]}"
                + (
                    f", reproduced {'=' if outcome.hash_matched else '!='} stored"
                    if outcome.previous_hash
                    else ""
                )
            )
            if report.status != SolveStatus.OPTIMAL:
                context.log.warning(f"{day}: no new allocation; " + "; ".join(report.reasons))
            labels = report_labels(report, outcome.universe)
            charts = (
                _charts(outcome, labels, history)
                if day in charted
                else _no_charts(outcome, allocation.chart_days)
            )
            held = [line.pool for line in report.lines if line.amount_usd > 0]
            apy_window = trailing.up_to(day, outcome.universe, held)
            day_metadata = _day_metadata(outcome, config.snapshot, labels, charts, apy_window)
            for key, metadata in day_metadata.items():
                context.add_asset_metadata(metadata, asset_key=key, partition_key=day.isoformat())
            outcomes.append(without_universe(outcome))
            context.log.debug(f"{day}: allocation day stored")  # the benchmark's per-day clock
    yield from _results(outcomes, config.snapshot)


def without_universe(outcome: DayOutcome) -> DayOutcome:
    """The outcome for the run's summary, which needs no pool frame: a range's worth of them
    must not stay in memory. An empty copy, since an `iloc[:0]` view would keep the day's whole
    arrays (and every string of them) alive until the step ends."""
    return replace(outcome, universe=outcome.universe.iloc[:0].copy())


def _observe_balances(
    context: AssetExecutionContext, allocation: AllocationResource, engine: sa.Engine, day: date
) -> None:
    """The etherscan source reads the chain for today's partition (a re-run reuses the stored
    observation); an error stops the run with its one-line reason, storing nothing."""
    from allocator_dagster.onchain_balances import ObservationError

    try:
        observed = allocation.observe_balances(engine, day)
    except (ObservationError, StorageError) as exc:
        raise Failure(description=f"{day}: the balances were not observed: {exc}") from None
    if observed is None:
        return
    if observed.record is None:
        context.log.info(f"{day}: reusing the stored {observed.reused_source} balances")
    else:
        r = observed.record
        context.log.info(
            f"{day}: observed on chain {r.positions} positions, {r.total_usd:,.2f} USD in total "
            f"(sha256 {r.file_sha256[:16]}, observation #{r.import_id})"
        )


def _span(days: list) -> dict[str, "RawMetadataValue"]:
    """What the run covered: the same on every partition it materialised."""
    return {"run_days": len(days), "run_first_day": str(days[0]), "run_last_day": str(days[-1])}


ALLOCATION_TABLE = TableSchema(
    columns=[
        TableColumn("pool", "string", description="symbol · project · chain · poolMeta · short id"),
        TableColumn("amount_usd", "string"),
        TableColumn("weight_pct", "float"),
        TableColumn("delta_usd", "string"),
        TableColumn("apy_pct", "float"),
        TableColumn("yield_usd_per_day", "float"),
    ]
)


def _charts(
    outcome: DayOutcome, labels: dict[str, str], history: HistoryWindow
) -> dict[str, "RawMetadataValue"]:
    """The day's PNG charts: weights and deltas, and the stored days up to it (by pool and
    protocol, expected against realised yield)."""
    day = outcome.day.isoformat()
    window = history.up_to(outcome.day)
    return {
        "chart": MetadataValue.md(
            png_markdown(
                weights_and_deltas_png(outcome.report, labels), f"weights and deltas {day}"
            )
        ),
        "allocation_history_chart": MetadataValue.md(
            png_markdown(
                allocation_history_png(window), f"allocation over the {HISTORY_DAYS} days to {day}"
            )
        ),
        "yield_history_chart": MetadataValue.md(
            png_markdown(yield_history_png(window), f"expected and realised yield to {day}")
        ),
    }


def _no_charts(outcome: DayOutcome, chart_days: int) -> dict[str, "RawMetadataValue"]:
    """What a day without charts says instead: how to get them."""
    return {
        "chart": MetadataValue.md(
            f"_Charts are drawn for the last {chart_days} day(s) of a run (ALLOCATOR_CHART_DAYS). "
            f"Materialise {outcome.day} on its own to draw this day's: a re-run reproduces the "
            "stored result from its snapshot._"
        )
    }


def _day_metadata(
    outcome: DayOutcome,
    policy: str,
    labels: dict[str, str],
    charts: dict[str, "RawMetadataValue"],
    apy_window: pd.DataFrame,
) -> dict[str, dict[str, "RawMetadataValue"]]:
    """One day's own materialisation metadata for each asset of the chain (its partition's truth);
    `apy_window` holds the stored days' APYs that the holdings' APY volatility is measured on."""
    report, snap, holdings = outcome.report, outcome.snapshot, outcome.holdings
    day = outcome.day.isoformat()
    observed = dict(
        zip(
            outcome.universe["pool"].astype(str), outcome.universe["apy"].astype(float), strict=True
        )
    )
    why = MetadataValue.md(readable(decision_markdown(report), labels))
    limits = MetadataValue.md(readable(binding_limits_markdown(report), labels))
    moved = sum((abs(line.delta_usd) for line in report.lines), start=type(report.total_usd)(0))
    positions = sum(line.amount_usd > 0 for line in report.lines)
    reproduced = {} if outcome.hash_matched is None else {"hash_matched": outcome.hash_matched}
    # exposure by protocol, chain and token of the day's allocation, and the APY volatility of
    # its positions over the stored days up to this one (risk.py, as the backtest reports it)
    risk = concentration(
        {line.pool: line.amount_usd for line in report.lines},
        pool_facts(outcome.universe[outcome.universe["pool"].isin([x.pool for x in report.lines])]),
        apy_window,
    )
    volatility = risk.apy_volatility_pct  # None: fewer than two stored days
    allocation: dict[str, RawMetadataValue] = {
        "day": day,
        "decision": str(report.decision),  # Dagster metadata takes plain str, not enums
        "status": str(report.status),
        "why": why,
        "total_usd": float(report.total_usd),
        "total": f"{report.total_usd:,.2f} USD",
        "expected_daily_yield_usd": round_usd(report.daily_yield_usd),
        # what the day's start holdings earned at the day's observed APY (the paper ledger's rule)
        "realised_daily_yield_usd": float(realised_usd(holdings, observed)),
        "costs_usd": round_usd(report.costs_usd),
        "objective_usd_per_day": round_usd(report.objective_usd_per_day),
        "positions": positions,
        "usd_moved": float(moved),
        "turnover_pct": round(float(moved / report.total_usd) * 100, 4)
        if report.total_usd
        else 0.0,
        "result_hash": report.result_hash,
        **reproduced,
        # new, identical, replaced or kept: what `allocator run` sums up per run
        "stored_day": outcome.stored_day,
        "allocation": MetadataValue.table(
            [TableRecord(row) for row in allocation_table_rows(report, labels)], ALLOCATION_TABLE
        ),
        **charts,
        "binding_limits": limits,
        "effective_positions": round(risk.effective_positions, 4),
        **({} if volatility is None else {"apy_volatility_pct": round(volatility, 6)}),
        "concentration": MetadataValue.md(concentration_markdown(risk)),
    }
    return {
        "balances": {
            "day": day,
            "total_usd": float(holdings.total_usd),
            "total": f"{holdings.total_usd:,.2f} USD",
            "idle_usd": float(holdings.idle_usd),
            "positions": len(holdings.held()),
            **_day_reconciliation(outcome),
        },
        "allocation_parameters": {
            "day": day,
            "snapshot_policy": policy,
            "snapshot_id": snap.snapshot_id,
            "snapshot_used": outcome.snapshot_used,
            "inputs_match_snapshot": outcome.inputs_match_snapshot,
            "snapshot_hash": snap.snapshot_hash,
            "metrics_hash": snap.metrics_hash,
            "balances_hash": snap.balances_hash,
            "code_version": snap.code_version,
            "solver": snap.solver_versions.get("backend", ""),
            "lists": MetadataValue.json(snap.lists.model_dump(mode="json")),
            "parameters": MetadataValue.json(snap.parameters.model_dump(mode="json")),
        },
        "solver_output": {
            "day": day,
            "status": str(report.status),
            "decision": str(report.decision),
            "result_hash": report.result_hash,
            "why": why,
            "objective_usd_per_day": round_usd(report.objective_usd_per_day),
            "binding_limits": limits,
            "model_treatment": MetadataValue.md(
                "\n".join(f"- {e.part}: {e.treatment}" for e in report.exactness)
            ),
            "solve_seconds": round(report.solve_seconds, 3),
        },
        "asset_allocations": allocation,
    }


def _results(outcomes: list[DayOutcome], policy: str) -> Iterator[MaterializeResult]:
    """The run-wide part of each asset's metadata; each day's own part is added per partition."""
    span = _span([o.day for o in outcomes])
    decisions = Counter(str(o.report.decision) for o in outcomes)
    matched = [o.hash_matched for o in outcomes if o.hash_matched is not None]
    yield MaterializeResult(
        asset_key=AssetKey("balances"), metadata={**span, **_run_drift(outcomes)}
    )
    yield MaterializeResult(
        asset_key=AssetKey("allocation_parameters"),
        metadata={
            **span,
            "run_snapshots_reused": sum(o.snapshot_used == "stored" for o in outcomes),
            "run_inputs_match_snapshot": all(o.inputs_match_snapshot for o in outcomes),
        },
    )
    yield MaterializeResult(
        asset_key=AssetKey("solver_output"),
        metadata={
            **span,
            "run_decisions": MetadataValue.json(dict(decisions)),
            "run_solve_seconds": round(sum(o.report.solve_seconds for o in outcomes), 3),
        },
    )
    yield MaterializeResult(
        asset_key=AssetKey("asset_allocations"),
        metadata={
            **span,
            "reproduction": MetadataValue.md(_reproduction_text(outcomes, policy, matched)),
        },
    )


def _day_reconciliation(outcome: DayOutcome) -> dict[str, "RawMetadataValue"]:
    """The day's observed (imported) holdings against the day before's plan, per pool.
    Empty on paper, where the holdings are the plan's by construction."""
    rec = outcome.reconciliation
    if rec is None:
        return {}
    return {
        "expected_total_usd": float(rec.expected.total_usd),
        "drift_total_usd": float(rec.total_drift_usd),
        "drift_pools": len(rec.drifted),
        "drift": MetadataValue.md(drift_markdown(outcome.day, rec)),
    }


def _run_drift(outcomes: list[DayOutcome]) -> dict[str, "RawMetadataValue"]:
    """The run's drifted days in one place (each day's details are on its partition)."""
    days = [(o.day, o.reconciliation) for o in outcomes if o.reconciliation is not None]
    if not days:
        return {}
    return {
        "run_drift_by_day": MetadataValue.json(
            {str(d): str(r.total_drift_usd) for d, r in days if r.drifted}
        )
    }


def _reproduction_text(outcomes: list[DayOutcome], policy: str, matched: list[bool]) -> str:
    if policy == "fresh":
        return f"fresh snapshots taken for {len(outcomes)} day(s): results reflect today's parameters and lists"
    if not matched:
        return "first run of these days: snapshots written"
    bad = [str(o.day) for o in outcomes if o.hash_matched is False]
    text = f"reproduced {len(matched)} day(s) from stored snapshots: {len(matched) - len(bad)} hashes matched"
    if bad:
        text += f", MISMATCH on {', '.join(bad[:10])}"
    return text
