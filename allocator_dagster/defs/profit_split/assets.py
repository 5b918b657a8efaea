"""The profit-split assets: the day's platform metrics, a reviewable proposal, the distribution.

The proposal asset only ever *proposes* (or approves through the opt-in policy); the split used
by the distribution is the one in force, which changes only through a review.
"""

# No `from __future__ import annotations`: Dagster checks the context annotation's object.
from dataclasses import replace
from decimal import Decimal

import dagster as dg
from dagster import AssetExecutionContext

from allocator_dagster.defs.partitions import partition_day
from allocator_dagster.defs.profit_split.partitions import GROUP, PARTITIONS
from allocator_dagster.defs.resources import DatabaseResource, ProfitSplitConfig
from allocator_dagster.profit_split.distribution import distribute, distribution_moment
from allocator_dagster.profit_split.metrics import PlatformMetrics, sample_metrics
from allocator_dagster.profit_split.policy import AUTO_APPROVE_REVIEWER, read_signals
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
    if profit_split_config.metrics_source == "database":
        metrics = store.read_platform_metrics(engine, day, current)
    else:
        metrics = sample_metrics(
            day, profit_split_config.sample_scenario, current.split, current.proposal_id
        )
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
            "split_in_force_proposal_id": current.proposal_id,
        },
    )


def _propose(context, engine, metrics, current, profit_split_config):
    """Make, validate and store a new proposal; apply the opt-in auto-approve policy."""
    proposer = profit_split_config.make_proposer()
    proposal = proposer.propose(metrics)
    if proposal.fallback_reason:
        context.log.warning(proposal.fallback_reason)
    stored = store.store_proposal(
        engine,
        proposal,
        proposal_date=metrics.metric_date,
        proposed_by=profit_split_config.proposed_by(proposal),
        input_metrics=metrics.to_json(),
        bounds=proposer.bounds,
        current=current.split,
    )
    policy = profit_split_config.auto_approve_policy()
    # The policy sees the proposal with the warnings validation found when it was stored.
    decision = policy.decide(replace(proposal, warnings=stored.warnings), current.split)
    if decision.approve:
        try:
            stored = store.review_proposal(
                engine,
                stored.proposal_id,
                approve=True,
                by=AUTO_APPROVE_REVIEWER,
                notes=decision.reason,
            )
        except store.ReviewError as exc:  # reviewed by someone else in the meantime
            context.log.warning(f"auto-approval of {stored.proposal_id} not applied: {exc}")
    return stored, decision.reason


@dg.asset(
    partitions_def=PARTITIONS,
    group_name=GROUP,
    description="A proposed split with reasoning and confidence, validated and stored as "
    "'proposed' in profit_allocation_log (approved only by a review or the opt-in policy).",
)
def profit_split_proposal(
    context: AssetExecutionContext,
    platform_metrics: PlatformMetrics,
    database: DatabaseResource,
    profit_split_config: ProfitSplitConfig,
) -> dg.Output[int]:
    engine = database.engine()
    current = store.ensure_active_split(engine)
    metrics = platform_metrics
    if metrics.current_proposal_id != current.proposal_id:
        context.log.info(
            f"The split in force changed since the metrics were read (proposal "
            f"{metrics.current_proposal_id} -> {current.proposal_id}); proposing against the new one."
        )
        metrics = metrics.with_current_split(current.split, current.proposal_id)
    existing = store.open_proposal_for(engine, metrics.metric_date)
    if existing is not None:
        # re-materialising the day: its proposal is still awaiting review, so it is not repeated
        stored = existing
        decision_reason = f"reused open proposal {existing.proposal_id} of {metrics.metric_date}"
    else:
        stored, decision_reason = _propose(context, engine, metrics, current, profit_split_config)
    context.log.info(
        f"proposal {stored.proposal_id} ({stored.status}): {stored.split.label()}; {decision_reason}"
    )
    return dg.Output(
        stored.proposal_id,
        metadata={
            "proposal_id": stored.proposal_id,
            "status": str(stored.status),  # Dagster metadata takes plain str, not enums
            "proposer": str(stored.proposer),
            "proposed_by": stored.proposed_by,
            "split": split_table(stored.split, current.split),
            "should_rebalance": stored.should_rebalance,
            "confidence": float(stored.confidence),
            "largest_change_points": float(stored.split.max_change_from(current.split)),
            "reasoning": dg.MetadataValue.md(stored.reasoning),
            "warnings": dg.MetadataValue.md(
                "\n".join(f"- {w}" for w in stored.warnings) if stored.warnings else "none"
            ),
            "fallback_reason": stored.fallback_reason or "none",
            "auto_approve": decision_reason,
            "review": f"allocator proposals review {stored.proposal_id} --approve|--reject "
            "--by NAME --notes TEXT",
        },
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
    realised = None
    if profit_split_config.profit_source == "realised_yield":
        realised = store.realised_yield(engine, day)
        if realised is None:
            notes.append(
                f"No ledger for both {day} and the next day: used the configured profit "
                f"({profit_split_config.default_profit_usd} USD)."
            )
    if realised is None:
        profit, source = profit_split_config.default_profit(), "configured"
    elif realised < 0:
        profit, source = Decimal("0.00"), "realised_yield"
        notes.append(f"Realised yield was {realised} USD (a loss): nothing to distribute.")
    else:
        profit, source = realised, "realised_yield"
    store.ensure_active_split(engine)
    moment = distribution_moment(day, store.utc_now())
    in_force = store.split_in_force(engine, moment)
    if in_force is None:
        raise dg.Failure(f"no split was in force at {moment.isoformat()}")
    amounts = distribute(profit, in_force.split)
    store.write_distribution(
        engine,
        day,
        proposal_id=in_force.proposal_id,
        profit_usd=profit,
        split=in_force.split,
        amounts=amounts,
        profit_source=source,
    )
    return dg.Output(
        {category: str(amount) for category, amount in amounts.items()},
        metadata={
            "profit_usd": float(profit),
            "profit_source": source,
            "realised_yield_usd": float(realised) if realised is not None else None,
            "notes": " ".join(notes) or "none",
            "split_proposal_id": in_force.proposal_id,
            "split_in_force_at": moment.isoformat(),
            "distribution": split_table(in_force.split, amounts=amounts),
            **{f"{category}_usd": float(amount) for category, amount in amounts.items()},
        },
    )
