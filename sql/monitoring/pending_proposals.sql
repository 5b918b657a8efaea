-- Proposals waiting for a review, oldest first, with the change each would make to the split in force.
SELECT
    p.proposal_id,
    p.proposal_date,
    p.created_at,
    p.proposer,
    p.proposed_by,
    p.reinvestment_pct,
    p.dao_pct,
    p.lucky_pct,
    p.creator_pct,
    p.confidence,
    p.should_rebalance,
    p.warnings,
    p.fallback_reason,
    p.reinvestment_pct - a.reinvestment_pct AS reinvestment_change,
    p.dao_pct - a.dao_pct AS dao_change,
    p.lucky_pct - a.lucky_pct AS lucky_change,
    p.creator_pct - a.creator_pct AS creator_change
FROM profit_allocation_log AS p
LEFT JOIN profit_allocation_log AS a ON a.status = 'active'
WHERE p.status = 'proposed'
ORDER BY p.created_at, p.proposal_id;
