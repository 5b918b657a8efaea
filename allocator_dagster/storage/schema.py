"""The one definition of the application schema (SQLAlchemy Core).

`sql/schema.sql` is this metadata rendered for PostgreSQL (`python -m allocator_dagster.storage.ddl`),
and the Alembic migrations in `storage/migrations/versions` build exactly this; tests prove both.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from allocator_dagster.profit_split.policy import ProposalStatus, ProposedBy, Proposer

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# JSON everywhere, JSONB on PostgreSQL (queryable snapshots and reports).
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# Money in exact cents; Decimal in Python.
Money = sa.Numeric(20, 2)
# Rates and forecasts: binary floats are fine, they are inputs to an optimiser, not ledger money.
Real = sa.Float(precision=53)
Timestamp = sa.DateTime(timezone=True)

pool_daily_metrics = sa.Table(
    "pool_daily_metrics",
    metadata,
    sa.Column("metric_date", sa.Date, primary_key=True),
    sa.Column("pool_id", sa.String(128), primary_key=True),
    sa.Column("chain", sa.String(64), nullable=False),
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("symbol", sa.String(256), nullable=False),
    sa.Column("underlying_tokens", JSONType, nullable=False),
    sa.Column("tvl_usd", Real, nullable=False),
    sa.Column("apy", Real),
    sa.Column("apy_base", Real),
    sa.Column("apy_reward", Real),
    sa.Column("apy_mean_30d", Real),
    sa.Column("stablecoin", sa.Boolean, nullable=False),
    sa.Column("il_risk", sa.String(16)),
    sa.Column("exposure", sa.String(16)),
    sa.Column("pool_meta", sa.String(256)),
    sa.Column("apy_forecast", Real),
    sa.Column("apy_base_forecast", Real),
    sa.Column("apy_reward_forecast", Real),
    sa.Column("tvl_forecast", Real),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("ingested_at", Timestamp, nullable=False),
    sa.CheckConstraint("tvl_usd >= 0", name="tvl_not_negative"),
)

# Each stored pool day's forecast inputs packed in one row (`storage.day_series`): derived from
# the day's `pool_daily_metrics` rows, rewritten with them, compared with them by the day checks.
pool_day_series = sa.Table(
    "pool_day_series",
    metadata,
    sa.Column("metric_date", sa.Date, primary_key=True),
    sa.Column("pools", sa.Integer, nullable=False),
    sa.Column("pool_ids", sa.LargeBinary, nullable=False),  # sorted, NUL-separated UTF-8
    # float64 little-endian, one per pool in the ids' order, NaN for NULL
    sa.Column("tvl_usd", sa.LargeBinary, nullable=False),
    sa.Column("apy", sa.LargeBinary, nullable=False),
    sa.Column("apy_base", sa.LargeBinary, nullable=False),
    sa.Column("apy_reward", sa.LargeBinary, nullable=False),
    sa.CheckConstraint("pools > 0", name="pools_positive"),
)

pool_rejections = sa.Table(
    "pool_rejections",
    metadata,
    sa.Column("metric_date", sa.Date, primary_key=True),
    sa.Column("row_number", sa.Integer, primary_key=True),
    sa.Column("pool_id", sa.String(128)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
)

daily_ledger = sa.Table(
    "daily_ledger",
    metadata,
    sa.Column("ledger_date", sa.Date, primary_key=True),
    # `idle_usd` is the cash row, as in HOLDINGS.csv.
    sa.Column("pool_id", sa.String(128), primary_key=True),
    sa.Column("amount_usd", Money, nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("recorded_at", Timestamp, nullable=False),
    sa.CheckConstraint("amount_usd >= 0", name="amount_not_negative"),
)


# Each import of a day's observed balances (`allocator balances import`): who, when, which file.
balance_imports = sa.Table(
    "balance_imports",
    metadata,
    sa.Column("import_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ledger_date", sa.Date, nullable=False, index=True),
    sa.Column("imported_by", sa.String(128), nullable=False),
    sa.Column("imported_at", Timestamp, nullable=False),
    sa.Column("source_file", sa.String(512), nullable=False),
    sa.Column("file_sha256", sa.String(64), nullable=False),
    sa.Column("positions", sa.Integer, nullable=False),
    sa.Column("total_usd", Money, nullable=False),
    sa.Column("replaced_source", sa.String(32)),
)


def _list_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("value", sa.String(256), primary_key=True),
        sa.Column("added_by", sa.String(128), nullable=False),
        sa.Column("added_at", Timestamp, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )


approved_tokens = _list_table("approved_tokens")
blacklisted_tokens = _list_table("blacklisted_tokens")
approved_protocols = _list_table("approved_protocols")
icebox_tokens = _list_table("icebox_tokens")
LIST_TABLES = {
    "approved_tokens": approved_tokens,
    "blacklisted_tokens": blacklisted_tokens,
    "approved_protocols": approved_protocols,
    "icebox_tokens": icebox_tokens,
}

dynamic_list_changes = sa.Table(
    "dynamic_list_changes",
    metadata,
    sa.Column("change_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("list_name", sa.String(32), nullable=False),
    sa.Column("action", sa.String(8), nullable=False),
    sa.Column("value", sa.String(256), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("changed_by", sa.String(128), nullable=False),
    sa.Column("changed_at", Timestamp, nullable=False),
    sa.CheckConstraint("action IN ('add', 'remove')", name="action_enum"),
    sa.CheckConstraint(
        "list_name IN ('approved_tokens', 'blacklisted_tokens', 'approved_protocols', 'icebox_tokens')",
        name="list_name_enum",
    ),
)

allocation_parameters = sa.Table(
    "allocation_parameters",
    metadata,
    sa.Column("snapshot_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("allocation_date", sa.Date, nullable=False, index=True),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("parameters", JSONType, nullable=False),
    sa.Column("dynamic_lists", JSONType, nullable=False),
    sa.Column("metrics_hash", sa.String(64), nullable=False),
    sa.Column("balances_hash", sa.String(64), nullable=False),
    sa.Column("code_version", sa.String(64), nullable=False),
    sa.Column("solver_versions", JSONType, nullable=False),
    sa.Column("snapshot_hash", sa.String(64), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.CheckConstraint("mode IN ('original', 'fresh')", name="mode_enum"),
)

asset_allocations = sa.Table(
    "asset_allocations",
    metadata,
    sa.Column("allocation_date", sa.Date, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("reasons", JSONType, nullable=False),
    sa.Column("total_usd", Money, nullable=False),
    sa.Column("expected_daily_yield_usd", Real, nullable=False),
    sa.Column("gas_cost_usd", Real, nullable=False),
    sa.Column("conversion_cost_usd", Real, nullable=False),
    sa.Column("objective_usd_per_day", Real, nullable=False),
    sa.Column("solver", sa.String(16), nullable=False),
    sa.Column(
        "snapshot_id",
        sa.Integer,
        sa.ForeignKey("allocation_parameters.snapshot_id"),
        nullable=False,
    ),
    sa.Column("result_hash", sa.String(64), nullable=False),
    sa.Column("report", JSONType, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.CheckConstraint(
        "status IN ('optimal', 'feasible', 'infeasible', 'failed')", name="status_enum"
    ),
    sa.CheckConstraint(
        "decision IN ('full', 'yield-only', 'forced', 'hold')", name="decision_enum"
    ),
)

asset_allocation_details = sa.Table(
    "asset_allocation_details",
    metadata,
    sa.Column(
        "allocation_date",
        sa.Date,
        sa.ForeignKey("asset_allocations.allocation_date", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("pool_id", sa.String(128), primary_key=True),
    sa.Column("chain", sa.String(64), nullable=False),
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("symbol", sa.String(256), nullable=False),
    sa.Column("tokens", JSONType, nullable=False),
    # NULL only for the exit of a pool that vanished from the data (its group is unknown)
    sa.Column("pool_group", sa.SmallInteger),
    sa.Column("amount_usd", Money, nullable=False),
    sa.Column("weight", Real, nullable=False),
    sa.Column("delta_usd", Money, nullable=False),
    sa.Column("apy_used", Real, nullable=False),
    sa.Column("expected_daily_yield_usd", Real, nullable=False),
    sa.Column("gas_cost_usd", Real, nullable=False),
    sa.Column("conversion_cost_usd", Real, nullable=False),
    sa.CheckConstraint("amount_usd >= 0", name="amount_not_negative"),
    sa.CheckConstraint("pool_group IN (1, 2, 3)", name="group_enum"),
)

# ---------------------------------------------------------------- profit split

PROFIT_CATEGORIES = ("reinvestment", "dao", "lucky", "creator")
# The specification's value sets (profit_allocation_log.status and .proposed_by) and this
# project's detail of who proposed (the rules proposer and the seed are 'system', the LLM 'ai').
SPLIT_STATUSES = tuple(s.value for s in ProposalStatus)
PROPOSED_BY_VALUES = tuple(p.value for p in ProposedBy)
PROPOSERS = tuple(p.value for p in Proposer)
# Exact NUMERIC as the specification has it; SQLite stores REAL, so the read scale is fixed.
Pct = sa.Numeric(asdecimal=True, decimal_return_scale=2)
Confidence = sa.Numeric(asdecimal=True, decimal_return_scale=3)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _pct_range(column: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"{column} >= 0 AND {column} <= 100", name=f"{column}_range")


profit_allocation_log = sa.Table(
    "profit_allocation_log",
    metadata,
    # --- the specification's columns, names and checks (queries written for it run unchanged)
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("timestamp", Timestamp, nullable=False, server_default=sa.func.now()),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("proposed_by", sa.Text, nullable=False),
    sa.Column("reinvestment_pct", Pct, nullable=False),
    sa.Column("dao_pct", Pct, nullable=False),
    sa.Column("lucky_pct", Pct, nullable=False),
    sa.Column("creator_pct", Pct, nullable=False),
    sa.Column("reasoning", sa.Text, nullable=False),
    sa.Column("confidence", Confidence, nullable=False),
    sa.Column("input_metrics", JSONType, nullable=False),
    sa.Column("reviewed_at", Timestamp),
    sa.Column("reviewed_by", sa.Text),
    sa.Column("review_notes", sa.Text),
    sa.Column("effective_from", Timestamp),
    sa.Column("effective_until", Timestamp),
    # --- this project's additions
    sa.Column("proposal_date", sa.Date, nullable=False, index=True),
    sa.Column("proposer", sa.Text, nullable=False),
    sa.Column("proposer_name", sa.Text, nullable=False),
    sa.Column("should_rebalance", sa.Boolean, nullable=False),
    sa.Column("warnings", JSONType, nullable=False),
    sa.Column("fallback_reason", sa.Text),
    # the split in force when the proposal was made: approving it later needs that split in force
    sa.Column("based_on_id", sa.Uuid, sa.ForeignKey("profit_allocation_log.id")),
    # the integer id a row had before revision 0004 made ids UUIDs (NULL for newer rows)
    sa.Column("legacy_id", sa.Integer, unique=True),
    sa.CheckConstraint(_in("status", SPLIT_STATUSES), name="status_values"),
    sa.CheckConstraint(_in("proposed_by", PROPOSED_BY_VALUES), name="proposed_by_values"),
    *(_pct_range(f"{c}_pct") for c in PROFIT_CATEGORIES),
    sa.CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence_range"),
    # The specification's check, exact on PostgreSQL's NUMERIC. SQLite keeps NUMERIC as binary
    # REAL, where 77.10 + 15.30 + 4.80 + 2.80 != 100, so there the sum is rounded to the cent.
    sa.CheckConstraint(
        "reinvestment_pct + dao_pct + lucky_pct + creator_pct = 100",
        name=sa.sql.elements.conv("valid_total"),
    ).ddl_if(dialect="postgresql"),
    sa.CheckConstraint(
        "ROUND(reinvestment_pct + dao_pct + lucky_pct + creator_pct, 2) = 100",
        name=sa.sql.elements.conv("valid_total"),
    ).ddl_if(dialect="sqlite"),
    sa.CheckConstraint(_in("proposer", PROPOSERS), name="proposer_values"),
    sa.CheckConstraint(
        "status <> 'active' OR effective_from IS NOT NULL", name="active_has_effective_from"
    ),
    sa.CheckConstraint(
        "effective_until IS NULL OR (effective_from IS NOT NULL AND effective_until >= effective_from)",
        name="effective_range",
    ),
)
# At most one split in force (active, not ended) at any moment, enforced by the database. A
# replaced split stays 'active' with effective_until set, as the specification keeps it.
sa.Index(
    "uq_profit_allocation_log_in_force",
    profit_allocation_log.c.status,
    unique=True,
    postgresql_where=sa.text("status = 'active' AND effective_until IS NULL"),
    sqlite_where=sa.text("status = 'active' AND effective_until IS NULL"),
)
sa.Index("ix_profit_allocation_log_timestamp", profit_allocation_log.c.timestamp)

# One row per reviewer and proposal: large changes need several distinct approvals.
profit_proposal_reviews = sa.Table(
    "profit_proposal_reviews",
    metadata,
    sa.Column("proposal_id", sa.Uuid, sa.ForeignKey("profit_allocation_log.id"), primary_key=True),
    sa.Column("reviewer", sa.Text, primary_key=True),
    sa.Column("decision", sa.Text, nullable=False),
    sa.Column("reviewed_at", Timestamp, nullable=False),
    sa.Column("notes", sa.Text),
    sa.CheckConstraint("decision IN ('approve', 'reject')", name="decision_values"),
)

# The automatic proposer's answer for each day, once: a re-run of the day reuses it. A proposal
# to rebalance points at its profit_allocation_log row; a "maintain" answer (keep the split in
# force) is recorded only here and waits for nobody.
profit_split_days = sa.Table(
    "profit_split_days",
    metadata,
    sa.Column("proposal_date", sa.Date, primary_key=True),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("proposal_id", sa.Uuid, sa.ForeignKey("profit_allocation_log.id")),
    sa.Column("in_force_id", sa.Uuid, sa.ForeignKey("profit_allocation_log.id")),
    sa.Column("proposer", sa.Text, nullable=False),
    sa.Column("confidence", Confidence, nullable=False),
    sa.Column("reasoning", sa.Text, nullable=False),
    sa.Column("fallback_reason", sa.Text),
    sa.Column("input_metrics", JSONType, nullable=False),
    sa.Column("decided_at", Timestamp, nullable=False),
    sa.CheckConstraint("outcome IN ('proposed', 'maintain')", name="outcome_values"),
    sa.CheckConstraint("outcome = 'maintain' OR proposal_id IS NOT NULL", name="proposed_has_id"),
    sa.CheckConstraint(_in("proposer", PROPOSERS), name="proposer_values"),
)

profit_distributions = sa.Table(
    "profit_distributions",
    metadata,
    sa.Column("distribution_date", sa.Date, primary_key=True),
    sa.Column("category", sa.String(16), primary_key=True),
    sa.Column("proposal_id", sa.Uuid, sa.ForeignKey("profit_allocation_log.id"), nullable=False),
    sa.Column("profit_usd", Money, nullable=False),
    sa.Column("pct", sa.Numeric(5, 2), nullable=False),
    sa.Column("amount_usd", Money, nullable=False),
    sa.Column("profit_source", sa.String(32), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.CheckConstraint(
        "category IN ('reinvestment', 'dao', 'lucky', 'creator')", name="category_enum"
    ),
)

# ---------------------------------------------------------------- transparency log

ACTIVITY_EVENTS = (
    "proposal_stored",
    "validation_warnings",
    "proposal_maintained",
    "review",
    "proposal_rejected",
    "auto_approval",
    "activation",
    "deactivation",
    "distribution",
    "list_change",
    "forced_reallocation",
)
ACTIVITY_SUBJECTS = ("proposal", "day", "distribution", "list_change", "allocation")

# Append-only: one row per event, never updated or deleted (the database refuses both).
protocol_activity = sa.Table(
    "protocol_activity",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("occurred_at", Timestamp, nullable=False, index=True),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("subject_type", sa.Text, nullable=False),
    sa.Column("subject_id", sa.Text, nullable=False),
    sa.Column("payload", JSONType, nullable=False),
    sa.CheckConstraint(_in("event_type", ACTIVITY_EVENTS), name="event_type_values"),
    sa.CheckConstraint(_in("subject_type", ACTIVITY_SUBJECTS), name="subject_type_values"),
)

APPEND_ONLY_MESSAGE = "protocol_activity is append-only: UPDATE and DELETE are refused"
# The statements that make protocol_activity append-only, per dialect (run after CREATE TABLE
# by create_all, by migration 0004, and rendered into sql/schema.sql).
APPEND_ONLY_DDL = {
    "postgresql": (
        "CREATE FUNCTION protocol_activity_append_only() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n    RAISE EXCEPTION USING MESSAGE =\n"
        f"        '{APPEND_ONLY_MESSAGE} (' || TG_OP || ' refused)';\nEND;\n$$",
        "CREATE TRIGGER protocol_activity_append_only BEFORE UPDATE OR DELETE ON protocol_activity"
        "\n    FOR EACH ROW EXECUTE FUNCTION protocol_activity_append_only()",
    ),
    "sqlite": tuple(
        f"CREATE TRIGGER protocol_activity_no_{op.lower()} BEFORE {op} ON protocol_activity\n"
        f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE} ({op} refused)'); END"
        for op in ("UPDATE", "DELETE")
    ),
}
for _dialect, _statements in APPEND_ONLY_DDL.items():
    for _statement in _statements:
        sa.event.listen(
            protocol_activity, "after_create", sa.DDL(_statement).execute_if(dialect=_dialect)
        )

platform_engagement_daily = sa.Table(
    "platform_engagement_daily",
    metadata,
    sa.Column("metric_date", sa.Date, primary_key=True),
    sa.Column("wallet_connections", sa.Integer, nullable=False),
    sa.Column("trades", sa.Integer, nullable=False),
    sa.Column("page_views", sa.Integer, nullable=False),
    sa.Column("engagement_score", Real, nullable=False),
    sa.CheckConstraint("engagement_score BETWEEN 0 AND 100", name="score_range"),
)

token_performance_daily = sa.Table(
    "token_performance_daily",
    metadata,
    sa.Column("metric_date", sa.Date, primary_key=True),
    sa.Column("price_usd", Real, nullable=False),
    sa.Column("price_trend_pct_7d", Real, nullable=False),
    sa.Column("volume_usd", Real, nullable=False),
    sa.Column("holders", sa.Integer, nullable=False),
    sa.Column("holder_growth_pct_7d", Real, nullable=False),
)

dao_treasury_daily = sa.Table(
    "dao_treasury_daily",
    metadata,
    sa.Column("metric_date", sa.Date, primary_key=True),
    sa.Column("balance_usd", Money, nullable=False),
    sa.Column("monthly_burn_usd", Money, nullable=False),
)

community_growth_daily = sa.Table(
    "community_growth_daily",
    metadata,
    sa.Column("metric_date", sa.Date, primary_key=True),
    sa.Column("members", sa.Integer, nullable=False),
    sa.Column("new_members_7d", sa.Integer, nullable=False),
    sa.Column("growth_pct_7d", Real, nullable=False),
)
