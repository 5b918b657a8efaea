-- Approval rate (the specification's query, verbatim): the percentage of the last 30 days' AI
-- proposals that were activated (still in force or replaced since). Pending proposals count in
-- the denominator, as in the specification (with no AI proposal in 30 days it divides by zero).
SELECT 
  COUNT(*) FILTER (WHERE status = 'active') * 100.0 / COUNT(*) as approval_rate
FROM profit_allocation_log
WHERE proposed_by = 'ai' AND timestamp > now() - interval '30 days';
