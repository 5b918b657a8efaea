-- The split in force now: the one 'active' row (a unique partial index allows no second one).
SELECT
    proposal_id,
    reinvestment_pct,
    dao_pct,
    lucky_pct,
    creator_pct,
    proposer,
    proposed_by,
    reviewed_by,
    reviewed_at,
    effective_from,
    confidence
FROM profit_allocation_log
WHERE status = 'active';
