-- Confidence of the automatic proposers over the last 30 days. An LLM answer that was not used
-- is stored as the rules' proposal with a fallback_reason, counted in llm_fallbacks.
SELECT
    proposer,
    COUNT(*) AS proposals,
    ROUND(AVG(confidence), 3) AS avg_confidence,
    MIN(confidence) AS min_confidence,
    MAX(confidence) AS max_confidence,
    COUNT(*) FILTER (WHERE fallback_reason IS NOT NULL) AS llm_fallbacks
FROM profit_allocation_log
WHERE proposer IN ('rules', 'llm')
  AND created_at >= CURRENT_TIMESTAMP - INTERVAL '30 days'
GROUP BY proposer
ORDER BY proposer;
