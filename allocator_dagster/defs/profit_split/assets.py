"""The profit-split assets: the day's platform metrics, a reviewable proposal, the distribution.

The proposal asset only ever *proposes* (or approves through the opt-in policy); the split used
by the distribution is the one in force, which changes only through a review.
"""

# No `from __future__ import annotations`: Dagster checks the context annotation's object.
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from allocator_dagster.allocation_history import HISTORY_DAYS
from allocator_dagster.charts import png_markdown, split_history_png
from allocator_dagster.day_payouts import DayInputError, day_payout
from allocator_dagster.defs.partitions import partition_day
from allocator_dagster.defs.profit_split.partitions import GROUP, PARTITIONS
from allocator_dagster.defs.resources import DatabaseResource, ProfitSplitConfig
from allocator_dagster.profit_split.daily import propose_day, proposer_name, read_metrics
from allocator_dagster.profit_split.distribution import distribute, distribution_moment
from allocator_dagster.profit_split.metrics import PlatformMetrics
from allocator_dagster.profit_split.policy import read_signals
from allocator_dagster.profit_split.split import CATEGORIES, CATEGORY_LABELS, Split, fmt_pct
from allocator_dagster.storage import profit_split as store


def split_table(
    proposed: Split, current: Split | None = None, amounts: dict[str, Decimal] | None = None
) -> dg.MetadataValue:
    """A markdown table a reviewer reads: category, in force, proposed, change (and amounts)."""
    header = ["Category"]
    header += ["In force %", "Proposed %", "Change (points)"] if current else ["Split %"]
    header += ["Amount USD"] if amounts else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for category in CATEGORIES:
        cells = [CATEGORY_LABELS[category]]
        value = getattr(proposed, category)
        if current:
            before = getattr(current, category)
            cells += [fmt_pct(before), fmt_pct(value), f"{value - before:+.2f}"]
        else:
            cells.append(fmt_pct(value))
        if amounts:
            cells.append(str(amounts[category]))
        lines.append("| " + " | ".join(cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


@dg.asset(
    partitions_def=PARTITIONS,
    group_name=GROUP,
    description="Engagement, token performance, DAO treasury, 7-day community growth and the "
    "split in force, for one day (sample data by default, the metrics tables in production).",
)
def platform_metrics(
    context: AssetExecutionContext,
    database: DatabaseResource,
    profit_split_config: ProfitSplitConfig,
) -> dg.Output[PlatformMetrics]:
    engine = database.engine()
    day = partition_day(context)
    current = store.ensure_active_split(engine)
    try:
        metrics = read_metrics(
            engine,
            day,
            current,
            profit_split_config.metrics_source,
            profit_split_config.sample_scenario,
        )
    except store.MetricsUnavailable as exc:
        raise dg.Failure(description=str(exc)) from None
    signals = read_signals(metrics)
    return dg.Output(
        metrics,
        metadata={
            "source": metrics.source,
            "scenario": metrics.scenario or "n/a",
            "engagement_score": float(metrics.engagement.engagement_score),
            "wallet_connections": metrics.engagement.wallet_connections,
            "trades": metrics.engagement.trades,
            "page_views": metrics.engagement.page_views,
            "price_trend_pct_7d": float(metrics.token.price_trend_pct_7d),
            "holder_growth_pct_7d": float(metrics.token.holder_growth_pct_7d),
            "volume_usd": float(metrics.token.volume_usd),
            "community_growth_pct_7d": float(metrics.community.growth_pct_7d),
            "dao_treasury_usd": float(metrics.treasury.balance_usd),
            "dao_runway_months": (
                float(signals.runway_months) if signals.runway_months is not None else None
            ),
            "growth_signal": float(signals.growth),
            "split_in_force": split_table(metrics.current_split),
            "split_in_force_id": str(current.id),
        },
    )


def proposal_metadata(
    stored: store.StoredProposal, approvals: tuple[str, ...], required: int | None = None
) -> dict[str, Any]:
    """What the UI shows of a stored proposal: also recorded as an observation after a review."""
    return {
        "proposal_id": str(stored.id),
        "status": str(stored.status),  # Dagster metadata takes plain str, not enums
        "in_force": stored.in_force,
        "proposed_by": str(stored.proposed_by),
        "proposer": f"{stored.proposer} ({stored.proposer_name})",
        "split": stored.split.label(),
        "approvals": ", ".join(approvals) or "none",
        **({"approvals_required": required} if required is not None else {}),
        "reviewed_by": stored.reviewed_by or "",
        "review_notes": stored.review_notes or "",
        "effective_from": stored.effective_from.isoformat() if stored.effective_from else "",
        "effective_until": stored.effective_until.isoformat() if stored.effective_until else "",
    }


@dg.asset(
    partitions_def=PARTITIONS,
    group_name=GROUP,
    description="The day's answer, decided once: a proposed split with reasoning and confidence, "
    "validated and stored as 'proposed' in profit_allocation_log for review (or approved by "
    "the opt-in policy), or 'maintain' (keep the split in force), which needs no review.",
)
def profit_split_proposal(
    context: AssetExecutionContext,
    platform_metrics: PlatformMetrics,
    database: DatabaseResource,
    profit_split_config: ProfitSplitConfig,
) -> dg.Output[dict[str, str | None]]:
    engine = database.engine()
    day = platform_metrics.metric_date
    config = profit_split_config

    def read(in_force: store.StoredProposal) -> PlatformMetrics:
        if platform_metrics.current_proposal_id == str(in_force.id):
            return platform_metrics
        context.log.info(
            f"The split in force changed since the metrics were read "
            f"({platform_metrics.current_proposal_id} -> {in_force.id}); proposing against it."
        )
        return platform_metrics.with_current_split(in_force.split, str(in_force.id))

    outcome = propose_day(
        engine,
        day,
        proposer=config.make_proposer(),
        read=read,
        name=lambda proposal: proposer_name(proposal, config.llm_model),
        auto_approve=config.auto_approve_policy(),
        review_policy=config.review_policy(),
        on_fallback=context.log.warning,
    )
    record, in_force, stored = outcome.record, outcome.in_force, outcome.proposal
    context.log.info(
        f"{day}: {record.outcome}"
        + (f", proposal {stored.id} ({stored.status}) {stored.split.label()}" if stored else "")
        + f"; {outcome.auto_approve}"
    )
    metadata: dict[str, Any] = {
        "outcome": record.outcome,
        "decided_at": record.decided_at.isoformat(),
        "reused": not record.created,
        "split_in_force_id": str(in_force.id),
        "confidence": float(record.confidence),
        "reasoning": dg.MetadataValue.md(record.reasoning),
        "fallback_reason": record.fallback_reason or "none",
        "auto_approve": outcome.auto_approve,
    }
    if stored is not None:
        approvals = store.approvals_of(engine, stored.id)
        metadata.update(proposal_metadata(stored, approvals))
        metadata["split"] = split_table(stored.split, in_force.split)
        metadata["largest_change_points"] = float(stored.split.max_change_from(in_force.split))
        metadata["warnings"] = dg.MetadataValue.md(
            "\n".join(f"- {w}" for w in stored.warnings) if stored.warnings else "none"
        )
        if stored.status == "proposed":
            metadata["review"] = (
                f"allocator proposals review {stored.id} --approve|--reject --by NAME --notes TEXT"
            )
    else:
        metadata["split"] = split_table(in_force.split)
    return dg.Output(
        {"outcome": record.outcome, "proposal_id": str(stored.id) if stored else None},
        metadata=metadata,
    )


@dg.asset(
    partitions_def=PARTITIONS,
    group_name=GROUP,
    deps=[profit_split_proposal],
    description="The day's profit per wallet under the split in force, in exact cents that add "
    "up to the total; written to profit_distributions (the day's rows are replaced).",
)
def profit_distribution(
    context: AssetExecutionContext,
    database: DatabaseResource,
    profit_split_config: ProfitSplitConfig,
) -> dg.Output[dict[str, str]]:
    engine = database.engine()
    day = partition_day(context)
    notes: list[str] = []
    if profit_split_config.profit_source == "realised_yield":
        try:  # what the allocation paid out of the treasury for the day: decided once, there
            payout = day_payout(engine, day)
        except DayInputError as exc:
            raise dg.Failure(description=f"the distribution of {day} waits: {exc}") from None
        realised: Decimal | None = payout.profit_usd
        profit, source, split = (
            max(payout.profit_usd, Decimal("0.00")),
            "realised_yield",
            payout.split,
        )
        split_id, amounts = uuid.UUID(payout.split_id), dict(payout.amounts)
        split_at = "recorded with the allocation of the day"
        if payout.profit_usd < 0:
            notes.append(
                f"Realised profit was {payout.profit_usd} USD (a loss): nothing to distribute."
            )
    else:  # an explicit opt-in for demos: nothing leaves the treasury
        realised, profit, source = None, profit_split_config.default_profit(), "configured"
        notes.append(
            f"Configured demo profit ({profit} USD): not the treasury's, nothing was paid out of it."
        )
        store.ensure_active_split(engine)
        moment = distribution_moment(day, store.utc_now())
        in_force = store.split_in_force(engine, moment)
        if in_force is None:
            raise dg.Failure(f"no split was in force at {moment.isoformat()}")
        split, split_id, split_at = in_force.split, in_force.id, moment.isoformat()
        amounts = distribute(profit, split)
    store.write_distribution(
        engine,
        day,
        proposal_id=split_id,
        profit_usd=profit,
        split=split,
        amounts=amounts,
        profit_source=source,
    )
    history = store.split_history(engine, day - timedelta(days=HISTORY_DAYS - 1), day)
    chart = split_history_png(
        [(d, {c: float(p) for c, p in used.items()}) for d, used in history],
        {c: float(p) for c, p in split.as_dict().items()},
        CATEGORY_LABELS,
    )
    return dg.Output(
        {category: str(amount) for category, amount in amounts.items()},
        metadata={
            "profit_usd": float(profit),
            "profit_source": source,
            "realised_yield_usd": float(realised) if realised is not None else None,
            "notes": " ".join(notes) or "none",
            "split_id": str(split_id),
            "split_in_force_at": split_at,
            "distribution": split_table(split, amounts=amounts),
            # one chart per run: the profit split runs one day per run, where a person looks
            "split_chart": dg.MetadataValue.md(
                png_markdown(chart, f"split in force on {day} and the split of each day before")
            ),
            **{f"{category}_usd": float(amount) for category, amount in amounts.items()},
        },
    )
