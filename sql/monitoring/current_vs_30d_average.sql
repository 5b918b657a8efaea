-- Current vs historical allocation (the specification's query, verbatim). As the specification
-- keeps a replaced split 'active', the 'current' rows are every split ever in force (the one in
-- force is the one with effective_until NULL); '30d_avg' is the plain average of the splits that
-- took effect in the last 30 days.
SELECT 
  'current' as period,
  reinvestment_pct, dao_pct, lucky_pct, creator_pct
FROM profit_allocation_log
WHERE status = 'active'
UNION ALL
SELECT 
  '30d_avg',
  AVG(reinvestment_pct), AVG(dao_pct), AVG(lucky_pct), AVG(creator_pct)
FROM profit_allocation_log
WHERE status = 'active' AND effective_from > now() - interval '30 days';
