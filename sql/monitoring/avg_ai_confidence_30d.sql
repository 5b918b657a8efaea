-- Average confidence of AI suggestions (the specification's query, verbatim): proposals of the
-- LLM proposer (proposed_by 'ai') stored in the last 30 days. An LLM answer that was not used is
-- the rules' proposal (proposed_by 'system') and does not count.
SELECT AVG(confidence) FROM profit_allocation_log
WHERE proposed_by = 'ai' AND timestamp > now() - interval '30 days';
