"""Profit-split governance without Dagster: the split, its rules, proposers and distribution.

Nothing here imports dagster; the asset graph in `allocator_dagster.defs.profit_split` and the
command line both build on these modules.
"""

from allocator_dagster.profit_split.distribution import distribute, distribution_moment
from allocator_dagster.profit_split.llm import LLMConfig, LLMProposer
from allocator_dagster.profit_split.metrics import PlatformMetrics, sample_metrics
from allocator_dagster.profit_split.policy import (
    DEFAULT_BOUNDS,
    AutoApprovePolicy,
    CategoryBounds,
    Proposal,
    RulesProposer,
)
from allocator_dagster.profit_split.split import CATEGORIES, SEED_SPLIT, Split
from allocator_dagster.profit_split.validation import (
    ProposalValidationError,
    ValidationResult,
    ensure_valid,
    validate_proposal,
)

__all__ = [
    "CATEGORIES",
    "DEFAULT_BOUNDS",
    "SEED_SPLIT",
    "AutoApprovePolicy",
    "CategoryBounds",
    "LLMConfig",
    "LLMProposer",
    "PlatformMetrics",
    "Proposal",
    "ProposalValidationError",
    "RulesProposer",
    "Split",
    "ValidationResult",
    "distribute",
    "distribution_moment",
    "ensure_valid",
    "sample_metrics",
    "validate_proposal",
]
