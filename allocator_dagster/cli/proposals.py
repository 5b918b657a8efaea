"""`allocator proposals`: list, inspect and review profit-split proposals.

Reviewing here is the same operation as the Dagster review job: only a 'proposed' proposal can
be reviewed, once, and nobody approves their own proposal.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import click
import sqlalchemy as sa

from allocator_dagster.profit_split.policy import Proposal, Proposer
from allocator_dagster.profit_split.split import CATEGORIES, Split
from allocator_dagster.profit_split.validation import ProposalValidationError
from allocator_dagster.storage import DATABASE_URL_ENV, StorageError, get_engine
from allocator_dagster.storage import profit_split as store
from allocator_dagster.terminal import shown


def _engine(ctx: click.Context) -> sa.Engine:
    try:
        return get_engine(ctx.obj or None)
    except StorageError as exc:
        raise click.ClickException(shown(exc, lines=True)) from None


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


@click.group("proposals")
@click.option(
    "--database-url",
    envvar=DATABASE_URL_ENV,
    default=None,
    help=f"SQLAlchemy URL (default: ${DATABASE_URL_ENV} or the embedded SQLite file).",
)
@click.pass_context
def command(ctx: click.Context, database_url: str | None) -> None:
    """Profit-split proposals: list, show, review (and propose one by hand)."""
    ctx.obj = database_url


@command.command("list")
@click.option("--status", type=click.Choice(store.STATUSES), help="Only this status.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@click.pass_context
def list_command(ctx: click.Context, status: str | None, limit: int, as_json: bool) -> None:
    """Proposals, newest first."""
    rows = store.list_proposals(_engine(ctx), status=status, limit=limit)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.to_json(), sort_keys=True))
        return
    if not rows:
        click.echo("no proposals" + (f" with status {status}" if status else ""))
        return
    header = (
        f"{'ID':>5}  {'date':10}  {'status':10}  {'proposer':8}  {'split R/D/L/C':23}  conf   by"
    )
    click.echo(header)
    for row in rows:
        click.echo(
            f"{row.proposal_id:>5}  {row.proposal_date.isoformat():10}  {row.status:10}  "
            f"{row.proposer:8}  {row.split.label():23}  {row.confidence:.3f}  {shown(row.proposed_by)}"
            + (f" -> {shown(row.reviewed_by)}" if row.reviewed_by else "")
        )


@command.command("show")
@click.argument("proposal_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="The stored row as JSON.")
@click.pass_context
def show_command(ctx: click.Context, proposal_id: int, as_json: bool) -> None:
    """One proposal with its reasoning, warnings and review."""
    try:
        row = store.get_proposal(_engine(ctx), proposal_id)
    except store.ProposalNotFound as exc:
        raise click.ClickException(shown(exc, lines=True)) from None
    if as_json:
        click.echo(json.dumps(row.to_json(), indent=2, sort_keys=True))
        return
    lines = [
        f"Proposal {row.proposal_id} for {row.proposal_date.isoformat()}: {row.status}",
        f"  proposed by {shown(row.proposed_by)} ({row.proposer}) at {_when(row.created_at)}",
        *(f"  {c:13} {getattr(row.split, c):>6} %" for c in CATEGORIES),
        f"  confidence {row.confidence}; rebalance: {'yes' if row.should_rebalance else 'no'}",
        f"  reasoning: {shown(row.reasoning)}",
        "  warnings: " + ("; ".join(shown(w) for w in row.warnings) if row.warnings else "none"),
    ]
    if row.fallback_reason:
        lines.append(f"  fallback: {shown(row.fallback_reason)}")
    based_on = row.input_metrics.get("current_proposal_id")
    if based_on is not None:
        lines.append(f"  proposed against the split of proposal {based_on}")
    if row.reviewed_by:
        lines.append(
            f"  reviewed by {shown(row.reviewed_by)} at {_when(row.reviewed_at)}"
            + (f": {shown(row.review_notes)}" if row.review_notes else "")
        )
    if row.effective_from:
        lines.append(f"  in force from {_when(row.effective_from)} to {_when(row.effective_to)}")
    click.echo("\n".join(lines))


@command.command("review")
@click.argument("proposal_id", type=int)
@click.option("--approve/--reject", "approve", default=None, help="The decision (required).")
@click.option("--by", "by", required=True, help="The reviewer's name.")
@click.option("--notes", default="", help="Why; stored with the review.")
@click.pass_context
def review_command(
    ctx: click.Context, proposal_id: int, approve: bool | None, by: str, notes: str
) -> None:
    """Approve (the split takes effect now) or reject a proposed split."""
    if approve is None:
        raise click.UsageError("give --approve or --reject")
    try:
        row = store.review_proposal(_engine(ctx), proposal_id, approve=approve, by=by, notes=notes)
    except (store.ReviewError, store.ProposalNotFound) as exc:
        raise click.ClickException(shown(exc, lines=True)) from None
    if row.status == store.ProposalStatus.ACTIVE:
        click.echo(
            f"proposal {row.proposal_id} approved by {shown(row.reviewed_by)}: {row.split.label()} "
            f"is in force from {_when(row.effective_from)}"
        )
    else:
        click.echo(f"proposal {row.proposal_id} rejected by {shown(row.reviewed_by)}")


def _pct(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not a number") from None


@command.command("propose")
@click.option("--reinvestment", required=True, help="Percentage, e.g. 78.5")
@click.option("--dao", required=True)
@click.option("--lucky", required=True)
@click.option("--creator", required=True)
@click.option("--by", "by", required=True, help="Who proposes (cannot approve it later).")
@click.option("--reasoning", required=True, help="Why this split.")
@click.option("--confidence", default="1", show_default=True)
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.pass_context
def propose_command(
    ctx: click.Context,
    reinvestment: str,
    dao: str,
    lucky: str,
    creator: str,
    by: str,
    reasoning: str,
    confidence: str,
    day: datetime | None,
) -> None:
    """Store a manual proposal (validated like any other) for review."""
    engine = _engine(ctx)
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
            proposed_by=by,
            input_metrics={
                "current_split": current.split.to_json(),
                "current_proposal_id": current.proposal_id,
            },
            current=current.split,
        )
    except (ProposalValidationError, ValueError) as exc:
        raise click.ClickException(shown(exc, lines=True)) from None
    click.echo(f"proposal {row.proposal_id} stored as proposed: {row.split.label()}")
    for warning in row.warnings:
        click.echo(f"warning: {shown(warning)}")
