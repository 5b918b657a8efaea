"""profit_allocation_log as the specification defines it; the transparency log; reviews per person.

- ids become UUIDs; the old integer id is kept in `legacy_id` and every reference is mapped
  (profit_distributions.proposal_id, and the new `based_on_id` from the proposal's inputs);
- `created_at` -> `timestamp`, `effective_to` -> `effective_until`; a 'superseded' split
  becomes 'active' with its `effective_until` (how the specification keeps replaced splits);
- `proposed_by` takes the specification's values (llm -> ai, rules and seed -> system,
  manual -> manual); the old value (the proposer's name) moves to `proposer_name`;
- open "maintain" proposals (they asked to keep the split in force) are closed as rejected by
  the system with that reason: a maintain answer no longer waits for a review;
- each day's first automatic proposal becomes that day's row of `profit_split_days`;
- new tables `profit_proposal_reviews` and `protocol_activity` (append-only: a trigger refuses
  UPDATE and DELETE).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)
PCT = sa.Numeric(asdecimal=True, decimal_return_scale=2)
CONF = sa.Numeric(asdecimal=True, decimal_return_scale=3)
CATEGORIES = ("reinvestment", "dao", "lucky", "creator")
PROPOSED_BY = {"llm": "ai", "rules": "system", "seed": "system", "manual": "manual"}
MAINTAIN_NOTE = (
    "closed by migration 0004: a maintain proposal (it keeps the split in force); maintain "
    "answers are recorded without a review since then"
)
APPEND_ONLY_MESSAGE = "protocol_activity is append-only: UPDATE and DELETE are refused"
APPEND_ONLY_DDL = {
    "postgresql": (
        "CREATE FUNCTION protocol_activity_append_only() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n    RAISE EXCEPTION USING MESSAGE =\n"
        f"        '{APPEND_ONLY_MESSAGE} (' || TG_OP || ' refused)';\nEND;\n$$",
        "CREATE TRIGGER protocol_activity_append_only BEFORE UPDATE OR DELETE ON protocol_activity"
        "\n    FOR EACH ROW EXECUTE FUNCTION protocol_activity_append_only()",
    ),
    "sqlite": tuple(
        f"CREATE TRIGGER protocol_activity_no_{op_.lower()} BEFORE {op_} ON protocol_activity\n"
        f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE} ({op_} refused)'); END"
        for op_ in ("UPDATE", "DELETE")
    ),
}


def _old_tables() -> tuple[sa.Table, sa.Table]:
    """The two tables as revision 0002 created them (read in upgrade, rebuilt in downgrade)."""
    md = sa.MetaData()
    log = sa.Table(
        "profit_allocation_log",
        md,
        sa.Column("proposal_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("proposal_date", sa.Date, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("proposer", sa.String(16), nullable=False),
        sa.Column("proposed_by", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        *(sa.Column(f"{c}_pct", sa.Numeric(5, 2), nullable=False) for c in CATEGORIES),
        sa.Column("confidence", sa.Numeric(4, 3), nullable=False),
        sa.Column("should_rebalance", sa.Boolean, nullable=False),
        sa.Column("reasoning", sa.Text, nullable=False),
        sa.Column("warnings", JSON, nullable=False),
        sa.Column("input_metrics", JSON, nullable=False),
        sa.Column("fallback_reason", sa.Text),
        sa.Column("reviewed_by", sa.String(128)),
        sa.Column("reviewed_at", TS),
        sa.Column("review_notes", sa.Text),
        sa.Column("effective_from", TS),
        sa.Column("effective_to", TS),
    )
    distributions = sa.Table(
        "profit_distributions",
        md,
        sa.Column("distribution_date", sa.Date, primary_key=True),
        sa.Column("category", sa.String(16), primary_key=True),
        sa.Column("proposal_id", sa.Integer, nullable=False),
        sa.Column("profit_usd", sa.Numeric(20, 2), nullable=False),
        sa.Column("pct", sa.Numeric(5, 2), nullable=False),
        sa.Column("amount_usd", sa.Numeric(20, 2), nullable=False),
        sa.Column("profit_source", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    return log, distributions


def _new_tables() -> dict[str, sa.Table]:
    """Lightweight handles on the new tables, for the rows this migration writes."""
    md = sa.MetaData()
    log = sa.Table(
        "profit_allocation_log",
        md,
        sa.Column("id", sa.Uuid),
        sa.Column("timestamp", TS),
        sa.Column("status", sa.Text),
        sa.Column("proposed_by", sa.Text),
        *(sa.Column(f"{c}_pct", PCT) for c in CATEGORIES),
        sa.Column("reasoning", sa.Text),
        sa.Column("confidence", CONF),
        sa.Column("input_metrics", JSON),
        sa.Column("reviewed_at", TS),
        sa.Column("reviewed_by", sa.Text),
        sa.Column("review_notes", sa.Text),
        sa.Column("effective_from", TS),
        sa.Column("effective_until", TS),
        sa.Column("proposal_date", sa.Date),
        sa.Column("proposer", sa.Text),
        sa.Column("proposer_name", sa.Text),
        sa.Column("should_rebalance", sa.Boolean),
        sa.Column("warnings", JSON),
        sa.Column("fallback_reason", sa.Text),
        sa.Column("based_on_id", sa.Uuid),
        sa.Column("legacy_id", sa.Integer),
    )
    days = sa.Table(
        "profit_split_days",
        md,
        sa.Column("proposal_date", sa.Date),
        sa.Column("outcome", sa.Text),
        sa.Column("proposal_id", sa.Uuid),
        sa.Column("in_force_id", sa.Uuid),
        sa.Column("proposer", sa.Text),
        sa.Column("confidence", CONF),
        sa.Column("reasoning", sa.Text),
        sa.Column("fallback_reason", sa.Text),
        sa.Column("input_metrics", JSON),
        sa.Column("decided_at", TS),
    )
    distributions = sa.Table(
        "profit_distributions",
        md,
        sa.Column("distribution_date", sa.Date),
        sa.Column("category", sa.String(16)),
        sa.Column("proposal_id", sa.Uuid),
        sa.Column("profit_usd", sa.Numeric(20, 2)),
        sa.Column("pct", sa.Numeric(5, 2)),
        sa.Column("amount_usd", sa.Numeric(20, 2)),
        sa.Column("profit_source", sa.String(32)),
        sa.Column("created_at", TS),
    )
    return {"log": log, "days": days, "distributions": distributions}


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _plain(value: Decimal) -> Decimal:
    """80.00 -> 80, 77.10 -> 77.1: the specification's `split` text reads '80/15/3/2'."""
    value = Decimal(value)
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _legacy_reference(metrics: Any) -> int | None:
    raw = metrics.get("current_proposal_id") if isinstance(metrics, dict) else None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.isdigit():
        return int(raw)
    return None


def _create_new_schema(dialect: str) -> None:
    op.create_table(
        "profit_allocation_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("timestamp", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("proposed_by", sa.Text(), nullable=False),
        *(sa.Column(f"{c}_pct", sa.Numeric(), nullable=False) for c in CATEGORIES),
        sa.Column("reasoning", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Numeric(), nullable=False),
        sa.Column("input_metrics", JSON, nullable=False),
        sa.Column("reviewed_at", TS, nullable=True),
        sa.Column("reviewed_by", sa.Text(), nullable=True),
        sa.Column("review_notes", sa.Text(), nullable=True),
        sa.Column("effective_from", TS, nullable=True),
        sa.Column("effective_until", TS, nullable=True),
        sa.Column("proposal_date", sa.Date(), nullable=False),
        sa.Column("proposer", sa.Text(), nullable=False),
        sa.Column("proposer_name", sa.Text(), nullable=False),
        sa.Column("should_rebalance", sa.Boolean(), nullable=False),
        sa.Column("warnings", JSON, nullable=False),
        sa.Column("fallback_reason", sa.Text(), nullable=True),
        sa.Column("based_on_id", sa.Uuid(), nullable=True),
        sa.Column("legacy_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('proposed', 'active', 'rejected')",
            name=op.f("ck_profit_allocation_log_status_values"),
        ),
        sa.CheckConstraint(
            "proposed_by IN ('ai', 'manual', 'system')",
            name=op.f("ck_profit_allocation_log_proposed_by_values"),
        ),
        *(
            sa.CheckConstraint(
                f"{c}_pct >= 0 AND {c}_pct <= 100",
                name=op.f(f"ck_profit_allocation_log_{c}_pct_range"),
            )
            for c in CATEGORIES
        ),
        sa.CheckConstraint(
            "confidence >= 0 AND confidence <= 1",
            name=op.f("ck_profit_allocation_log_confidence_range"),
        ),
        sa.CheckConstraint(
            "reinvestment_pct + dao_pct + lucky_pct + creator_pct = 100"
            if dialect == "postgresql"
            else "ROUND(reinvestment_pct + dao_pct + lucky_pct + creator_pct, 2) = 100",
            name=op.f("valid_total"),
        ),
        sa.CheckConstraint(
            "proposer IN ('rules', 'llm', 'manual', 'seed')",
            name=op.f("ck_profit_allocation_log_proposer_values"),
        ),
        sa.CheckConstraint(
            "status <> 'active' OR effective_from IS NOT NULL",
            name=op.f("ck_profit_allocation_log_active_has_effective_from"),
        ),
        sa.CheckConstraint(
            "effective_until IS NULL OR (effective_from IS NOT NULL AND effective_until >= effective_from)",
            name=op.f("ck_profit_allocation_log_effective_range"),
        ),
        sa.ForeignKeyConstraint(
            ["based_on_id"],
            ["profit_allocation_log.id"],
            name=op.f("fk_profit_allocation_log_based_on_id_profit_allocation_log"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profit_allocation_log")),
        sa.UniqueConstraint("legacy_id", name=op.f("uq_profit_allocation_log_legacy_id")),
    )
    op.create_index(
        op.f("ix_profit_allocation_log_proposal_date"), "profit_allocation_log", ["proposal_date"]
    )
    op.create_index("ix_profit_allocation_log_timestamp", "profit_allocation_log", ["timestamp"])
    op.create_index(
        "uq_profit_allocation_log_in_force",
        "profit_allocation_log",
        ["status"],
        unique=True,
        postgresql_where=sa.text("status = 'active' AND effective_until IS NULL"),
        sqlite_where=sa.text("status = 'active' AND effective_until IS NULL"),
    )
    op.create_table(
        "profit_proposal_reviews",
        sa.Column("proposal_id", sa.Uuid(), nullable=False),
        sa.Column("reviewer", sa.Text(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("reviewed_at", TS, nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "decision IN ('approve', 'reject')",
            name=op.f("ck_profit_proposal_reviews_decision_values"),
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["profit_allocation_log.id"],
            name=op.f("fk_profit_proposal_reviews_proposal_id_profit_allocation_log"),
        ),
        sa.PrimaryKeyConstraint("proposal_id", "reviewer", name=op.f("pk_profit_proposal_reviews")),
    )
    op.create_table(
        "profit_split_days",
        sa.Column("proposal_date", sa.Date(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("proposal_id", sa.Uuid(), nullable=True),
        sa.Column("in_force_id", sa.Uuid(), nullable=True),
        sa.Column("proposer", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Numeric(), nullable=False),
        sa.Column("reasoning", sa.Text(), nullable=False),
        sa.Column("fallback_reason", sa.Text(), nullable=True),
        sa.Column("input_metrics", JSON, nullable=False),
        sa.Column("decided_at", TS, nullable=False),
        sa.CheckConstraint(
            "outcome IN ('proposed', 'maintain')", name=op.f("ck_profit_split_days_outcome_values")
        ),
        sa.CheckConstraint(
            "outcome = 'maintain' OR proposal_id IS NOT NULL",
            name=op.f("ck_profit_split_days_proposed_has_id"),
        ),
        sa.CheckConstraint(
            "proposer IN ('rules', 'llm', 'manual', 'seed')",
            name=op.f("ck_profit_split_days_proposer_values"),
        ),
        sa.ForeignKeyConstraint(
            ["in_force_id"],
            ["profit_allocation_log.id"],
            name=op.f("fk_profit_split_days_in_force_id_profit_allocation_log"),
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["profit_allocation_log.id"],
            name=op.f("fk_profit_split_days_proposal_id_profit_allocation_log"),
        ),
        sa.PrimaryKeyConstraint("proposal_date", name=op.f("pk_profit_split_days")),
    )
    op.create_table(
        "profit_distributions",
        sa.Column("distribution_date", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("proposal_id", sa.Uuid(), nullable=False),
        sa.Column("profit_usd", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("pct", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("amount_usd", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("profit_source", sa.String(length=32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint(
            "category IN ('reinvestment', 'dao', 'lucky', 'creator')",
            name=op.f("ck_profit_distributions_category_enum"),
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["profit_allocation_log.id"],
            name=op.f("fk_profit_distributions_proposal_id_profit_allocation_log"),
        ),
        sa.PrimaryKeyConstraint(
            "distribution_date", "category", name=op.f("pk_profit_distributions")
        ),
    )
    op.create_table(
        "protocol_activity",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("subject_type", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.CheckConstraint(
            "event_type IN ('proposal_stored', 'validation_warnings', 'proposal_maintained', "
            "'review', 'proposal_rejected', 'auto_approval', 'activation', 'deactivation', "
            "'distribution', 'list_change', 'forced_reallocation')",
            name=op.f("ck_protocol_activity_event_type_values"),
        ),
        sa.CheckConstraint(
            "subject_type IN ('proposal', 'day', 'distribution', 'list_change', 'allocation')",
            name=op.f("ck_protocol_activity_subject_type_values"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_protocol_activity")),
    )
    op.create_index(op.f("ix_protocol_activity_occurred_at"), "protocol_activity", ["occurred_at"])
    for statement in APPEND_ONLY_DDL.get(dialect, ()):
        op.execute(statement)


def _close_stale(
    log_rows: list[dict[str, Any]], based_on: list[dict[str, Any]], now: datetime
) -> None:
    """Open proposals made against a split that is no longer in force are closed, as every
    activation does since this revision (before it, approving one replaced the newer split)."""
    in_force = next(
        (r for r in log_rows if r["status"] == "active" and r["effective_until"] is None), None
    )
    if in_force is None:
        return
    made_against = {b["row_id"]: b["ref"] for b in based_on}
    for row in log_rows:
        against = made_against.get(row["id"])
        if row["status"] != "proposed" or against == in_force["id"]:
            continue
        row.update(
            status="rejected",
            reviewed_at=now,
            reviewed_by="system",
            review_notes=(
                f"closed by migration 0004: made against split {against or 'unknown'}, and split "
                f"{in_force['id']} is in force since {in_force['effective_from'].isoformat()}"
            ),
        )


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    old_log, old_distributions = _old_tables()
    rows = [
        dict(r) for r in bind.execute(sa.select(old_log).order_by(old_log.c.proposal_id)).mappings()
    ]
    distributions = [dict(r) for r in bind.execute(sa.select(old_distributions)).mappings()]

    op.drop_table("profit_distributions")
    op.drop_index("uq_profit_allocation_log_one_active", table_name="profit_allocation_log")
    op.drop_index(
        op.f("ix_profit_allocation_log_proposal_date"), table_name="profit_allocation_log"
    )
    op.drop_table("profit_allocation_log")
    _create_new_schema(dialect)

    now = datetime.now(UTC)
    ids = {row["proposal_id"]: uuid.uuid4() for row in rows}
    new = _new_tables()
    log_rows: list[dict[str, Any]] = []
    based_on: list[dict[str, Any]] = []
    day_rows: dict[Any, dict[str, Any]] = {}
    for row in rows:
        status = "active" if row["status"] == "superseded" else row["status"]
        review = {
            "reviewed_at": _utc(row["reviewed_at"]),
            "reviewed_by": row["reviewed_by"],
            "review_notes": row["review_notes"],
        }
        automatic = row["proposer"] in ("rules", "llm")
        if status == "proposed" and automatic and not row["should_rebalance"]:
            status = "rejected"
            review = {"reviewed_at": now, "reviewed_by": "system", "review_notes": MAINTAIN_NOTE}
        new_id = ids[row["proposal_id"]]
        log_rows.append(
            {
                "id": new_id,
                "timestamp": _utc(row["created_at"]),
                "status": status,
                "proposed_by": PROPOSED_BY[row["proposer"]],
                **{f"{c}_pct": _plain(row[f"{c}_pct"]) for c in CATEGORIES},
                "reasoning": row["reasoning"],
                "confidence": _plain(row["confidence"]),
                "input_metrics": row["input_metrics"],
                **review,
                "effective_from": _utc(row["effective_from"]),
                "effective_until": _utc(row["effective_to"]),
                "proposal_date": row["proposal_date"],
                "proposer": row["proposer"],
                "proposer_name": row["proposed_by"],
                "should_rebalance": bool(row["should_rebalance"]),
                "warnings": row["warnings"],
                "fallback_reason": row["fallback_reason"],
                "based_on_id": None,
                "legacy_id": row["proposal_id"],
            }
        )
        reference = ids.get(_legacy_reference(row["input_metrics"]))
        if reference is not None:
            based_on.append({"row_id": new_id, "ref": reference})
        if automatic and row["proposal_date"] not in day_rows:
            day_rows[row["proposal_date"]] = {
                "proposal_date": row["proposal_date"],
                "outcome": "proposed" if row["should_rebalance"] else "maintain",
                "proposal_id": new_id,
                "in_force_id": reference,
                "proposer": row["proposer"],
                "confidence": _plain(row["confidence"]),
                "reasoning": row["reasoning"],
                "fallback_reason": row["fallback_reason"],
                "input_metrics": row["input_metrics"],
                "decided_at": _utc(row["created_at"]),
            }
    _close_stale(log_rows, based_on, now)
    log = new["log"]
    if log_rows:
        bind.execute(log.insert(), log_rows)
    if based_on:  # after every row exists: the references point at earlier and later rows
        bind.execute(
            log.update()
            .where(log.c.id == sa.bindparam("row_id"))
            .values(based_on_id=sa.bindparam("ref")),
            based_on,
        )
    if day_rows:
        bind.execute(new["days"].insert(), list(day_rows.values()))
    if distributions:
        for row in distributions:
            row["proposal_id"] = ids[row["proposal_id"]]
        bind.execute(new["distributions"].insert(), distributions)


def downgrade() -> None:
    bind = op.get_bind()
    new = _new_tables()
    log = new["log"]
    rows = [
        dict(r)
        for r in bind.execute(
            sa.select(log).order_by(log.c.legacy_id.is_(None), log.c.legacy_id, log.c.timestamp)
        ).mappings()
    ]
    distributions = [dict(r) for r in bind.execute(sa.select(new["distributions"])).mappings()]
    next_id = max((r["legacy_id"] or 0 for r in rows), default=0)
    ids: dict[uuid.UUID, int] = {}
    for row in rows:
        if row["legacy_id"] is None:
            next_id += 1
            ids[row["id"]] = next_id
        else:
            ids[row["id"]] = row["legacy_id"]

    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER protocol_activity_append_only ON protocol_activity")
        op.execute("DROP FUNCTION protocol_activity_append_only()")
    op.drop_table("protocol_activity")
    op.drop_table("profit_distributions")
    op.drop_table("profit_split_days")
    op.drop_table("profit_proposal_reviews")
    op.drop_table("profit_allocation_log")

    old_log, old_distributions = _old_tables()
    op.create_table(
        "profit_allocation_log",
        sa.Column("proposal_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("proposal_date", sa.Date(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("proposer", sa.String(length=16), nullable=False),
        sa.Column("proposed_by", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        *(
            sa.Column(f"{c}_pct", sa.Numeric(precision=5, scale=2), nullable=False)
            for c in CATEGORIES
        ),
        sa.Column("confidence", sa.Numeric(precision=4, scale=3), nullable=False),
        sa.Column("should_rebalance", sa.Boolean(), nullable=False),
        sa.Column("reasoning", sa.Text(), nullable=False),
        sa.Column("warnings", JSON, nullable=False),
        sa.Column("input_metrics", JSON, nullable=False),
        sa.Column("fallback_reason", sa.Text(), nullable=True),
        sa.Column("reviewed_by", sa.String(length=128), nullable=True),
        sa.Column("reviewed_at", TS, nullable=True),
        sa.Column("review_notes", sa.Text(), nullable=True),
        sa.Column("effective_from", TS, nullable=True),
        sa.Column("effective_to", TS, nullable=True),
        sa.CheckConstraint(
            "proposer IN ('rules', 'llm', 'manual', 'seed')",
            name=op.f("ck_profit_allocation_log_proposer_enum"),
        ),
        sa.CheckConstraint(
            "status IN ('proposed', 'rejected', 'active', 'superseded')",
            name=op.f("ck_profit_allocation_log_status_enum"),
        ),
        sa.CheckConstraint(
            "status NOT IN ('active', 'superseded') OR effective_from IS NOT NULL",
            name=op.f("ck_profit_allocation_log_active_has_effective_from"),
        ),
        sa.CheckConstraint(
            "confidence >= 0 AND confidence <= 1",
            name=op.f("ck_profit_allocation_log_confidence_range"),
        ),
        sa.CheckConstraint(
            "ROUND(reinvestment_pct + dao_pct + lucky_pct + creator_pct, 2) = 100",
            name=op.f("ck_profit_allocation_log_pct_sum_100"),
        ),
        sa.CheckConstraint(
            "reinvestment_pct BETWEEN 0 AND 100 AND dao_pct BETWEEN 0 AND 100 AND lucky_pct BETWEEN 0 AND 100 AND creator_pct BETWEEN 0 AND 100",
            name=op.f("ck_profit_allocation_log_pct_range"),
        ),
        sa.PrimaryKeyConstraint("proposal_id", name=op.f("pk_profit_allocation_log")),
    )
    op.create_index(
        op.f("ix_profit_allocation_log_proposal_date"), "profit_allocation_log", ["proposal_date"]
    )
    op.create_index(
        "uq_profit_allocation_log_one_active",
        "profit_allocation_log",
        ["status"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
        sqlite_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "profit_distributions",
        sa.Column("distribution_date", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("profit_usd", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("pct", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("amount_usd", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("profit_source", sa.String(length=32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint(
            "category IN ('reinvestment', 'dao', 'lucky', 'creator')",
            name=op.f("ck_profit_distributions_category_enum"),
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["profit_allocation_log.proposal_id"],
            name=op.f("fk_profit_distributions_proposal_id_profit_allocation_log"),
        ),
        sa.PrimaryKeyConstraint(
            "distribution_date", "category", name=op.f("pk_profit_distributions")
        ),
    )
    old_rows = [
        {
            "proposal_id": ids[row["id"]],
            "proposal_date": row["proposal_date"],
            "created_at": _utc(row["timestamp"]),
            "proposer": row["proposer"],
            "proposed_by": row["proposer_name"][:128],
            "status": "superseded"
            if row["status"] == "active" and row["effective_until"] is not None
            else row["status"],
            **{f"{c}_pct": row[f"{c}_pct"] for c in CATEGORIES},
            "confidence": row["confidence"],
            "should_rebalance": row["should_rebalance"],
            "reasoning": row["reasoning"],
            "warnings": row["warnings"],
            "input_metrics": row["input_metrics"],
            "fallback_reason": row["fallback_reason"],
            "reviewed_by": (row["reviewed_by"] or None) and row["reviewed_by"][:128],
            "reviewed_at": _utc(row["reviewed_at"]),
            "review_notes": row["review_notes"],
            "effective_from": _utc(row["effective_from"]),
            "effective_to": _utc(row["effective_until"]),
        }
        for row in rows
    ]
    if old_rows:
        bind.execute(old_log.insert(), old_rows)
        if bind.dialect.name == "postgresql":  # the serial continues after the highest id
            op.execute(
                "SELECT setval(pg_get_serial_sequence('profit_allocation_log', 'proposal_id'), "
                "(SELECT MAX(proposal_id) FROM profit_allocation_log))"
            )
    if distributions:
        for row in distributions:
            row["proposal_id"] = ids[row["proposal_id"]]
        bind.execute(old_distributions.insert(), distributions)
