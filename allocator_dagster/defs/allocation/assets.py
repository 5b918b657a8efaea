"""The daily allocation chain as software-defined assets.

`pool_daily_metrics` -> `balances` -> `allocation_parameters` -> `solver_output` -> `asset_allocations`.
The last four are one non-subsettable step: day D's balances follow from day D-1's allocation
(paper trading), which Dagster can only express as a self-dependency of `asset_allocations`.
A range of days runs in one run, in date order (single-run backfill policy).
"""

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    asset,
    multi_asset,
)
from pydantic import Field

if TYPE_CHECKING:  # what Dagster accepts as a metadata value (it has no public name)
    from dagster._core.definitions.metadata import RawMetadataValue

from allocator_dagster.daily_allocation import DayOutcome, run_day
from allocator_dagster.defs.allocation.partitions import CHAIN_POOL, GROUP, daily_partitions
from allocator_dagster.defs.partitions import partition_days
from allocator_dagster.defs.resources import (
    AllocationResource,
    DatabaseResource,
    PoolSourceResource,
)
from allocator_dagster.money import round_usd
from allocator_dagster.reporting import (
    allocation_chart_markdown,
    allocation_markdown,
    binding_limits_markdown,
    decision_markdown,
    drift_markdown,
    top_pools_markdown,
)
from allocator_dagster.runtime import frozen_heap


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
    rejection_lines: list[str] = []
    last = None
    with frozen_heap():
        for day in days:
            result = pool_source.ingest(engine, day)
            rows += result.stored_rows
            lines = []
            for r in result.rejections:
                rejected[r.reason.split(":")[0]] += 1
                line = f"row {r.row_number} (pool {r.pool_id}): {r.reason}"
                if len(rejection_lines) < 20:
                    rejection_lines.append(f"- {day} {line}")
                lines.append(line)
            if lines:  # one log entry per day, not one per rejected row
                context.log.warning(f"{day}: rejected " + "; rejected ".join(lines))
            last = result
    metadata: dict[str, RawMetadataValue] = {
        "days": len(days),
        "rows": rows,
        "rejected_rows": sum(rejected.values()),
        "source": pool_source.source,
        "rejections": MetadataValue.md("\n".join(rejection_lines) or "none"),
    }
    if last is not None:
        metadata["top_pools"] = MetadataValue.md(top_pools_markdown(last.universe))
        metadata["dagster/row_count"] = len(last.universe)
    return MaterializeResult(metadata=metadata)


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
    with frozen_heap():
        for day in days:
            outcome = run_day(
                engine,
                day,
                settings,
                snapshot_policy=config.snapshot,
                force_reasons=force or None,
                successor_in_run=day != days[-1],
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
            if report.status != "optimal":
                context.log.warning(f"{day}: no new allocation; " + "; ".join(report.reasons))
            # the summary needs no pool frames: do not hold a range's worth of them in memory
            outcomes.append(replace(outcome, universe=outcome.universe.iloc[:0]))
    yield from _results(outcomes, config.snapshot)


def _results(outcomes: list[DayOutcome], policy: str) -> Iterator[MaterializeResult]:
    last = outcomes[-1]
    report = last.report
    single = len(outcomes) == 1
    decisions = Counter(str(o.report.decision) for o in outcomes)
    matched = [o.hash_matched for o in outcomes if o.hash_matched is not None]
    span: dict[str, RawMetadataValue] = {
        "days": len(outcomes),
        "first_day": str(outcomes[0].day),
        "last_day": str(last.day),
    }
    yield MaterializeResult(
        asset_key=AssetKey("balances"),
        metadata={
            **span,
            "total_usd": float(last.holdings.total_usd),
            "idle_usd": float(last.holdings.idle_usd),
            "positions": len(last.holdings.held()),
            **_reconciliation_metadata(outcomes),
        },
    )
    snap = last.snapshot
    yield MaterializeResult(
        asset_key=AssetKey("allocation_parameters"),
        metadata={
            **span,
            "snapshot_policy": policy,
            "snapshot_id": snap.snapshot_id,
            "snapshot_used": last.snapshot_used,
            "snapshots_reused": sum(o.snapshot_used == "stored" for o in outcomes),
            "inputs_match_snapshot": all(o.inputs_match_snapshot for o in outcomes),
            "snapshot_hash": snap.snapshot_hash,
            "metrics_hash": snap.metrics_hash,
            "balances_hash": snap.balances_hash,
            "code_version": snap.code_version,
            "solver": snap.solver_versions.get("backend", ""),
            "lists": MetadataValue.json(snap.lists.model_dump(mode="json")),
            "parameters": MetadataValue.json(snap.parameters.model_dump(mode="json")),
        },
    )
    yield MaterializeResult(
        asset_key=AssetKey("solver_output"),
        metadata={
            **span,
            "status": str(report.status),  # Dagster metadata takes plain str, not enums
            "decision": str(report.decision),
            "decisions": MetadataValue.json(dict(decisions)),
            "why": MetadataValue.md(decision_markdown(report)),
            "objective_usd_per_day": report.objective_usd_per_day,
            "binding_limits": MetadataValue.md(binding_limits_markdown(report)),
            "model_treatment": MetadataValue.md(
                "\n".join(f"- {e.part}: {e.treatment}" for e in report.exactness)
            ),
            "solve_seconds": round(sum(o.report.solve_seconds for o in outcomes), 3),
        },
    )
    allocation_meta: dict[str, RawMetadataValue] = {
        **span,
        "decision": str(report.decision),
        "status": str(report.status),  # Dagster metadata takes plain str, not enums
        "why": MetadataValue.md(decision_markdown(report)),
        "total_usd": float(report.total_usd),
        "expected_daily_yield_usd": round_usd(report.daily_yield_usd),
        "costs_usd": round_usd(report.costs_usd),
        "objective_usd_per_day": round_usd(report.objective_usd_per_day),
        "result_hash": report.result_hash,
        "reproduction": MetadataValue.md(_reproduction_text(outcomes, policy, matched)),
    }
    if single or report.status == "optimal":
        allocation_meta["allocation"] = MetadataValue.md(allocation_markdown(report))
        allocation_meta["chart"] = MetadataValue.md(allocation_chart_markdown(report))
        allocation_meta["binding_limits"] = MetadataValue.md(binding_limits_markdown(report))
    yield MaterializeResult(asset_key=AssetKey("asset_allocations"), metadata=allocation_meta)


def _reconciliation_metadata(outcomes: list[DayOutcome]) -> dict[str, float | int | MetadataValue]:
    """Observed (imported) holdings against yesterday's plan: the last day per pool, the range
    in total. Empty on paper, where the holdings are the plan's by construction."""
    days = [(o.day, o.reconciliation) for o in outcomes if o.reconciliation is not None]
    if not days:
        return {}
    day, last = days[-1]
    return {
        "expected_total_usd": float(last.expected.total_usd),
        "drift_total_usd": float(last.total_drift_usd),
        "drift_pools": len(last.drifted),
        "drift": MetadataValue.md(drift_markdown(day, last)),
        "drift_by_day": MetadataValue.json(
            {str(d): str(r.total_drift_usd) for d, r in days if r.drifted}
        ),
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
