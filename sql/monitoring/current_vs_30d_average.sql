-- Each category's current percentage against its time-weighted average over the last 30 days:
-- every split in force counts for the time it was in force inside the window.
WITH window_bounds AS (
    SELECT CURRENT_TIMESTAMP AS window_end, CURRENT_TIMESTAMP - INTERVAL '30 days' AS window_start
),
periods AS (
    SELECT
        l.reinvestment_pct,
        l.dao_pct,
        l.lucky_pct,
        l.creator_pct,
        EXTRACT(EPOCH FROM (
            LEAST(COALESCE(l.effective_to, b.window_end), b.window_end)
            - GREATEST(l.effective_from, b.window_start)
        )) AS seconds
    FROM profit_allocation_log AS l
    CROSS JOIN window_bounds AS b
    WHERE l.status IN ('active', 'superseded')
      AND l.effective_from < b.window_end
      AND COALESCE(l.effective_to, b.window_end) > b.window_start
),
average_30d AS (
    SELECT
        SUM(reinvestment_pct * seconds) / NULLIF(SUM(seconds), 0) AS reinvestment,
        SUM(dao_pct * seconds) / NULLIF(SUM(seconds), 0) AS dao,
        SUM(lucky_pct * seconds) / NULLIF(SUM(seconds), 0) AS lucky,
        SUM(creator_pct * seconds) / NULLIF(SUM(seconds), 0) AS creator
    FROM periods
),
current_split AS (
    SELECT reinvestment_pct, dao_pct, lucky_pct, creator_pct
    FROM profit_allocation_log
    WHERE status = 'active'
)
SELECT
    v.category,
    v.current_pct,
    ROUND(v.average_pct, 2) AS avg_30d_pct,
    v.current_pct - ROUND(v.average_pct, 2) AS difference
FROM current_split AS c
CROSS JOIN average_30d AS a
CROSS JOIN LATERAL (
    VALUES
        (1, 'reinvestment', c.reinvestment_pct, a.reinvestment),
        (2, 'dao', c.dao_pct, a.dao),
        (3, 'lucky', c.lucky_pct, a.lucky),
        (4, 'creator', c.creator_pct, a.creator)
) AS v (position, category, current_pct, average_pct)
ORDER BY v.position;
