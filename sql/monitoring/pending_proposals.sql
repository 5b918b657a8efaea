-- Pending Proposals (the specification's query, verbatim): waiting for a review, newest first.
-- A "maintain" answer is not a proposal: it is recorded in profit_split_days, never pending.
SELECT * FROM profit_allocation_log
WHERE status = 'proposed'
ORDER BY timestamp DESC;
