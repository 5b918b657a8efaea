"""Reads and writes of the profit-split tables: proposals, their review, metrics, distributions.

`profit_allocation_log` follows the specification: UUID ids, `status` proposed/active/rejected,
`proposed_by` ai/manual/system, and a replaced split stays 'active' with `effective_until` set.
Nothing in it is ever deleted. Every change also appends its event to `protocol_activity` in the
same transaction. Reviews are serialised: on PostgreSQL by a transaction-scoped advisory lock
taken before anything is read, on SQLite by BEGIN IMMEDIATE (the database's write lock).

One concept a module: `proposal_log` (the rows and their reads), `proposals` (new proposals and
the day's answer), `in_force` (the split in force and the seed), `review`, `metrics` and
`distributions`. Callers import this package (`from allocator_dagster.storage import
profit_split as store`).
"""

from allocator_dagster.storage.profit_split.distributions import (
    read_distribution,
    split_history,
    write_distribution,
)
from allocator_dagster.storage.profit_split.in_force import (
    SEED_EFFECTIVE_FROM,
    SEED_NAME,
    SEED_REASONING,
    active_split,
    ensure_active_split,
    split_in_force,
)
from allocator_dagster.storage.profit_split.metrics import (
    METRICS_TABLES,
    MetricsExist,
    MetricsUnavailable,
    read_platform_metrics,
    write_platform_metrics,
)
from allocator_dagster.storage.profit_split.proposal_log import (
    REVIEW_LOCK_KEY,
    STATUSES,
    ProposalNotFound,
    StoredProposal,
    find_proposal,
    get_proposal,
    list_proposals,
    open_proposals,
    plain,
    utc_now,
)
from allocator_dagster.storage.profit_split.proposals import (
    DayRecord,
    SplitChanged,
    day_record,
    record_day,
    store_proposal,
)
from allocator_dagster.storage.profit_split.review import (
    ReviewError,
    ReviewOutcome,
    approvals_of,
    review_proposal,
)

__all__ = [
    "METRICS_TABLES",
    "REVIEW_LOCK_KEY",
    "SEED_EFFECTIVE_FROM",
    "SEED_NAME",
    "SEED_REASONING",
    "STATUSES",
    "DayRecord",
    "MetricsExist",
    "MetricsUnavailable",
    "ProposalNotFound",
    "ReviewError",
    "ReviewOutcome",
    "SplitChanged",
    "StoredProposal",
    "active_split",
    "approvals_of",
    "day_record",
    "ensure_active_split",
    "find_proposal",
    "get_proposal",
    "list_proposals",
    "open_proposals",
    "plain",
    "read_distribution",
    "read_platform_metrics",
    "record_day",
    "review_proposal",
    "split_history",
    "split_in_force",
    "store_proposal",
    "utc_now",
    "write_distribution",
    "write_platform_metrics",
]
