"""`allocator proposals`: list, inspect, review, propose, and analyze a day.

Reviewing here is the same operation as the Dagster review job, under the same policy (read
from the environment): only a 'proposed' proposal can be reviewed, nobody approves their own
proposal, a proposal made against a split no longer in force cannot be approved, and large
changes need several distinct approvals. Ids are UUIDs; any unique prefix of 4+ digits works,
and so does the integer id a proposal had before ids were UUIDs.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import click
import sqlalchemy as sa

from allocator_dagster.cli.options import database_url_option, fail
from allocator_dagster.profit_split.daily import (
    METRICS_SOURCES,
    MetricsSource,
    metrics_source_from_env,
    propose_day,
    proposer_name,
    read_metrics,
)
from allocator_dagster.profit_split.governance import PolicyError, ReviewPolicy
from allocator_dagster.profit_split.metrics import SCENARIOS
from allocator_dagster.profit_split.policy import Proposal, ProposalStatus, Proposer
from allocator_dagster.profit_split.split import CATEGORIES, Split
from allocator_dagster.profit_split.validation import ProposalValidationError
from allocator_dagster.storage import StorageError, get_engine
from allocator_dagster.storage import profit_split as store
from allocator_dagster.terminal import shown


def _engine(database_url: str | None) -> sa.Engine:
    try:
        return get_engine(database_url or None)
    except StorageError as exc:
        fail(exc)


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def _find(engine: sa.Engine, reference: str) -> store.StoredProposal:
    try:
        return store.find_proposal(engine, reference)
    except store.ProposalNotFound as exc:
        fail(exc)


def _policy() -> ReviewPolicy:
    try:
        return ReviewPolicy.from_env()
    except PolicyError as exc:
        fail(exc)


@click.group("proposals")
def command() -> None:
    """Profit-split proposals: list, show, review, propose one by hand, analyze a day."""


def _status(row: store.StoredProposal) -> str:
    if row.status == "active":
        return "in force" if row.in_force else "replaced"
    return row.status


@command.command("list")
@click.option("--status", type=click.Choice(store.STATUSES), help="Only this status.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@database_url_option
def list_command(database_url: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """Proposals, newest first ('active' rows show whether they are in force or were replaced)."""
    rows = store.list_proposals(_engine(database_url), status=status, limit=limit)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.to_json(), sort_keys=True))
        return
    if not rows:
        click.echo("no proposals" + (f" with status {status}" if status else ""))
        return
    click.echo(
        f"{'id':8}  {'date':10}  {'status':9}  {'by':6}  {'proposer':8}  {'split R/D/L/C':23}  "
        "conf   proposer -> reviewers"
    )
    for row in rows:
        click.echo(
            f"{row.id.hex[:8]}  {row.proposal_date.isoformat():10}  {_status(row):9}  "
            f"{row.proposed_by:6}  {row.proposer:8}  {row.split.label():23}  "
            f"{row.confidence:.3f}  {shown(row.proposer_name)}"
            + (f" -> {shown(row.reviewed_by)}" if row.reviewed_by else "")
        )


@command.command("show")
@click.argument("proposal_id")
@click.option("--json", "as_json", is_flag=True, help="The stored row as JSON.")
@database_url_option
def show_command(database_url: str | None, proposal_id: str, as_json: bool) -> None:
    """One proposal with its reasoning, warnings and reviews."""
    engine = _engine(database_url)
    row = _find(engine, proposal_id)
    approvals = store.approvals_of(engine, row.id)
    if as_json:
        click.echo(
            json.dumps({**row.to_json(), "approvals": list(approvals)}, indent=2, sort_keys=True)
        )
        return
    lines = [
        f"Proposal {row.id} for {row.proposal_date.isoformat()}: {_status(row)}",
        f"  proposed by {shown(row.proposer_name)} ({row.proposed_by}, {row.proposer}) at "
        f"{_when(row.timestamp)}",
        *(f"  {c:13} {getattr(row.split, c):>6} %" for c in CATEGORIES),
        f"  confidence {row.confidence}; rebalance: {'yes' if row.should_rebalance else 'no'}",
        f"  reasoning: {shown(row.reasoning)}",
        "  warnings: " + ("; ".join(shown(w) for w in row.warnings) if row.warnings else "none"),
    ]
    if row.fallback_reason:
        lines.append(f"  fallback: {shown(row.fallback_reason)}")
    if row.based_on_id is not None:
        lines.append(f"  proposed against split {row.based_on_id}")
    if row.legacy_id is not None:
        lines.append(f"  id before revision 0004: {row.legacy_id}")
    if approvals:
        lines.append(f"  approvals: {', '.join(shown(a) for a in approvals)}")
    if row.reviewed_by:
        lines.append(
            f"  reviewed by {shown(row.reviewed_by)} at {_when(row.reviewed_at)}"
            + (f": {shown(row.review_notes)}" if row.review_notes else "")
        )
    if row.effective_from:
        lines.append(
            f"  in force from {_when(row.effective_from)} until {_when(row.effective_until)}"
        )
    click.echo("\n".join(lines))


@command.command("review")
@click.argument("proposal_id")
@click.option("--approve/--reject", "approve", default=None, help="The decision (required).")
@click.option("--by", "by", required=True, help="The reviewer's name.")
@click.option("--notes", default="", help="Why; stored with the review.")
@database_url_option
def review_command(
    database_url: str | None, proposal_id: str, approve: bool | None, by: str, notes: str
) -> None:
    """Approve or reject a proposed split. It takes effect when it has the approvals it needs
    (ALLOCATOR_MULTISIG_THRESHOLD_PCT / ALLOCATOR_MULTISIG_APPROVALS / ALLOCATOR_REVIEWERS)."""
    from allocator_dagster.defs.profit_split.observations import (
        proposal_observations,
        report_to_instance,
    )

    if approve is None:
        raise click.UsageError("give --approve or --reject")
    engine = _engine(database_url)
    target = _find(engine, proposal_id)
    try:
        outcome = store.review_proposal(
            engine, target.id, approve=approve, by=by, notes=notes, policy=_policy()
        )
    except (store.ReviewError, store.ProposalNotFound) as exc:
        fail(exc)
    row = outcome.proposal
    if row.status == ProposalStatus.ACTIVE:
        click.echo(
            f"proposal {row.id} approved by {shown(row.reviewed_by)}: {row.split.label()} "
            f"is in force from {_when(row.effective_from)}"
        )
    elif row.status == "rejected":
        click.echo(f"proposal {row.id} rejected by {shown(row.reviewed_by)}")
    else:
        click.echo(
            f"proposal {row.id}: approval {len(outcome.approvals)} of {outcome.required} "
            f"recorded ({', '.join(shown(a) for a in outcome.approvals)}); it takes effect with "
            f"{outcome.required - len(outcome.approvals)} more"
        )
    for closed in outcome.closed:
        click.echo(f"closed as stale: proposal {closed.id} ({shown(closed.review_notes)})")
    where = report_to_instance(
        proposal_observations(engine, outcome.changed, reason=f"review by {by} (command line)")
    )
    if where:
        click.echo(f"the proposal asset's status is updated in the Dagster instance at {where}")


def _pct(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not a number") from None


@command.command("propose")
@click.option(
    "--reinvestment", required=True, help="Percentage reinvested in the treasury, e.g. 78.5."
)
@click.option("--dao", required=True, help="Percentage to the DAO treasury, e.g. 16.")
@click.option("--lucky", required=True, help="Percentage to the lucky lottery, e.g. 3.")
@click.option("--creator", required=True, help="Percentage to creator rewards, e.g. 2.5.")
@click.option("--by", "by", required=True, help="Who proposes (cannot approve it later).")
@click.option("--reasoning", required=True, help="Why this split.")
@click.option(
    "--confidence", default="1", show_default=True, help="How sure the proposer is, 0 to 1."
)
@click.option(
    "--date",
    "day",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="The day the proposal is for (default: today, UTC).",
)
@database_url_option
def propose_command(
    database_url: str | None,
    reinvestment: str,
    dao: str,
    lucky: str,
    creator: str,
    by: str,
    reasoning: str,
    confidence: str,
    day: datetime | None,
) -> None:
    """Store a manual proposal for review: the four percentages must add up to 100 and pass the
    same validation as any other proposal."""
    engine = _engine(database_url)
    current = store.ensure_active_split(engine)
    split = Split(_pct(reinvestment), _pct(dao), _pct(lucky), _pct(creator))
    proposal = Proposal(
        split=split,
        confidence=_pct(confidence),
        should_rebalance=split != current.split,
        reasoning=reasoning,
        proposer=Proposer.MANUAL,
    )
    try:
        row = store.store_proposal(
            engine,
            proposal,
            proposal_date=day.date() if day else datetime.now(UTC).date(),
            proposer_name=by,
            input_metrics={
                "current_split": current.split.to_json(),
                "current_proposal_id": str(current.id),
            },
            based_on=current,
        )
    except (ProposalValidationError, ValueError) as exc:
        fail(exc)
    click.echo(f"proposal {row.id} stored as proposed: {row.split.label()}")
    for warning in row.warnings:
        click.echo(f"warning: {shown(warning)}")


def _number(value: Decimal) -> int | float:
    """A JSON number with the decimal's digits (80 -> 80, 77.1 -> 77.1, 0.85 -> 0.85)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _allocation(split: Split) -> dict[str, int | float]:
    return {c: _number(v) for c, v in split.as_dict().items()}


@command.command("analyze")
@click.option(
    "--day",
    "day",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Default: yesterday (UTC).",
)
@click.option(
    "--metrics-source",
    type=click.Choice(METRICS_SOURCES),
    default=None,
    help="Default: ALLOCATOR_METRICS_SOURCE, else sample.",
)
@click.option(
    "--scenario", type=click.Choice(("auto", *SCENARIOS)), default="auto", show_default=True
)
@click.option(
    "--proposer",
    type=click.Choice(("rules", "llm")),
    default="rules",
    show_default=True,
    help="llm: ALLOCATOR_LLM_URL / _MODEL / _API_KEY, falling back to the rules.",
)
@click.option(
    "--format", "fmt", type=click.Choice(("json", "table")), default="table", show_default=True
)
@database_url_option
def analyze_command(
    database_url: str | None,
    day: datetime | None,
    metrics_source: MetricsSource | None,
    scenario: str,
    proposer: Literal["rules", "llm"],
    fmt: str,
) -> None:
    """Analyze a day and propose once (the profit rebalancer's call): a day already decided
    keeps its answer. --format json prints the specification's response."""
    from allocator_dagster.defs.resources import (
        LLM_API_KEY_ENV,
        LLM_MODEL_ENV,
        LLM_URL_ENV,
        ProfitSplitConfig,
    )

    engine = _engine(database_url)
    target = day.date() if day else datetime.now(UTC).date() - timedelta(days=1)
    try:
        source = metrics_source or metrics_source_from_env()
        config = ProfitSplitConfig(
            proposer=proposer,
            llm_url=os.environ.get(LLM_URL_ENV, ""),
            llm_model=os.environ.get(LLM_MODEL_ENV, ""),
            llm_api_key=os.environ.get(LLM_API_KEY_ENV, ""),
        )
        outcome = propose_day(
            engine,
            target,
            proposer=config.make_proposer(),
            read=lambda in_force: read_metrics(engine, target, in_force, source, scenario),
            name=lambda proposal: proposer_name(proposal, config.llm_model),
            review_policy=_policy(),
        )
    except (store.MetricsUnavailable, ProposalValidationError, ValueError) as exc:
        fail(exc)
    response = analysis_response(outcome.record, outcome.in_force, outcome.proposal)
    if fmt == "json":
        click.echo(json.dumps(response, indent=2))
        return
    suggested = "/".join(str(v) for v in response["suggested_allocation"].values())
    current = "/".join(str(v) for v in response["current_allocation"].values())
    click.echo(
        f"{target}: {'rebalance' if response['should_rebalance'] else 'maintain'} "
        f"{current} -> {suggested} (confidence {response['confidence']})"
        + (f"; proposal {response['proposal_id']}" if response["proposal_id"] else "")
        + ("" if outcome.record.created else " [decided before]")
    )
    click.echo(f"  {shown(response['reasoning'])}")
    click.echo(f"  auto-approve: {outcome.auto_approve}")


def analysis_response(
    record: store.DayRecord, in_force: store.StoredProposal, proposal: store.StoredProposal | None
) -> dict[str, Any]:
    """The specification's response: success, should_rebalance, current_allocation,
    suggested_allocation (reinvestment/dao/lucky/creator), reasoning, confidence, proposal_id."""
    suggested = proposal.split if proposal is not None else in_force.split
    return {
        "success": True,
        "should_rebalance": record.outcome == "proposed",
        "current_allocation": _allocation(in_force.split),
        "suggested_allocation": _allocation(suggested),
        "reasoning": record.reasoning,
        "confidence": _number(record.confidence),
        "proposal_id": str(proposal.id) if proposal is not None else None,
    }
