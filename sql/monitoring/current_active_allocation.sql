-- Get Current Active Allocation (the specification's query, verbatim).
-- A replaced split stays 'active' with effective_until set, so the newest effective_from is the
-- split in force.
SELECT * FROM profit_allocation_log
WHERE status = 'active'
ORDER BY effective_from DESC
LIMIT 1;
