"""Reads and writes of the profit-split tables: proposals, their review, metrics, distributions.

Nothing in `profit_allocation_log` is ever deleted: a proposal is stored as 'proposed' with the
metrics it was made from, and a review only moves it to 'rejected' or 'active' (superseding the
previous active split). Reviews are serialised: on PostgreSQL by row locks (SELECT ... FOR UPDATE
on the proposal and on the active split) with a retry when the one-active unique index reports a
concurrent activation; on SQLite by BEGIN IMMEDIATE, which takes the database's write lock first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from allocator_dagster.names import ActorNameError, clean_name, same_actor
from allocator_dagster.profit_split.metrics import (
    CommunityGrowth,
    DaoTreasury,
    EngagementMetrics,
    PlatformMetrics,
    TokenPerformance,
)
from allocator_dagster.profit_split.policy import DEFAULT_BOUNDS, CategoryBounds, Proposal, Proposer
from allocator_dagster.profit_split.split import CATEGORIES, SEED_SPLIT, Split
from allocator_dagster.profit_split.validation import ensure_valid
from allocator_dagster.storage.db import write_transaction
from allocator_dagster.storage.schema import (
    community_growth_daily,
    daily_ledger,
    dao_treasury_daily,
    platform_engagement_daily,
    profit_allocation_log,
    profit_distributions,
    token_performance_daily,
)

log = profit_allocation_log


class ProposalStatus(StrEnum):
    """A proposal's place in its lifecycle: proposed, then active or rejected; active, then
    superseded by the next approval. At most one is active (a partial unique index)."""

    PROPOSED = "proposed"
    REJECTED = "rejected"
    ACTIVE = "active"
    SUPERSEDED = "superseded"


STATUSES: tuple[str, ...] = tuple(s.value for s in ProposalStatus)  # for messages and choices
IN_FORCE_ONCE = (ProposalStatus.ACTIVE, ProposalStatus.SUPERSEDED)  # approved at some point
SEED_BY = "seed"
# The fixed 80/15/3/2 split was in force before this graph existed: from the first partition on.
SEED_EFFECTIVE_FROM = datetime(2025, 1, 1, tzinfo=UTC)
SEED_REASONING = "The platform's fixed split (80/15/3/2), in force before any reviewed proposal."
REVIEW_ATTEMPTS = 5


class ProposalNotFound(LookupError):
    """No proposal with that id."""


class ReviewError(RuntimeError):
    """A review the rules forbid: not 'proposed' any more, or approving one's own proposal."""


class MetricsUnavailable(LookupError):
    """The metrics tables have no row for the day; the message names the tables."""


def utc_now() -> datetime:
    """Aware UTC now: every timestamp in these tables is UTC."""
    return datetime.now(UTC)


def _utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything stored here is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json_ready(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return value


@dataclass(frozen=True)
class StoredProposal:
    """One row of profit_allocation_log."""

    proposal_id: int
    proposal_date: date
    created_at: datetime
    proposer: Proposer
    proposed_by: str
    status: ProposalStatus
    split: Split
    confidence: Decimal
    should_rebalance: bool
    reasoning: str
    warnings: tuple[str, ...]
    input_metrics: dict[str, Any]
    fallback_reason: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_notes: str | None
    effective_from: datetime | None
    effective_to: datetime | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (Decimals and times as strings), for the CLI and job outputs."""
        data = {k: v for k, v in vars(self).items() if k != "split"}
        data["split"] = self.split.to_json()
        return _json_ready(data)


def _from_row(row: sa.Row) -> StoredProposal:
    m = row._mapping
    return StoredProposal(
        proposal_id=m["proposal_id"],
        proposal_date=m["proposal_date"],
        created_at=_utc(m["created_at"]),
        proposer=Proposer(m["proposer"]),
        proposed_by=m["proposed_by"],
        status=ProposalStatus(m["status"]),
        split=Split(**{c: m[f"{c}_pct"] for c in CATEGORIES}),
        confidence=m["confidence"],
        should_rebalance=bool(m["should_rebalance"]),
        reasoning=m["reasoning"],
        warnings=tuple(m["warnings"] or ()),
        input_metrics=dict(m["input_metrics"] or {}),
        fallback_reason=m["fallback_reason"],
        reviewed_by=m["reviewed_by"],
        reviewed_at=_utc(m["reviewed_at"]),
        review_notes=m["review_notes"],
        effective_from=_utc(m["effective_from"]),
        effective_to=_utc(m["effective_to"]),
    )


def _split_values(split: Split) -> dict[str, Decimal]:
    return {f"{c}_pct": v for c, v in split.as_dict().items()}


def _is_one_active_violation(exc: sa.exc.IntegrityError) -> bool:
    message = str(exc.orig)
    return "uq_profit_allocation_log_one_active" in message or (
        "UNIQUE constraint failed: profit_allocation_log.status" in message
    )


# ------------------------------------------------------------------------------ proposals


def store_proposal(
    engine: sa.Engine,
    proposal: Proposal,
    *,
    proposal_date: date,
    proposed_by: str,
    input_metrics: Mapping[str, Any],
    bounds: CategoryBounds = DEFAULT_BOUNDS,
    current: Split | None = None,
    created_at: datetime | None = None,
) -> StoredProposal:
    """Validate `proposal` and store it as 'proposed'; invalid proposals are never stored."""
    if proposal.proposer == Proposer.SEED:
        raise ValueError("the seed split is stored by ensure_active_split, not as a proposal")
    proposed_by = clean_name(proposed_by, "proposed_by (the proposer's name)")
    proposal = ensure_valid(proposal, bounds=bounds, current=current)
    values = {
        "proposal_date": proposal_date,
        "created_at": created_at or utc_now(),
        "proposer": proposal.proposer,
        "proposed_by": proposed_by,
        "status": ProposalStatus.PROPOSED,
        **_split_values(proposal.split),
        "confidence": proposal.confidence,
        "should_rebalance": proposal.should_rebalance,
        "reasoning": proposal.reasoning,
        "warnings": list(proposal.warnings),
        "input_metrics": _json_ready(dict(input_metrics)),
        "fallback_reason": proposal.fallback_reason,
    }
    with engine.begin() as conn:
        proposal_id = conn.execute(log.insert().values(**values)).inserted_primary_key[0]
    return get_proposal(engine, proposal_id)


def open_proposal_for(engine: sa.Engine, proposal_date: date) -> StoredProposal | None:
    """The day's proposal still awaiting review, if any (re-runs reuse it instead of adding one)."""
    with engine.connect() as conn:
        proposal_id = conn.execute(
            sa.select(log.c.proposal_id)
            .where(log.c.proposal_date == proposal_date, log.c.status == ProposalStatus.PROPOSED)
            .order_by(log.c.proposal_id.desc())
            .limit(1)
        ).scalar_one_or_none()
    return None if proposal_id is None else get_proposal(engine, proposal_id)


def get_proposal(engine: sa.Engine, proposal_id: int) -> StoredProposal:
    """One proposal; ProposalNotFound if the id does not exist."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(log).where(log.c.proposal_id == proposal_id)).first()
    if row is None:
        raise ProposalNotFound(f"proposal {proposal_id} does not exist")
    return _from_row(row)


def list_proposals(
    engine: sa.Engine, *, status: str | None = None, limit: int = 50
) -> list[StoredProposal]:
    """Newest first, optionally only one status."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    query = sa.select(log).order_by(log.c.proposal_id.desc()).limit(limit)
    if status is not None:
        query = query.where(log.c.status == status)
    with engine.connect() as conn:
        return [_from_row(row) for row in conn.execute(query)]


def active_split(engine: sa.Engine) -> StoredProposal | None:
    """The split in force now (None only before the seed exists)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(log).where(log.c.status == ProposalStatus.ACTIVE)).first()
    return None if row is None else _from_row(row)


def ensure_active_split(engine: sa.Engine, *, now: datetime | None = None) -> StoredProposal:
    """The active split; seeds the fixed 80/15/3/2 split (proposer 'seed') when none is active."""
    current = active_split(engine)
    if current is not None:
        return current
    now = now or utc_now()
    values = {
        "proposal_date": min(now, SEED_EFFECTIVE_FROM).date(),
        "created_at": now,
        "proposer": Proposer.SEED,
        "proposed_by": SEED_BY,
        "status": ProposalStatus.ACTIVE,
        **_split_values(SEED_SPLIT),
        "confidence": Decimal(1),
        "should_rebalance": False,
        "reasoning": SEED_REASONING,
        "warnings": [],
        "input_metrics": {},
        "effective_from": min(now, SEED_EFFECTIVE_FROM),
    }
    try:
        with write_transaction(engine) as conn:
            # Only when no split was ever active: after a history exists, nothing is re-seeded.
            exists = conn.execute(
                sa.select(log.c.proposal_id).where(log.c.status.in_(IN_FORCE_ONCE))
            ).first()
            if exists is None:
                conn.execute(log.insert().values(**values))
    except sa.exc.IntegrityError as exc:  # another process seeded at the same moment
        if not _is_one_active_violation(exc):
            raise
    current = active_split(engine)
    if current is None:
        raise ReviewError("splits were active before but none is active now; check the log")
    return current


def split_in_force(engine: sa.Engine, at: datetime) -> StoredProposal | None:
    """The split whose effective range [from, to) contains `at`."""
    at = at.astimezone(UTC)
    query = (
        sa.select(log)
        .where(
            log.c.status.in_(IN_FORCE_ONCE),
            log.c.effective_from <= at,
            sa.or_(log.c.effective_to.is_(None), log.c.effective_to > at),
        )
        .order_by(log.c.effective_from.desc(), log.c.proposal_id.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _from_row(row)


def review_proposal(
    engine: sa.Engine,
    proposal_id: int,
    *,
    approve: bool,
    by: str,
    notes: str = "",
    now: datetime | None = None,
) -> StoredProposal:
    """Approve (activate, superseding the active split) or reject a 'proposed' proposal, once.

    Safe under concurrent reviews: exactly one split is active afterwards, and the superseded
    split's effective_to equals its successor's effective_from.
    """
    try:
        reviewer = clean_name(by, "the reviewer's name")
    except ActorNameError as exc:
        raise ReviewError(str(exc)) from None
    for attempt in range(REVIEW_ATTEMPTS):
        try:
            with write_transaction(engine) as conn:
                _review_locked(conn, proposal_id, approve, reviewer, notes, now or utc_now())
            break
        except sa.exc.IntegrityError as exc:
            # A concurrent approval activated another split between our lock on the old active
            # row and our update (PostgreSQL re-checks a locked row after the other commit and
            # it no longer matches status = 'active'). Retry: we then see and supersede it.
            if not _is_one_active_violation(exc) or attempt == REVIEW_ATTEMPTS - 1:
                raise
    return get_proposal(engine, proposal_id)


def _review_locked(
    conn: sa.Connection, proposal_id: int, approve: bool, reviewer: str, notes: str, now: datetime
) -> None:
    row = conn.execute(
        sa.select(log).where(log.c.proposal_id == proposal_id).with_for_update()
    ).first()
    if row is None:
        raise ProposalNotFound(f"proposal {proposal_id} does not exist")
    if row.status != ProposalStatus.PROPOSED:
        raise ReviewError(
            f"proposal {proposal_id} is {row.status}; only a proposed proposal can be reviewed, once"
        )
    if approve and same_actor(row.proposed_by, reviewer):
        raise ReviewError(f"{reviewer} proposed {proposal_id} and cannot approve it")
    review = {"reviewed_by": reviewer, "reviewed_at": now, "review_notes": notes or None}
    if not approve:
        conn.execute(
            log.update()
            .where(log.c.proposal_id == proposal_id)
            .values(status=ProposalStatus.REJECTED, **review)
        )
        return
    previous = conn.execute(
        sa.select(log.c.proposal_id, log.c.effective_from)
        .where(log.c.status == ProposalStatus.ACTIVE)
        .with_for_update()
    ).first()
    effective_from = now
    if previous is not None:
        # Never before the previous split started, even if the clock stepped back.
        effective_from = max(now, _utc(previous.effective_from))
        closed = conn.execute(
            log.update()
            .where(log.c.proposal_id == previous.proposal_id, log.c.status == ProposalStatus.ACTIVE)
            .values(status=ProposalStatus.SUPERSEDED, effective_to=effective_from)
        )
        if closed.rowcount != 1:
            raise ReviewError("the active split changed during the review; try again")
    conn.execute(
        log.update()
        .where(log.c.proposal_id == proposal_id)
        .values(status=ProposalStatus.ACTIVE, effective_from=effective_from, **review)
    )


# ------------------------------------------------------------------------------ metrics


def _dec(value: Any) -> Decimal:
    """Floats from REAL columns as the shortest decimal that prints the same (85.3 -> 85.3)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def read_platform_metrics(engine: sa.Engine, day: date, current: StoredProposal) -> PlatformMetrics:
    """The day's rows of the four metrics tables, with the split in force."""
    tables = {
        "engagement": platform_engagement_daily,
        "token": token_performance_daily,
        "treasury": dao_treasury_daily,
        "community": community_growth_daily,
    }
    rows: dict[str, Mapping[str, Any]] = {}
    with engine.connect() as conn:
        for name, table in tables.items():
            row = conn.execute(sa.select(table).where(table.c.metric_date == day)).first()
            if row is not None:
                rows[name] = row._mapping
    missing = [tables[name].name for name in tables if name not in rows]
    if missing:
        raise MetricsUnavailable(f"no metrics for {day.isoformat()} in {', '.join(missing)}")
    e, t, d, c = (rows[k] for k in ("engagement", "token", "treasury", "community"))
    return PlatformMetrics(
        metric_date=day,
        engagement=EngagementMetrics(
            wallet_connections=e["wallet_connections"],
            trades=e["trades"],
            page_views=e["page_views"],
            engagement_score=_dec(e["engagement_score"]),
        ),
        token=TokenPerformance(
            price_usd=_dec(t["price_usd"]),
            price_trend_pct_7d=_dec(t["price_trend_pct_7d"]),
            volume_usd=_dec(t["volume_usd"]),
            holders=t["holders"],
            holder_growth_pct_7d=_dec(t["holder_growth_pct_7d"]),
        ),
        treasury=DaoTreasury(
            balance_usd=_dec(d["balance_usd"]), monthly_burn_usd=_dec(d["monthly_burn_usd"])
        ),
        community=CommunityGrowth(
            members=c["members"],
            new_members_7d=c["new_members_7d"],
            growth_pct_7d=_dec(c["growth_pct_7d"]),
        ),
        current_split=current.split,
        current_proposal_id=current.proposal_id,
        source="database",
    )


def write_platform_metrics(engine: sa.Engine, metrics: PlatformMetrics) -> None:
    """Replace the day's rows of the four metrics tables (loading and tests)."""
    day = metrics.metric_date
    e, t, d, c = metrics.engagement, metrics.token, metrics.treasury, metrics.community
    rows = {
        platform_engagement_daily: {
            "wallet_connections": e.wallet_connections,
            "trades": e.trades,
            "page_views": e.page_views,
            "engagement_score": float(e.engagement_score),
        },
        token_performance_daily: {
            "price_usd": float(t.price_usd),
            "price_trend_pct_7d": float(t.price_trend_pct_7d),
            "volume_usd": float(t.volume_usd),
            "holders": t.holders,
            "holder_growth_pct_7d": float(t.holder_growth_pct_7d),
        },
        dao_treasury_daily: {"balance_usd": d.balance_usd, "monthly_burn_usd": d.monthly_burn_usd},
        community_growth_daily: {
            "members": c.members,
            "new_members_7d": c.new_members_7d,
            "growth_pct_7d": float(c.growth_pct_7d),
        },
    }
    with engine.begin() as conn:
        for table, values in rows.items():
            conn.execute(table.delete().where(table.c.metric_date == day))
            conn.execute(table.insert().values(metric_date=day, **values))


# ------------------------------------------------------------------------------ profit


def realised_yield(engine: sa.Engine, day: date) -> Decimal | None:
    """Ledger total on day+1 minus ledger total on `day`, or None unless both days are recorded."""
    next_day = day + timedelta(days=1)
    query = sa.select(daily_ledger.c.ledger_date, daily_ledger.c.amount_usd).where(
        daily_ledger.c.ledger_date.in_((day, next_day))
    )
    totals: dict[date, Decimal] = {}
    with engine.connect() as conn:
        for ledger_date, amount in conn.execute(query):
            # Summed here, in Decimal: SQLite would sum the REAL-stored amounts in binary.
            totals[ledger_date] = totals.get(ledger_date, Decimal(0)) + _dec(amount)
    if day not in totals or next_day not in totals:
        return None
    return totals[next_day] - totals[day]


def write_distribution(
    engine: sa.Engine,
    day: date,
    *,
    proposal_id: int,
    profit_usd: Decimal,
    split: Split,
    amounts: Mapping[str, Decimal],
    profit_source: str,
    created_at: datetime | None = None,
) -> None:
    """Replace the day's distribution (four rows) in one transaction."""
    if set(amounts) != set(CATEGORIES):
        raise ValueError(f"amounts must cover exactly {CATEGORIES}")
    if sum(amounts.values(), Decimal(0)) != profit_usd:
        raise ValueError("the amounts do not add up to the profit")
    created_at = created_at or utc_now()
    rows = [
        {
            "distribution_date": day,
            "category": category,
            "proposal_id": proposal_id,
            "profit_usd": profit_usd,
            "pct": getattr(split, category),
            "amount_usd": amounts[category],
            "profit_source": profit_source,
            "created_at": created_at,
        }
        for category in CATEGORIES
    ]
    with engine.begin() as conn:
        conn.execute(
            profit_distributions.delete().where(profit_distributions.c.distribution_date == day)
        )
        conn.execute(profit_distributions.insert(), rows)


def read_distribution(engine: sa.Engine, day: date) -> list[dict[str, Any]]:
    """The day's distribution rows in category order (empty if none)."""
    order = sa.case({c: i for i, c in enumerate(CATEGORIES)}, value=profit_distributions.c.category)
    query = (
        sa.select(profit_distributions)
        .where(profit_distributions.c.distribution_date == day)
        .order_by(order)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
