-- Review outcomes per proposer and overall (proposer 'all'); the seed split is not a proposal.
-- approval_rate = approved / reviewed, NULL while nothing was reviewed.
SELECT
    COALESCE(proposer, 'all') AS proposer,
    COUNT(*) AS proposals,
    COUNT(*) FILTER (WHERE status <> 'proposed') AS reviewed,
    COUNT(*) FILTER (WHERE status IN ('active', 'superseded')) AS approved,
    COUNT(*) FILTER (WHERE status = 'rejected') AS rejected,
    COUNT(*) FILTER (WHERE status = 'proposed') AS pending,
    COUNT(*) FILTER (WHERE reviewed_by = 'auto-approve-policy') AS auto_approved,
    ROUND(
        COUNT(*) FILTER (WHERE status IN ('active', 'superseded'))::numeric
        / NULLIF(COUNT(*) FILTER (WHERE status <> 'proposed'), 0),
        3
    ) AS approval_rate
FROM profit_allocation_log
WHERE proposer <> 'seed'
GROUP BY ROLLUP (proposer)
-- Qualified: a bare `proposer` here would sort by the output column, where the total is 'all'.
ORDER BY GROUPING(profit_allocation_log.proposer), profit_allocation_log.proposer;
