-- Each activation and how far it moved each category from the split before it (NULL for the first).
SELECT
    proposal_id,
    effective_from,
    reviewed_by,
    reinvestment_pct,
    dao_pct,
    lucky_pct,
    creator_pct,
    reinvestment_pct - LAG(reinvestment_pct) OVER w AS reinvestment_change,
    dao_pct - LAG(dao_pct) OVER w AS dao_change,
    lucky_pct - LAG(lucky_pct) OVER w AS lucky_change,
    creator_pct - LAG(creator_pct) OVER w AS creator_change,
    GREATEST(
        ABS(reinvestment_pct - LAG(reinvestment_pct) OVER w),
        ABS(dao_pct - LAG(dao_pct) OVER w),
        ABS(lucky_pct - LAG(lucky_pct) OVER w),
        ABS(creator_pct - LAG(creator_pct) OVER w)
    ) AS largest_change
FROM profit_allocation_log
WHERE status IN ('active', 'superseded')
WINDOW w AS (ORDER BY effective_from, proposal_id)
ORDER BY effective_from, proposal_id;
