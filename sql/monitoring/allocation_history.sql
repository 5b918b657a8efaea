-- View Allocation History (the specification's query, verbatim): the newest 20 rows of the log,
-- split as reinvestment/dao/lucky/creator.
SELECT 
  timestamp,
  status,
  proposed_by,
  reinvestment_pct || '/' || dao_pct || '/' || lucky_pct || '/' || creator_pct as split,
  reasoning,
  confidence
FROM profit_allocation_log
ORDER BY timestamp DESC
LIMIT 20;
