-- allocator-dagster application schema for PostgreSQL.
--
-- GENERATED from allocator_dagster/storage/schema.py -- do not edit by hand. Regenerate with:
--     python -m allocator_dagster.storage.ddl > sql/schema.sql
-- allocator_dagster_tests/storage/test_schema.py proves that this file matches the metadata
-- and that applying it builds the same database as the Alembic migrations (storage/migrations).

CREATE TABLE allocation_parameters (
    snapshot_id SERIAL NOT NULL,
    allocation_date DATE NOT NULL,
    mode VARCHAR(16) NOT NULL,
    parameters JSONB NOT NULL,
    dynamic_lists JSONB NOT NULL,
    metrics_hash VARCHAR(64) NOT NULL,
    balances_hash VARCHAR(64) NOT NULL,
    code_version VARCHAR(64) NOT NULL,
    solver_versions JSONB NOT NULL,
    snapshot_hash VARCHAR(64) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_allocation_parameters PRIMARY KEY (snapshot_id),
    CONSTRAINT ck_allocation_parameters_mode_enum CHECK (mode IN ('original', 'fresh'))
);
CREATE INDEX ix_allocation_parameters_allocation_date ON allocation_parameters (allocation_date);

CREATE TABLE approved_protocols (
    value VARCHAR(256) NOT NULL,
    added_by VARCHAR(128) NOT NULL,
    added_at TIMESTAMP WITH TIME ZONE NOT NULL,
    reason TEXT NOT NULL,
    CONSTRAINT pk_approved_protocols PRIMARY KEY (value)
);

CREATE TABLE approved_tokens (
    value VARCHAR(256) NOT NULL,
    added_by VARCHAR(128) NOT NULL,
    added_at TIMESTAMP WITH TIME ZONE NOT NULL,
    reason TEXT NOT NULL,
    CONSTRAINT pk_approved_tokens PRIMARY KEY (value)
);

CREATE TABLE balance_imports (
    import_id SERIAL NOT NULL,
    ledger_date DATE NOT NULL,
    imported_by VARCHAR(128) NOT NULL,
    imported_at TIMESTAMP WITH TIME ZONE NOT NULL,
    source_file VARCHAR(512) NOT NULL,
    file_sha256 VARCHAR(64) NOT NULL,
    positions INTEGER NOT NULL,
    total_usd NUMERIC(20, 2) NOT NULL,
    replaced_source VARCHAR(32),
    CONSTRAINT pk_balance_imports PRIMARY KEY (import_id)
);
CREATE INDEX ix_balance_imports_ledger_date ON balance_imports (ledger_date);

CREATE TABLE blacklisted_tokens (
    value VARCHAR(256) NOT NULL,
    added_by VARCHAR(128) NOT NULL,
    added_at TIMESTAMP WITH TIME ZONE NOT NULL,
    reason TEXT NOT NULL,
    CONSTRAINT pk_blacklisted_tokens PRIMARY KEY (value)
);

CREATE TABLE community_growth_daily (
    metric_date DATE NOT NULL,
    members INTEGER NOT NULL,
    new_members_7d INTEGER NOT NULL,
    growth_pct_7d FLOAT(53) NOT NULL,
    CONSTRAINT pk_community_growth_daily PRIMARY KEY (metric_date)
);

CREATE TABLE daily_ledger (
    ledger_date DATE NOT NULL,
    pool_id VARCHAR(128) NOT NULL,
    amount_usd NUMERIC(20, 2) NOT NULL,
    source VARCHAR(32) NOT NULL,
    recorded_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_daily_ledger PRIMARY KEY (ledger_date, pool_id),
    CONSTRAINT ck_daily_ledger_amount_not_negative CHECK (amount_usd >= 0)
);

CREATE TABLE dao_treasury_daily (
    metric_date DATE NOT NULL,
    balance_usd NUMERIC(20, 2) NOT NULL,
    monthly_burn_usd NUMERIC(20, 2) NOT NULL,
    CONSTRAINT pk_dao_treasury_daily PRIMARY KEY (metric_date)
);

CREATE TABLE dynamic_list_changes (
    change_id SERIAL NOT NULL,
    list_name VARCHAR(32) NOT NULL,
    action VARCHAR(8) NOT NULL,
    value VARCHAR(256) NOT NULL,
    reason TEXT NOT NULL,
    changed_by VARCHAR(128) NOT NULL,
    changed_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_dynamic_list_changes PRIMARY KEY (change_id),
    CONSTRAINT ck_dynamic_list_changes_action_enum CHECK (action IN ('add', 'remove')),
    CONSTRAINT ck_dynamic_list_changes_list_name_enum CHECK (list_name IN ('approved_tokens', 'blacklisted_tokens', 'approved_protocols', 'icebox_tokens'))
);

CREATE TABLE icebox_tokens (
    value VARCHAR(256) NOT NULL,
    added_by VARCHAR(128) NOT NULL,
    added_at TIMESTAMP WITH TIME ZONE NOT NULL,
    reason TEXT NOT NULL,
    CONSTRAINT pk_icebox_tokens PRIMARY KEY (value)
);

CREATE TABLE platform_engagement_daily (
    metric_date DATE NOT NULL,
    wallet_connections INTEGER NOT NULL,
    trades INTEGER NOT NULL,
    page_views INTEGER NOT NULL,
    engagement_score FLOAT(53) NOT NULL,
    CONSTRAINT pk_platform_engagement_daily PRIMARY KEY (metric_date),
    CONSTRAINT ck_platform_engagement_daily_score_range CHECK (engagement_score BETWEEN 0 AND 100)
);

CREATE TABLE pool_daily_metrics (
    metric_date DATE NOT NULL,
    pool_id VARCHAR(128) NOT NULL,
    chain VARCHAR(64) NOT NULL,
    project VARCHAR(128) NOT NULL,
    symbol VARCHAR(256) NOT NULL,
    underlying_tokens JSONB NOT NULL,
    tvl_usd FLOAT(53) NOT NULL,
    apy FLOAT(53),
    apy_base FLOAT(53),
    apy_reward FLOAT(53),
    apy_mean_30d FLOAT(53),
    stablecoin BOOLEAN NOT NULL,
    il_risk VARCHAR(16),
    exposure VARCHAR(16),
    pool_meta VARCHAR(256),
    apy_forecast FLOAT(53),
    apy_base_forecast FLOAT(53),
    apy_reward_forecast FLOAT(53),
    tvl_forecast FLOAT(53),
    source VARCHAR(32) NOT NULL,
    ingested_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_pool_daily_metrics PRIMARY KEY (metric_date, pool_id),
    CONSTRAINT ck_pool_daily_metrics_tvl_not_negative CHECK (tvl_usd >= 0)
);

CREATE TABLE pool_day_series (
    metric_date DATE NOT NULL,
    pools INTEGER NOT NULL,
    pool_ids BYTEA NOT NULL,
    tvl_usd BYTEA NOT NULL,
    apy BYTEA NOT NULL,
    apy_base BYTEA NOT NULL,
    apy_reward BYTEA NOT NULL,
    CONSTRAINT pk_pool_day_series PRIMARY KEY (metric_date),
    CONSTRAINT ck_pool_day_series_pools_positive CHECK (pools > 0)
);

CREATE TABLE pool_rejections (
    metric_date DATE NOT NULL,
    row_number INTEGER NOT NULL,
    pool_id VARCHAR(128),
    reason TEXT NOT NULL,
    source VARCHAR(32) NOT NULL,
    CONSTRAINT pk_pool_rejections PRIMARY KEY (metric_date, row_number)
);

CREATE TABLE profit_allocation_log (
    id UUID NOT NULL,
    timestamp TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    status TEXT NOT NULL,
    proposed_by TEXT NOT NULL,
    reinvestment_pct NUMERIC NOT NULL,
    dao_pct NUMERIC NOT NULL,
    lucky_pct NUMERIC NOT NULL,
    creator_pct NUMERIC NOT NULL,
    reasoning TEXT NOT NULL,
    confidence NUMERIC NOT NULL,
    input_metrics JSONB NOT NULL,
    reviewed_at TIMESTAMP WITH TIME ZONE,
    reviewed_by TEXT,
    review_notes TEXT,
    effective_from TIMESTAMP WITH TIME ZONE,
    effective_until TIMESTAMP WITH TIME ZONE,
    proposal_date DATE NOT NULL,
    proposer TEXT NOT NULL,
    proposer_name TEXT NOT NULL,
    should_rebalance BOOLEAN NOT NULL,
    warnings JSONB NOT NULL,
    fallback_reason TEXT,
    based_on_id UUID,
    legacy_id INTEGER,
    CONSTRAINT pk_profit_allocation_log PRIMARY KEY (id),
    CONSTRAINT ck_profit_allocation_log_status_values CHECK (status IN ('proposed', 'active', 'rejected')),
    CONSTRAINT ck_profit_allocation_log_proposed_by_values CHECK (proposed_by IN ('ai', 'manual', 'system')),
    CONSTRAINT ck_profit_allocation_log_reinvestment_pct_range CHECK (reinvestment_pct >= 0 AND reinvestment_pct <= 100),
    CONSTRAINT ck_profit_allocation_log_dao_pct_range CHECK (dao_pct >= 0 AND dao_pct <= 100),
    CONSTRAINT ck_profit_allocation_log_lucky_pct_range CHECK (lucky_pct >= 0 AND lucky_pct <= 100),
    CONSTRAINT ck_profit_allocation_log_creator_pct_range CHECK (creator_pct >= 0 AND creator_pct <= 100),
    CONSTRAINT ck_profit_allocation_log_confidence_range CHECK (confidence >= 0 AND confidence <= 1),
    CONSTRAINT valid_total CHECK (reinvestment_pct + dao_pct + lucky_pct + creator_pct = 100),
    CONSTRAINT ck_profit_allocation_log_proposer_values CHECK (proposer IN ('rules', 'llm', 'manual', 'seed')),
    CONSTRAINT ck_profit_allocation_log_active_has_effective_from CHECK (status <> 'active' OR effective_from IS NOT NULL),
    CONSTRAINT ck_profit_allocation_log_effective_range CHECK (effective_until IS NULL OR (effective_from IS NOT NULL AND effective_until >= effective_from)),
    CONSTRAINT fk_profit_allocation_log_based_on_id_profit_allocation_log FOREIGN KEY(based_on_id) REFERENCES profit_allocation_log (id),
    CONSTRAINT uq_profit_allocation_log_legacy_id UNIQUE (legacy_id)
);
CREATE INDEX ix_profit_allocation_log_proposal_date ON profit_allocation_log (proposal_date);
CREATE INDEX ix_profit_allocation_log_timestamp ON profit_allocation_log (timestamp);
CREATE UNIQUE INDEX uq_profit_allocation_log_in_force ON profit_allocation_log (status) WHERE status = 'active' AND effective_until IS NULL;

CREATE TABLE protocol_activity (
    id SERIAL NOT NULL,
    occurred_at TIMESTAMP WITH TIME ZONE NOT NULL,
    actor TEXT NOT NULL,
    event_type TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    payload JSONB NOT NULL,
    CONSTRAINT pk_protocol_activity PRIMARY KEY (id),
    CONSTRAINT ck_protocol_activity_event_type_values CHECK (event_type IN ('proposal_stored', 'validation_warnings', 'proposal_maintained', 'review', 'proposal_rejected', 'auto_approval', 'activation', 'deactivation', 'distribution', 'list_change', 'forced_reallocation')),
    CONSTRAINT ck_protocol_activity_subject_type_values CHECK (subject_type IN ('proposal', 'day', 'distribution', 'list_change', 'allocation'))
);
CREATE INDEX ix_protocol_activity_occurred_at ON protocol_activity (occurred_at);
CREATE FUNCTION protocol_activity_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE =
        'protocol_activity is append-only: UPDATE and DELETE are refused (' || TG_OP || ' refused)';
END;
$$;
CREATE TRIGGER protocol_activity_append_only BEFORE UPDATE OR DELETE ON protocol_activity
    FOR EACH ROW EXECUTE FUNCTION protocol_activity_append_only();

CREATE TABLE token_performance_daily (
    metric_date DATE NOT NULL,
    price_usd FLOAT(53) NOT NULL,
    price_trend_pct_7d FLOAT(53) NOT NULL,
    volume_usd FLOAT(53) NOT NULL,
    holders INTEGER NOT NULL,
    holder_growth_pct_7d FLOAT(53) NOT NULL,
    CONSTRAINT pk_token_performance_daily PRIMARY KEY (metric_date)
);

CREATE TABLE asset_allocations (
    allocation_date DATE NOT NULL,
    status VARCHAR(16) NOT NULL,
    decision VARCHAR(16) NOT NULL,
    reasons JSONB NOT NULL,
    total_usd NUMERIC(20, 2) NOT NULL,
    expected_daily_yield_usd FLOAT(53) NOT NULL,
    gas_cost_usd FLOAT(53) NOT NULL,
    conversion_cost_usd FLOAT(53) NOT NULL,
    objective_usd_per_day FLOAT(53) NOT NULL,
    solver VARCHAR(16) NOT NULL,
    snapshot_id INTEGER NOT NULL,
    result_hash VARCHAR(64) NOT NULL,
    report JSONB NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_asset_allocations PRIMARY KEY (allocation_date),
    CONSTRAINT ck_asset_allocations_status_enum CHECK (status IN ('optimal', 'feasible', 'infeasible', 'failed')),
    CONSTRAINT ck_asset_allocations_decision_enum CHECK (decision IN ('full', 'yield-only', 'forced', 'hold')),
    CONSTRAINT fk_asset_allocations_snapshot_id_allocation_parameters FOREIGN KEY(snapshot_id) REFERENCES allocation_parameters (snapshot_id)
);

CREATE TABLE profit_distributions (
    distribution_date DATE NOT NULL,
    category VARCHAR(16) NOT NULL,
    proposal_id UUID NOT NULL,
    profit_usd NUMERIC(20, 2) NOT NULL,
    pct NUMERIC(5, 2) NOT NULL,
    amount_usd NUMERIC(20, 2) NOT NULL,
    profit_source VARCHAR(32) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_profit_distributions PRIMARY KEY (distribution_date, category),
    CONSTRAINT ck_profit_distributions_category_enum CHECK (category IN ('reinvestment', 'dao', 'lucky', 'creator')),
    CONSTRAINT fk_profit_distributions_proposal_id_profit_allocation_log FOREIGN KEY(proposal_id) REFERENCES profit_allocation_log (id)
);

CREATE TABLE profit_proposal_reviews (
    proposal_id UUID NOT NULL,
    reviewer TEXT NOT NULL,
    decision TEXT NOT NULL,
    reviewed_at TIMESTAMP WITH TIME ZONE NOT NULL,
    notes TEXT,
    CONSTRAINT pk_profit_proposal_reviews PRIMARY KEY (proposal_id, reviewer),
    CONSTRAINT ck_profit_proposal_reviews_decision_values CHECK (decision IN ('approve', 'reject')),
    CONSTRAINT fk_profit_proposal_reviews_proposal_id_profit_allocation_log FOREIGN KEY(proposal_id) REFERENCES profit_allocation_log (id)
);

CREATE TABLE profit_split_days (
    proposal_date DATE NOT NULL,
    outcome TEXT NOT NULL,
    proposal_id UUID,
    in_force_id UUID,
    proposer TEXT NOT NULL,
    confidence NUMERIC NOT NULL,
    reasoning TEXT NOT NULL,
    fallback_reason TEXT,
    input_metrics JSONB NOT NULL,
    decided_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_profit_split_days PRIMARY KEY (proposal_date),
    CONSTRAINT ck_profit_split_days_outcome_values CHECK (outcome IN ('proposed', 'maintain')),
    CONSTRAINT ck_profit_split_days_proposed_has_id CHECK (outcome = 'maintain' OR proposal_id IS NOT NULL),
    CONSTRAINT ck_profit_split_days_proposer_values CHECK (proposer IN ('rules', 'llm', 'manual', 'seed')),
    CONSTRAINT fk_profit_split_days_proposal_id_profit_allocation_log FOREIGN KEY(proposal_id) REFERENCES profit_allocation_log (id),
    CONSTRAINT fk_profit_split_days_in_force_id_profit_allocation_log FOREIGN KEY(in_force_id) REFERENCES profit_allocation_log (id)
);

CREATE TABLE asset_allocation_details (
    allocation_date DATE NOT NULL,
    pool_id VARCHAR(128) NOT NULL,
    chain VARCHAR(64) NOT NULL,
    project VARCHAR(128) NOT NULL,
    symbol VARCHAR(256) NOT NULL,
    tokens JSONB NOT NULL,
    pool_group SMALLINT,
    amount_usd NUMERIC(20, 2) NOT NULL,
    weight FLOAT(53) NOT NULL,
    delta_usd NUMERIC(20, 2) NOT NULL,
    apy_used FLOAT(53) NOT NULL,
    expected_daily_yield_usd FLOAT(53) NOT NULL,
    gas_cost_usd FLOAT(53) NOT NULL,
    conversion_cost_usd FLOAT(53) NOT NULL,
    CONSTRAINT pk_asset_allocation_details PRIMARY KEY (allocation_date, pool_id),
    CONSTRAINT ck_asset_allocation_details_amount_not_negative CHECK (amount_usd >= 0),
    CONSTRAINT ck_asset_allocation_details_group_enum CHECK (pool_group IN (1, 2, 3)),
    CONSTRAINT fk_asset_allocation_details_allocation_date_asset_allocations FOREIGN KEY(allocation_date) REFERENCES asset_allocations (allocation_date) ON DELETE CASCADE
);
