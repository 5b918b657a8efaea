-- Allocation Changes Over Time (the specification's query, verbatim): every split that was ever
-- in force, oldest first (the replaced ones have effective_until set).
SELECT 
  DATE(effective_from) as date,
  reinvestment_pct,
  dao_pct,
  lucky_pct,
  creator_pct
FROM profit_allocation_log
WHERE status = 'active'
ORDER BY effective_from;
