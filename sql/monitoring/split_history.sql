-- Every split that was ever in force, oldest first, with its effective range [from, to).
SELECT
    proposal_id,
    status,
    effective_from,
    effective_to,
    reinvestment_pct,
    dao_pct,
    lucky_pct,
    creator_pct,
    proposer,
    proposed_by,
    reviewed_by,
    review_notes
FROM profit_allocation_log
WHERE status IN ('active', 'superseded')
ORDER BY effective_from, proposal_id;
